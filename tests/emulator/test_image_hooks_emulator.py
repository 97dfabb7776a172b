"""The emulator builds and runs the real image app through its lifecycle hooks.

The app (``image/app/main.py``) runs as a real process. The emulator, with
``upstreams={8080: app, 9000: hooks}``, calls ``/ready`` and ``/validate`` during the build, then
``/run``, ``/suspend``, ``/resume`` and ``/terminate`` as the MicroVM moves through its states. The
test uses the hook configuration the stack sends (``image/hooks.json``), exactly as it is. It
also proxies the smoke test's ``GET /health`` through the VM endpoint.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from microvms.client import make_client, managed_connector_arn
from tests.emulator.test_image_app import RunningApp, start_app  # noqa: F401 (fixture)

REPO = Path(__file__).resolve().parents[2]
HOOKS = json.loads((REPO / "image" / "hooks.json").read_text())
REGION = "us-east-1"
BASE_IMAGE_ARN = f"arn:aws:lambda:{REGION}:aws:microvm-image:al2023-1"
BUILD_ROLE = "arn:aws:iam::123456789012:role/lambda-microvms-build"
EXEC_ROLE = "arn:aws:iam::123456789012:role/lambda-microvms-execution"
READY_4XX = "Ready hook check failed: the application returned a client error (HTTP 4xx) response"

pytestmark = pytest.mark.emulator


def wait_for(read, done, timeout: float = 30.0, interval: float = 0.05):
    """Poll ``read()`` until ``done(value)``; return the value or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; last value: {value}")
        time.sleep(interval)
        value = read()
    return value


@pytest.fixture
def stack(start_app, emulator_factory):  # noqa: F811
    """``make(**app_env) -> (app, emulator, client)`` with the app as the emulator's upstream."""

    def make(**app_env: str):
        app: RunningApp = start_app(**app_env)
        emu = emulator_factory(
            upstreams={8080: app.app_url, 9000: app.hook_url},
            build_seconds=0.2,
            run_seconds=0.1,
        )
        client = make_client(endpoint_url=emu.url, region=REGION)
        return app, emu, client

    return make


def create_image(client, name: str) -> str:
    image = client.create_microvm_image(
        name=name,
        baseImageArn=BASE_IMAGE_ARN,
        buildRoleArn=BUILD_ROLE,
        codeArtifact={"uri": f"s3://lambda-microvms-artifacts/images/{name}/0123abcd.zip"},
        cpuConfigurations=[{"architecture": "ARM_64"}],
        resources=[{"minimumMemoryInMiB": 2048}],
        hooks=HOOKS,
    )
    return image["imageArn"]


def built_version(client, image_arn: str) -> dict:
    return wait_for(
        lambda: client.get_microvm_image_version(imageIdentifier=image_arn, imageVersion="1.0"),
        lambda v: v["state"] in ("SUCCESSFUL", "FAILED"),
    )


def vm_state(client, microvm_id: str, *states: str) -> dict:
    return wait_for(
        lambda: client.get_microvm(microvmIdentifier=microvm_id),
        lambda vm: vm["state"] in states,
    )


def test_build_run_and_lifecycle_through_the_real_hooks(stack):
    # A boot long enough that the emulator sees 503 first and has to retry /ready.
    app, emu, client = stack(APP_INIT_SECONDS="2.5")
    image_arn = create_image(client, "sandbox-hooks")

    version = built_version(client, image_arn)
    assert version["state"] == "SUCCESSFUL", version.get("stateReason")
    assert client.get_microvm_image(imageIdentifier=image_arn)["state"] == "CREATED"
    calls = app.health()["hookCalls"]
    assert calls["ready"] >= 2, "503 while booting, then 200"
    assert calls["validate"] >= 1
    assert calls["run"] == 0

    vm = client.run_microvm(
        imageIdentifier=image_arn,
        executionRoleArn=EXEC_ROLE,
        ingressNetworkConnectors=[managed_connector_arn("HTTP_INGRESS", REGION)],
        runHookPayload=json.dumps({"session": "s-1"}),
    )
    vm = vm_state(client, vm["microvmId"], "RUNNING", "TERMINATED")
    assert vm["state"] == "RUNNING", vm.get("stateReason")
    health = app.health()
    assert health["ran"] is True
    assert health["microvmId"] == vm["microvmId"], "/run got the platform's microvmId"
    assert health["hookCalls"]["run"] == 1

    # The smoke test's probe: GET /health through the VM endpoint with an auth token.
    token = client.create_microvm_auth_token(
        microvmIdentifier=vm["microvmId"], expirationInMinutes=5, allowedPorts=[{"port": 8080}]
    )["authToken"]["X-aws-proxy-auth"]
    req = urllib.request.Request(
        emu.url + "/health", headers={"Host": vm["endpoint"], "X-aws-proxy-auth": token}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        probed = json.loads(resp.read())
    assert probed["instanceId"] == health["instanceId"]

    client.suspend_microvm(microvmIdentifier=vm["microvmId"])
    vm_state(client, vm["microvmId"], "SUSPENDED")
    assert app.health()["hookCalls"]["suspend"] == 1
    client.resume_microvm(microvmIdentifier=vm["microvmId"])
    vm_state(client, vm["microvmId"], "RUNNING")
    assert app.health()["hookCalls"]["resume"] == 1
    client.terminate_microvm(microvmIdentifier=vm["microvmId"])
    final = vm_state(client, vm["microvmId"], "TERMINATED")
    assert final.get("stateReason") in (None, "Success.")
    assert app.health()["hookCalls"]["terminate"] == 1


def test_broken_ready_fails_the_build_with_the_recorded_message(stack):
    app, emu, client = stack(APP_BREAK_READY="4xx")
    image_arn = create_image(client, "sandbox-broken-ready")

    version = built_version(client, image_arn)
    assert version["state"] == "FAILED"
    assert version["stateReason"] == READY_4XX
    image = client.get_microvm_image(imageIdentifier=image_arn)
    assert image["state"] == "CREATE_FAILED"
    assert image.get("latestFailedImageVersion") == "1.0"
    calls = app.health()["hookCalls"]
    assert calls["ready"] == 1, "a 4xx is final: no retry"
    assert calls["validate"] == 0, "validate never runs after a failed ready"
