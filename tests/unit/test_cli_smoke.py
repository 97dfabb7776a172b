"""Smoke logic without a network: terminate-always, signal deferral, backstop, result shape."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import pytest
from botocore.stub import ANY, Stubber

from microvms import smoke, vms
from microvms.client import make_client

IMAGE = "arn:aws:lambda:us-east-1:123456789012:microvm-image:demo"


def _vm(state, **extra):
    return {
        "microvmId": "microvm-1",
        "state": state,
        "endpoint": "u.lambda-microvm.us-east-1.on.aws",
        "imageArn": IMAGE,
        "imageVersion": "3.0",
        "maximumDurationInSeconds": 150,
        "startedAt": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        **extra,
    }


def _client():
    return make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")


def test_backstop_and_token_lifetime():
    assert smoke.backstop_seconds(30) == 150
    assert smoke.backstop_seconds(0.5) == 121
    assert smoke.backstop_seconds(10**6) == 28800
    assert smoke.token_minutes(30) == 1
    assert smoke.token_minutes(61) == 2
    assert smoke.token_minutes(10**5) == 60


def test_prepare_spec_sets_backstop_and_client_token_but_keeps_explicit_values():
    spec = smoke.prepare_spec(smoke.SmokeOptions(vms.RunSpec(image_arn=IMAGE), timeout=30))
    assert spec.max_duration_seconds == 150
    assert spec.client_token.startswith("smoke-")
    kept = smoke.prepare_spec(
        smoke.SmokeOptions(vms.RunSpec(image_arn=IMAGE, max_duration_seconds=77, client_token="t"))
    )
    assert (kept.max_duration_seconds, kept.client_token) == (77, "t")


def test_run_failure_leaves_nothing_to_terminate():
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "run_microvm",
            "ResourceNotFoundException",
            f"No active version found for MicroVM image {IMAGE}",
            404,
        )
        result = smoke.run_smoke(client, smoke.SmokeOptions(vms.RunSpec(image_arn=IMAGE)))
        stub.assert_no_pending_responses()  # and no terminate call was made
    assert result["ok"] is False
    assert result["microvmId"] is None
    assert result["error"] == (
        f"RunMicrovm failed: ResourceNotFoundException: No active version found for MicroVM image {IMAGE}"
    )


def test_vm_dying_during_wait_is_still_terminated_and_reported():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "run_microvm",
            _vm("PENDING"),
            {"imageIdentifier": IMAGE, "maximumDurationInSeconds": 150, "clientToken": ANY},
        )
        stub.add_response("get_microvm", _vm("TERMINATED", stateReason="Run hook failed."))
        stub.add_response("terminate_microvm", {}, {"microvmIdentifier": "microvm-1"})
        stub.add_response("get_microvm", _vm("TERMINATED", stateReason="Run hook failed."))
        result = smoke.run_smoke(
            client, smoke.SmokeOptions(vms.RunSpec(image_arn=IMAGE), timeout=30)
        )
        stub.assert_no_pending_responses()
    assert result["ok"] is False
    assert result["error"] == "MicroVM microvm-1 is TERMINATED (Run hook failed.)"
    assert result["finalState"] == "TERMINATED"
    assert result["imageVersion"] == "3.0"
    assert result["maximumDurationInSeconds"] == 150
    assert set(result) >= {
        "microvmId", "imageVersion", "timeToRunningSeconds", "probeStatus", "probeLatencyMs",
        "totalSeconds", "finalState",
    }  # fmt: skip


def test_signal_inside_critical_is_deferred_then_raised():
    with smoke.SignalGuard() as guard:
        with pytest.raises(smoke.Interrupted) as err, guard.critical():
            os.kill(os.getpid(), signal.SIGTERM)
            reached = True  # the signal did not interrupt the critical block
        assert reached
    assert err.value.signum == signal.SIGTERM
    assert err.value.exit_code == 143


def test_signal_inside_shield_is_swallowed_but_recorded():
    with smoke.SignalGuard() as guard:
        with guard.shield():
            os.kill(os.getpid(), signal.SIGTERM)
        assert guard.received == signal.SIGTERM


def test_signal_outside_critical_raises_immediately_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with smoke.SignalGuard(), pytest.raises(smoke.Interrupted) as err:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    assert str(err.value) == "SIGINT"
    assert signal.getsignal(signal.SIGTERM) is before


def test_signal_during_run_microvm_still_terminates_the_new_vm():
    """SIGTERM while RunMicrovm is in flight is deferred to the end of the call; the id is known
    by then, so the VM is terminated (this used to leak it until the backstop)."""
    client = _client()
    client.meta.events.register(
        "after-call.lambda-microvms.RunMicrovm",
        lambda **_: os.kill(os.getpid(), signal.SIGTERM),
    )
    with Stubber(client) as stub, smoke.SignalGuard() as guard:
        stub.add_response("run_microvm", _vm("PENDING"))
        stub.add_response("terminate_microvm", {}, {"microvmIdentifier": "microvm-1"})
        stub.add_response("get_microvm", _vm("TERMINATED", stateReason="Success."))
        result = smoke.run_smoke(
            client, smoke.SmokeOptions(vms.RunSpec(image_arn=IMAGE), timeout=30), guard=guard
        )
        stub.assert_no_pending_responses()  # the terminate call was made
    assert result["ok"] is False
    assert (result["microvmId"], result["finalState"]) == ("microvm-1", "TERMINATED")
    assert (result["interrupted"], result["exitCode"]) == ("SIGTERM", 143)
    assert result["error"] == "interrupted by SIGTERM"
    assert result["imageVersion"] == "3.0"


def test_a_second_signal_never_cuts_the_cleanup_short():
    with smoke.SignalGuard() as guard:
        with pytest.raises(smoke.Interrupted):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGINT)  # e.g. a second Ctrl-C while terminating
        time.sleep(0.05)
        assert guard.received == signal.SIGTERM
        assert guard.pending is None


def test_token_refused_after_running_is_reported_and_the_vm_terminated():
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("run_microvm", _vm("PENDING"))
        stub.add_response("get_microvm", _vm("RUNNING"))
        stub.add_client_error(
            "create_microvm_auth_token", "ValidationException", "token refused", 400
        )
        stub.add_response("terminate_microvm", {}, {"microvmIdentifier": "microvm-1"})
        stub.add_response("get_microvm", _vm("TERMINATED"))
        result = smoke.run_smoke(
            client, smoke.SmokeOptions(vms.RunSpec(image_arn=IMAGE), timeout=30)
        )
        stub.assert_no_pending_responses()
    assert result["error"] == ("CreateMicrovmAuthToken failed: ValidationException: token refused")
    assert (result["ok"], result["finalState"]) == (False, "TERMINATED")
    assert result["timeToRunningSeconds"] is not None and result["probeStatus"] is None


def test_unexpected_error_is_reported_not_raised_and_the_vm_terminated(monkeypatch):
    def broken_probe(*args, **kwargs):
        raise RuntimeError("probe bug")

    monkeypatch.setattr(smoke._endpoint, "probe", broken_probe)
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("run_microvm", _vm("PENDING"))
        stub.add_response("get_microvm", _vm("RUNNING"))
        # no CreateMicrovmAuthToken: the probe mints its token on first use, and it broke first
        stub.add_response("terminate_microvm", {}, {"microvmIdentifier": "microvm-1"})
        stub.add_response("get_microvm", _vm("TERMINATED"))
        result = smoke.run_smoke(
            client, smoke.SmokeOptions(vms.RunSpec(image_arn=IMAGE), timeout=30)
        )
        stub.assert_no_pending_responses()
    assert result["error"] == "unexpected error: RuntimeError: probe bug"
    assert (result["ok"], result["finalState"]) == (False, "TERMINATED")
