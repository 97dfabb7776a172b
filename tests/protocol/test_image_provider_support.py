"""Shared fixtures for the image-provider protocol tests (imported by the other
``test_image_provider_*`` modules; holds no tests of its own).

Every lifecycle call goes through the SDK's dynamic-provider gRPC server (``python -m
pulumi.dynamic`` in a subprocess, driven by ``devkit.offline.provider.DynamicProvider``), which
talks boto3 over HTTP to the emulator started by the ``emulator`` fixture.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.config import Config

from components.microvm_image.provider import MicrovmImageProvider
from devkit.offline.provider import DynamicProvider, make_urn, serialize_provider
from microvms.emulator import EmulatorServer
from tests.fixtures.emulator import FAST_OPTIONS

TYPE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
ROLE = "arn:aws:iam::123456789012:role/lambda-microvms-build"
SECRET_VALUE = "hunter2-very-secret-value"
PROVIDER = serialize_provider(MicrovmImageProvider())


def program_inputs(**overrides) -> dict:
    """What the MicrovmImage component sends for a typical image (before check)."""
    props = {
        "namePrefix": "app",
        "nameSeed": "lambda-microvms/test/app-image",
        "region": "us-east-1",
        "buildRoleArn": ROLE,
        "codeArtifact": {"uri": "s3://artifact-bucket-1/images/app-abc123.zip"},
        "resources": [{"minimumMemoryInMiB": 2048}],
        "hooks": {
            "port": 9000,
            "microvmImageHooks": {"ready": "ENABLED"},
            "microvmHooks": {"run": "ENABLED"},
        },
        "logging": {"cloudWatch": {"logGroup": "/aws/lambda-microvms/app"}},
        "environmentVariables": {"LOG_LEVEL": "info"},
        "secretEnvironmentVariables": {"API_TOKEN": SECRET_VALUE},
        "tags": {"team": "platform"},
        "keepVersions": 3,
    }
    props.update(overrides)
    return {k: v for k, v in props.items() if v is not None}


@dataclass
class ImageRig:
    """An emulator plus a dynamic-provider plugin, with helpers to inspect both."""

    emulator: object
    provider: DynamicProvider
    urn: str = field(default_factory=lambda: make_urn(TYPE, "app-image"))

    # emulator admin API over HTTP (what the brief specifies), not the in-process state
    def _admin(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.emulator.url}/_emulator/{path}",
            data=data,
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.load(resp)

    def calls(self) -> dict[str, int]:
        return self._admin("calls")

    def reset_calls(self) -> None:
        self._admin("calls/reset", {})

    def faults(self, **body) -> dict:
        return self._admin("faults", body)

    @property
    def aws(self):
        """An out-of-band boto3 client (what a person with the console would do)."""
        return boto3.client(
            "lambda-microvms",
            region_name="us-east-1",
            endpoint_url=self.emulator.url,
            config=Config(retries={"mode": "standard", "max_attempts": 10}),
        )

    def images(self) -> list[dict]:
        return self.aws.list_microvm_images()["items"]

    # provider round trips, as the engine sequences them
    def check(self, news: dict, olds: dict | None = None, **kw):
        return self.provider.check(self.urn, olds or {}, news, **kw)

    def create(self, **overrides):
        checked = self.check(program_inputs(**overrides))
        assert checked.failures == [], checked.failures
        created = self.provider.create(self.urn, checked.inputs)
        return checked.inputs, created

    def plan(self, state: dict, old_inputs: dict, **overrides):
        """Check + Diff of a changed program against ``state`` (old outputs)."""
        checked = self.check(program_inputs(**overrides), olds=old_inputs)
        assert checked.failures == [], checked.failures
        diff = self.provider.diff(state["imageArn"], self.urn, state, checked.inputs, old_inputs)
        return checked.inputs, diff


HERMETIC_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def start_rig(emulator, **env) -> ImageRig:
    """A provider plugin whose boto3 finds the emulator through AWS_ENDPOINT_URL_LAMBDA_MICROVMS."""
    provider = DynamicProvider(
        provider=PROVIDER,
        env={**HERMETIC_ENV, "AWS_ENDPOINT_URL_LAMBDA_MICROVMS": emulator.url, **env},
    )
    provider.start()
    provider.configure({"aws:region": "us-east-1"})
    return ImageRig(emulator=emulator, provider=provider)


def assert_no_secret_in_logs(r: ImageRig) -> None:
    assert SECRET_VALUE not in r.provider.stderr, "a secret value reached the provider's logs"
    assert SECRET_VALUE not in r.provider.stdout, "a secret value reached the provider's logs"


@pytest.fixture(scope="module")
def shared_rig():
    """One emulator and one plugin process per module (starting Python + pulumi + boto3 costs
    seconds on a busy box); each test starts from an emptied emulator."""
    emulator = EmulatorServer(**FAST_OPTIONS)
    with pytest.MonkeyPatch.context() as mp:
        # module scope runs before the suite's hermetic fixture: keep the plugin hermetic too
        for key in list(os.environ):
            if key.startswith("AWS_ENDPOINT_URL") or key in ("AWS_PROFILE", "MICROVMS_PROXY_URL"):
                mp.delenv(key)
        r = start_rig(emulator)
    try:
        yield r
    finally:
        r.provider.stop()
        emulator.stop()
        assert_no_secret_in_logs(r)


@pytest.fixture
def rig(shared_rig):
    shared_rig._admin("reset", {})
    yield shared_rig
    assert_no_secret_in_logs(shared_rig)
