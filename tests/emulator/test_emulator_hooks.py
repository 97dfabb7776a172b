"""Lifecycle hooks are really called over HTTP on ``upstreams[hooks.port]`` (docs/service-facts.md §4.8)."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.fixtures.emulator import create_image, wait_for, wait_image, wait_vm

pytestmark = pytest.mark.emulator

HOOK = "/aws/lambda-microvms/runtime/v1/{}"
ALL_HOOKS = {
    "port": 9000,
    "microvmImageHooks": {"ready": "ENABLED", "validate": "ENABLED", "readyTimeoutInSeconds": 5},
    "microvmHooks": {
        "run": "ENABLED",
        "suspend": "ENABLED",
        "resume": "ENABLED",
        "terminate": "ENABLED",
    },
}


@pytest.fixture
def hooked(emulator_factory, upstream):
    app = upstream()
    emulator = emulator_factory(upstreams={9000: app.url, 8080: app.url})
    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    return emulator, client, app


def test_build_retries_ready_on_503_then_validates(hooked):
    _, client, app = hooked
    app.answers[HOOK.format("ready")] = [503, 503, 200]
    arn = create_image(client, "ready-retry", hooks=ALL_HOOKS)["imageArn"]
    image = wait_image(client, arn, "CREATED", "CREATE_FAILED")
    assert image["state"] == "CREATED"
    assert len(app.calls(HOOK.format("ready"))) == 3
    assert len(app.calls(HOOK.format("validate"))) == 1
    assert app.calls(HOOK.format("ready"))[0]["method"] == "POST"


def test_ready_client_error_fails_the_build_with_live_reason(hooked):
    _, client, app = hooked
    app.answers[HOOK.format("ready")] = 404
    arn = create_image(client, "ready-404", hooks=ALL_HOOKS)["imageArn"]
    image = wait_image(client, arn, "CREATED", "CREATE_FAILED")
    assert image["state"] == "CREATE_FAILED"
    assert image["latestFailedImageVersion"] == "1.0"
    assert "latestActiveImageVersion" not in image
    reason = "Ready hook check failed: the application returned a client error (HTTP 4xx) response"
    version = client.get_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")
    assert (version["state"], version["stateReason"]) == ("FAILED", reason)
    builds = client.list_microvm_image_builds(imageIdentifier=arn, imageVersion="1.0")["items"]
    assert {(b["buildState"], b["stateReason"]) for b in builds} == {("FAILED", reason)}
    assert not app.calls(HOOK.format("validate"))


def test_ready_timeout_fails_the_build(hooked):
    _, client, app = hooked
    app.answers[HOOK.format("ready")] = 503
    hooks = {**ALL_HOOKS, "microvmImageHooks": {"ready": "ENABLED", "readyTimeoutInSeconds": 1}}
    arn = create_image(client, "ready-slow", hooks=hooks)["imageArn"]
    wait_image(client, arn, "CREATE_FAILED", timeout=5)
    version = client.get_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")
    assert version["stateReason"] == (
        "Ready hook check failed: the application did not become ready within 1 seconds"
    )
    assert len(app.calls(HOOK.format("ready"))) >= 2


def test_runtime_hooks_follow_transitions(hooked):
    _, client, app = hooked
    arn = create_image(client, "runtime", hooks=ALL_HOOKS)["imageArn"]
    wait_image(client, arn, "CREATED")
    app.delay[HOOK.format("run")] = 0.4
    vm = client.run_microvm(imageIdentifier=arn, runHookPayload='{"task": 7}')
    vm_id = vm["microvmId"]
    wait_for(lambda: app.calls(HOOK.format("run")), bool)
    # Traffic starts only after /run returns: the VM is still PENDING while the hook runs.
    assert client.get_microvm(microvmIdentifier=vm_id)["state"] == "PENDING"
    wait_vm(client, vm_id, "RUNNING")
    run_body = json.loads(app.calls(HOOK.format("run"))[0]["body"])
    assert run_body == {"microvmId": vm_id, "runHookPayload": '{"task": 7}'}
    client.suspend_microvm(microvmIdentifier=vm_id)
    wait_vm(client, vm_id, "SUSPENDED")
    assert json.loads(app.calls(HOOK.format("suspend"))[0]["body"]) == {"microvmId": vm_id}
    client.resume_microvm(microvmIdentifier=vm_id)
    wait_vm(client, vm_id, "RUNNING")
    assert len(app.calls(HOOK.format("resume"))) == 1
    client.terminate_microvm(microvmIdentifier=vm_id)
    done = wait_vm(client, vm_id, "TERMINATED")
    assert done["stateReason"] == "Success."
    assert len(app.calls(HOOK.format("terminate"))) == 1


def test_failing_run_hook_terminates_the_vm(hooked):
    _, client, app = hooked
    arn = create_image(client, "run-500", hooks=ALL_HOOKS)["imageArn"]
    wait_image(client, arn, "CREATED")
    app.answers[HOOK.format("run")] = 500
    vm_id = client.run_microvm(imageIdentifier=arn)["microvmId"]
    vm = wait_vm(client, vm_id, "TERMINATED")
    assert vm["stateReason"] == (
        "Run lifecycle hook failed. Please check your hook endpoint and application logs for "
        "more details."
    )
    assert not app.calls(HOOK.format("terminate"))


def test_run_hook_timeout_is_honoured(hooked):
    _, client, app = hooked
    hooks = {**ALL_HOOKS, "microvmHooks": {"run": "ENABLED", "runTimeoutInSeconds": 1}}
    arn = create_image(client, "run-slow", hooks=hooks)["imageArn"]
    wait_image(client, arn, "CREATED")
    app.delay[HOOK.format("run")] = 1.6
    vm_id = client.run_microvm(imageIdentifier=arn)["microvmId"]
    vm = wait_vm(client, vm_id, "TERMINATED", timeout=5)
    assert vm["stateReason"] == (
        "Run lifecycle hook timed out. Please check your hook endpoint and application logs for "
        "more details."
    )


def test_suspend_hook_failure_is_reported_not_fatal(hooked):
    _, client, app = hooked
    arn = create_image(client, "susp-500", hooks=ALL_HOOKS)["imageArn"]
    wait_image(client, arn, "CREATED")
    app.answers[HOOK.format("suspend")] = 500
    vm_id = client.run_microvm(imageIdentifier=arn)["microvmId"]
    wait_vm(client, vm_id, "RUNNING")
    client.suspend_microvm(microvmIdentifier=vm_id)
    vm = wait_vm(client, vm_id, "SUSPENDED")
    assert vm["stateReason"] == (
        "Suspend lifecycle hook failed. Please check your hook endpoint and application logs for "
        "more details."
    )


def test_hook_connection_refused_is_reported(emulator_factory, upstream):
    app = upstream()
    emulator = emulator_factory(upstreams={9000: app.url})
    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    arn = create_image(client, "refused", hooks=ALL_HOOKS)["imageArn"]
    wait_image(client, arn, "CREATED")
    vm_id = client.run_microvm(imageIdentifier=arn)["microvmId"]
    wait_vm(client, vm_id, "RUNNING")
    client.suspend_microvm(microvmIdentifier=vm_id)
    wait_vm(client, vm_id, "SUSPENDED")
    app.stop()
    client.resume_microvm(microvmIdentifier=vm_id)
    vm = wait_vm(client, vm_id, "RUNNING")
    assert vm["stateReason"] == (
        "Resume lifecycle hook connection was refused. Please check your hook endpoint and "
        "application logs for more details."
    )


def test_disabled_hooks_are_never_called(hooked):
    _, client, app = hooked
    hooks = {
        "port": 9000,
        "microvmImageHooks": {"ready": "DISABLED"},
        "microvmHooks": {"run": "DISABLED"},
    }
    arn = create_image(client, "quiet", hooks=hooks)["imageArn"]
    wait_image(client, arn, "CREATED")
    vm_id = client.run_microvm(imageIdentifier=arn)["microvmId"]
    wait_vm(client, vm_id, "RUNNING")
    assert app.requests == []
