"""The fixture contract other suites rely on: env vars set, basic lifecycle over boto3."""

from __future__ import annotations

import os

import pytest

from microvms.client import make_client, proxy_target
from tests.fixtures.emulator import built_image, running_vm

pytestmark = pytest.mark.emulator


def test_fixture_points_clients_at_the_emulator(emulator):
    assert os.environ["AWS_ENDPOINT_URL_LAMBDA_MICROVMS"] == emulator.url
    assert os.environ["MICROVMS_PROXY_URL"] == emulator.url
    client = make_client(region="us-east-1", max_attempts=1)
    arn = built_image(client, "smoke")
    vm = running_vm(client, arn)
    base, host = proxy_target(vm["endpoint"])
    assert (base, host) == (emulator.url, vm["endpoint"])
    client.terminate_microvm(microvmIdentifier=vm["microvmId"])
