"""Pure tests for microvms.vms: input validation (before any API call) and waits with backoff."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from microvms import vms, waiters
from microvms.client import make_client

IMAGE = "arn:aws:lambda:us-east-1:123456789012:microvm-image:demo"
ROLE = "arn:aws:iam::123456789012:role/exec"


def _client():
    return make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")


def test_run_request_expands_managed_connectors_and_sets_every_field(tmp_path):
    spec = vms.RunSpec(
        image_arn=IMAGE,
        image_version="2.0",
        execution_role_arn=ROLE,
        idle_policy=vms.idle_policy_from(900, 300, True),
        ingress=vms.split_list(["SHELL_INGRESS,http_ingress"]),
        egress=vms.split_list("INTERNET_EGRESS"),
        max_duration_seconds=600,
        payload=vms.Secret('{"task": "x"}'),
        client_token="tok-1",
    )
    req = vms.build_run_request(spec, "eu-west-1")
    assert req == {
        "imageIdentifier": IMAGE,
        "imageVersion": "2.0",
        "executionRoleArn": ROLE,
        "idlePolicy": {
            "maxIdleDurationSeconds": 900,
            "suspendedDurationSeconds": 300,
            "autoResumeEnabled": True,
        },
        "ingressNetworkConnectors": [
            "arn:aws:lambda:eu-west-1:aws:network-connector:aws-network-connector:SHELL_INGRESS",
            "arn:aws:lambda:eu-west-1:aws:network-connector:aws-network-connector:HTTP_INGRESS",
        ],
        "egressNetworkConnectors": [
            "arn:aws:lambda:eu-west-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS"
        ],
        "maximumDurationInSeconds": 600,
        "runHookPayload": '{"task": "x"}',
        "clientToken": "tok-1",
    }


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        (vms.RunSpec(image_arn=""), "--image-arn", "is required"),
        (vms.RunSpec(image_arn="demo"), "--image-arn", "must be a full ARN"),
        (
            vms.RunSpec(image_arn=IMAGE, execution_role_arn="exec"),
            "--execution-role-arn",
            "full ARN",
        ),
        (
            vms.RunSpec(image_arn=IMAGE, ingress=("WEIRD",)),
            "--ingress",
            "HTTP_INGRESS, SHELL_INGRESS",
        ),
        (vms.RunSpec(image_arn=IMAGE, egress=("x",) * 11), "--egress", "at most 10"),
        (vms.RunSpec(image_arn=IMAGE, max_duration_seconds=0), "--max-duration", "1..28800"),
        (vms.RunSpec(image_arn=IMAGE, max_duration_seconds=28801), "--max-duration", "1..28800"),
        (vms.RunSpec(image_arn=IMAGE, payload=vms.Secret("é" * 2049)), "--payload-file", "4096"),
    ],
)
def test_run_request_rejects_bad_input_naming_the_field(spec, field, fragment):
    with pytest.raises(vms.InputError) as err:
        vms.build_run_request(spec, "us-east-1")
    assert err.value.field == field
    assert fragment in err.value.message


def test_idle_policy_is_all_or_nothing():
    assert vms.idle_policy_from(None, None, None) is None
    with pytest.raises(vms.InputError) as err:
        vms.idle_policy_from(900, None, None)
    assert "missing: --suspended-seconds, --auto-resume/--no-auto-resume" in err.value.message
    with pytest.raises(vms.InputError, match="must be >= 60, got 59"):
        vms.idle_policy_from(59, 0, False)
    assert vms.idle_policy_from(60, 0, False).to_api() == {
        "maxIdleDurationSeconds": 60,
        "suspendedDurationSeconds": 0,
        "autoResumeEnabled": False,
    }


def test_payload_limit_is_4096_bytes(tmp_path):
    ok = tmp_path / "ok"
    ok.write_bytes(b"a" * 4096)
    assert len(vms.read_payload(str(ok)).reveal()) == 4096
    big = tmp_path / "big"
    big.write_bytes(b"a" * 4097)
    with pytest.raises(vms.InputError) as err:
        vms.read_payload(str(big))
    assert err.value.field == "--payload-file"
    assert "larger than 4096 bytes" in err.value.message
    with pytest.raises(vms.InputError, match="cannot read"):
        vms.read_payload(str(tmp_path / "missing"))


def test_payload_from_stdin_and_secret_never_shows():
    secret = vms.read_payload("-", stdin=io.StringIO("hush-payload"))
    assert secret.reveal() == "hush-payload"
    assert "hush" not in repr(secret) and "hush" not in str(secret)
    spec = vms.RunSpec(image_arn=IMAGE, payload=secret)
    assert "hush" not in repr(spec)


def test_ports_durations_minutes_states():
    assert vms.parse_ports(None) == [{"port": 8080}]
    assert vms.parse_ports(["9000", "8000-8010"]) == [
        {"port": 9000},
        {"range": {"startPort": 8000, "endPort": 8010}},
    ]
    with pytest.raises(vms.InputError, match="'70000' is not a port"):
        vms.parse_ports(["70000"])
    assert vms.parse_duration("90") == 90
    assert vms.parse_duration("15m") == 900
    assert vms.parse_duration("2h") == 7200
    assert vms.parse_duration("1d") == 86400
    with pytest.raises(vms.InputError, match="use e.g. 90s, 15m, 2h, 1d"):
        vms.parse_duration("soon")
    with pytest.raises(vms.InputError, match=r"must be 1\.\.60, got 61"):
        vms.check_minutes(61)
    assert vms.check_state("running") == "RUNNING"
    with pytest.raises(vms.InputError, match="'BOOTING' is not allowed; use one of PENDING"):
        vms.check_state("BOOTING")


def _vm(state, **extra):
    return {
        "microvmId": "microvm-1",
        "state": state,
        "endpoint": "u.lambda-microvm.us-east-1.on.aws",
        "imageArn": IMAGE,
        "imageVersion": "1.0",
        "maximumDurationInSeconds": 60,
        "startedAt": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        **extra,
    }


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_polls_with_capped_exponential_backoff():
    client = _client()
    clock = FakeClock()
    with Stubber(client) as stub:
        for state in ("PENDING", "PENDING", "PENDING", "PENDING", "RUNNING"):
            stub.add_response("get_microvm", _vm(state), {"microvmIdentifier": "microvm-1"})
        vm = waiters.wait_for_microvm(
            client, "microvm-1", timeout=60, initial_delay=0.1, max_delay=0.2,
            factor=2, clock=clock, sleep=clock.sleep,
        )  # fmt: skip
        stub.assert_no_pending_responses()
    assert vm["state"] == "RUNNING"
    assert clock.sleeps == [0.1, 0.2, 0.2, 0.2]


def test_wait_fails_fast_on_termination_with_state_reason():
    client = _client()
    clock = FakeClock()
    with Stubber(client) as stub:
        stub.add_response(
            "get_microvm", _vm("TERMINATED", stateReason="Run lifecycle hook failed.")
        )
        with pytest.raises(waiters.WaitError) as err:
            waiters.wait_for_microvm(client, "microvm-1", clock=clock, sleep=clock.sleep)
    assert str(err.value) == "MicroVM microvm-1 is TERMINATED (Run lifecycle hook failed.)"
    assert not err.value.timed_out


def test_wait_times_out_naming_the_last_state():
    client = _client()
    clock = FakeClock()
    with Stubber(client) as stub:
        for _ in range(20):
            stub.add_response("get_microvm", _vm("PENDING"))
        with pytest.raises(waiters.WaitError) as err:
            waiters.wait_for_microvm(
                client, "microvm-1", timeout=1, initial_delay=0.3, clock=clock, sleep=clock.sleep
            )
    assert err.value.timed_out
    assert "timed out after 1s waiting for microvm-1 to be RUNNING (last state: PENDING)" in str(
        err.value
    )


def test_wait_tolerates_not_found_right_after_run_then_gives_up():
    client = _client()
    clock = FakeClock()
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_microvm", "ResourceNotFoundException", "MicroVM not found: x", 404
        )
        stub.add_response("get_microvm", _vm("RUNNING"))
        assert waiters.wait_for_microvm(client, "microvm-1", clock=clock, sleep=clock.sleep)[
            "state"
        ] == ("RUNNING")
    ticks = iter([0.0, 10.0])  # start, then well past the 5 s grace
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_microvm", "ResourceNotFoundException", "MicroVM not found: x", 404
        )
        with pytest.raises(ClientError, match="MicroVM not found: x"):
            waiters.wait_for_microvm(
                client, "microvm-1", clock=lambda: next(ticks), sleep=clock.sleep
            )


def test_gc_refuses_without_selector_and_filters_live_old_vms():
    client = _client()
    with pytest.raises(vms.InputError, match="refusing to select every MicroVM"):
        vms.gc(client)
    now = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    items = [
        {"microvmId": "a", "state": "RUNNING", "imageArn": IMAGE, "imageVersion": "1.0",
         "startedAt": now - dt.timedelta(hours=3)},
        {"microvmId": "b", "state": "TERMINATED", "imageArn": IMAGE, "imageVersion": "1.0",
         "startedAt": now - dt.timedelta(hours=3)},
        {"microvmId": "c", "state": "SUSPENDED", "imageArn": IMAGE, "imageVersion": "1.0",
         "startedAt": now - dt.timedelta(minutes=5)},
    ]  # fmt: skip
    with Stubber(client) as stub:
        stub.add_response("list_microvms", {"items": items[:2], "nextToken": "p2"})
        stub.add_response("list_microvms", {"items": items[2:]})
        found = vms.list_microvms(client, states=vms.LIVE_STATES, older_than=3600, now=now)
    assert [f["microvmId"] for f in found] == ["a"]
    assert found[0]["ageSeconds"] == 10800.0
