"""The pure parts of ``microvms/waiters.py``: backoff schedule, cap, jitter bounds, timeouts,
failure text and error helpers. No network: the waiters take an injectable clock and sleep, and the
"client" is a scripted stand-in that answers like boto3 (dicts and ``ClientError``), so the
polling policy itself is what runs.
"""

from __future__ import annotations

import itertools
import random

import botocore.session
import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.paginate import Paginator

from microvms import waiters
from microvms.waiters import (
    DEFAULT_BACKOFF,
    Backoff,
    BuildFailed,
    BuildResult,
    ImageGone,
    WaitTimeout,
)

ARN = "arn:aws:lambda:us-east-1:123456789012:microvm-image:app-1a2b3c4d"


class FakeClock:
    """Simulated time: ``sleep`` advances ``now``; records every sleep."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, "a waiter must never sleep a negative time"
        self.sleeps.append(seconds)
        self.t += seconds


def client_error(code: str, message: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetMicrovmImageVersion",
    )


def service_paginator(stand_in, operation: str) -> Paginator:
    """botocore's own paginator over a stand-in's method, configured as the service model says."""
    session = botocore.session.get_session()
    model = session.get_service_model("lambda-microvms")
    name = next(n for n in model.operation_names if xform_name(n) == operation)
    config = session.get_paginator_model("lambda-microvms").get_paginator(name)
    return Paginator(getattr(stand_in, operation), config, model.operation_model(name))


class ScriptedImages:
    """Answers GetMicrovmImageVersion by simulated time: ``timeline`` is [(from_t, state, reason)]."""

    def __init__(self, clock: FakeClock, timeline, builds=None, error=None):
        self.clock = clock
        self.timeline = timeline
        self.builds = builds or []
        self.error = error
        self.gets: list[float] = []

    def get_microvm_image_version(self, imageIdentifier, imageVersion):
        self.gets.append(self.clock.now())
        if self.error is not None:
            raise self.error
        state, reason = "PENDING", None
        for start, s, r in self.timeline:
            if self.clock.now() >= start:
                state, reason = s, r
        return {
            "imageArn": imageIdentifier,
            "imageVersion": imageVersion,
            "state": state,
            "stateReason": reason,
        }

    def get_paginator(self, operation: str) -> Paginator:
        return service_paginator(self, operation)

    def list_microvm_image_builds(self, imageIdentifier, imageVersion, nextToken=None):
        pages = self.builds or [[]]
        index = int(nextToken or 0)
        resp = {"items": pages[index]}
        if index + 1 < len(pages):
            resp["nextToken"] = str(index + 1)
        return resp


# ---- Backoff: schedule, cap, jitter -------------------------------------------------------------


def test_schedule_without_jitter_is_exponential_then_capped():
    delays = list(itertools.islice(Backoff(jitter=0.0).delays(), 9))
    assert delays == pytest.approx([0.5, 0.75, 1.125, 1.6875, 2.53125, 3.796875, 4.0, 4.0, 4.0])


def test_cap_holds_for_any_factor():
    delays = list(
        itertools.islice(Backoff(first=1.0, factor=10.0, cap=3.0, jitter=0.0).delays(), 5)
    )
    assert delays == [1.0, 3.0, 3.0, 3.0, 3.0]


def test_first_delay_larger_than_cap_is_not_clamped_but_the_rest_are():
    # documents the behaviour: ``first`` is used as given, growth is capped
    delays = list(itertools.islice(Backoff(first=5.0, factor=2.0, cap=3.0, jitter=0.0).delays(), 3))
    assert delays == [5.0, 3.0, 3.0]


@pytest.mark.parametrize(("rng_value", "scale"), [(0.0, 1.0), (1.0, 0.9), (0.5, 0.95)])
def test_jitter_is_downward_and_bounded(rng_value, scale):
    nominal = list(itertools.islice(Backoff(jitter=0.0).delays(), 12))
    jittered = list(itertools.islice(DEFAULT_BACKOFF.delays(rng=lambda: rng_value), 12))
    assert jittered == pytest.approx([d * scale for d in nominal])


def test_random_jitter_stays_within_ten_percent_below_nominal():
    rnd = random.Random(1234)
    nominal = list(itertools.islice(Backoff(jitter=0.0).delays(), 200))
    jittered = list(itertools.islice(DEFAULT_BACKOFF.delays(rng=rnd.random), 200))
    for n, j in zip(nominal, jittered, strict=True):
        assert 0.9 * n <= j <= n
    # and it actually spreads (two waiters started together do not poll in lockstep)
    assert len({round(j, 6) for j in jittered[10:]}) > 100


def test_long_builds_cost_at_most_one_get_every_three_seconds():
    # worst case jitter (every delay 10 % short): still >= 3 s between polls once capped
    delays = list(itertools.islice(DEFAULT_BACKOFF.delays(rng=lambda: 1.0), 200))
    assert min(delays[6:]) == pytest.approx(3.6)
    polls_in_six_minutes = len(list(itertools.takewhile(lambda t: t <= 360, _cumulative(delays))))
    assert 360 / polls_in_six_minutes >= 3.0


def test_early_failures_are_seen_within_the_first_seconds():
    times = list(itertools.islice(_cumulative(DEFAULT_BACKOFF.delays(rng=lambda: 0.0)), 4))
    assert times == pytest.approx([0.5, 1.25, 2.375, 4.0625])


def _cumulative(delays):
    return itertools.accumulate(delays)


# ---- wait_for_image_version ---------------------------------------------------------------------


def test_wait_returns_the_successful_version_and_reports_each_state_once():
    clock = FakeClock()
    client = ScriptedImages(
        clock,
        [(1000.0, "PENDING", None), (1003.0, "IN_PROGRESS", None), (1020.0, "SUCCESSFUL", None)],
    )
    seen: list[tuple[float, str, str]] = []
    version = waiters.wait_for_image_version(
        client,
        ARN,
        "1.0",
        timeout=60,
        progress=lambda elapsed, state, detail: seen.append((elapsed, state, detail)),
        sleep=clock.sleep,
        clock=clock.now,
        rng=lambda: 0.0,
    )
    assert version["state"] == "SUCCESSFUL"
    assert [s for _, s, _ in seen] == ["PENDING", "IN_PROGRESS", "SUCCESSFUL"]
    assert all(detail == "version 1.0" for _, _, detail in seen)
    # elapsed times are the poll times, increasing
    assert [e for e, _, _ in seen] == sorted(e for e, _, _ in seen)
    assert seen[-1][0] >= 20.0
    # noticed within one capped interval of the build finishing
    assert clock.now() - 1020.0 <= DEFAULT_BACKOFF.cap


def test_wait_times_out_at_the_deadline_without_oversleeping():
    clock = FakeClock()
    client = ScriptedImages(clock, [(1000.0, "IN_PROGRESS", None)])
    with pytest.raises(WaitTimeout) as err:
        waiters.wait_for_image_version(
            client, ARN, "1.0", timeout=30, sleep=clock.sleep, clock=clock.now, rng=lambda: 0.0
        )
    assert str(err.value) == (
        f"image {ARN} version 1.0 still IN_PROGRESS after 30 s (buildTimeoutMinutes)"
    )
    # the last sleep is cut to the remaining time and the last poll happens exactly at the deadline
    assert clock.now() == pytest.approx(1030.0)
    assert client.gets[-1] == pytest.approx(1030.0)
    assert sum(clock.sleeps) == pytest.approx(30.0)


def test_fractional_timeout_is_honoured():
    clock = FakeClock()
    client = ScriptedImages(clock, [(1000.0, "PENDING", None)])
    with pytest.raises(WaitTimeout, match="still PENDING after 1 s"):
        waiters.wait_for_image_version(
            client, ARN, "2.0", timeout=0.9, sleep=clock.sleep, clock=clock.now, rng=lambda: 0.0
        )
    assert clock.now() == pytest.approx(1000.9)
    assert len(client.gets) == 2  # at 0.5 s and at the 0.9 s deadline


def test_a_build_finishing_just_before_the_deadline_is_not_a_timeout():
    clock = FakeClock()
    client = ScriptedImages(clock, [(1000.0, "IN_PROGRESS", None), (1029.9, "SUCCESSFUL", None)])
    version = waiters.wait_for_image_version(
        client, ARN, "1.0", timeout=30, sleep=clock.sleep, clock=clock.now, rng=lambda: 0.0
    )
    assert version["state"] == "SUCCESSFUL"


def test_failed_version_raises_build_failed_with_every_build():
    clock = FakeClock()
    builds = [
        [
            {
                "buildId": "b-3",
                "architecture": "ARM_64",
                "chipset": "GRAVITON",
                "chipsetGeneration": "3",
                "buildState": "FAILED",
                "stateReason": "S3_NO_SUCH_KEY",
            }
        ],
        [
            {
                "buildId": "b-4",
                "architecture": "ARM_64",
                "chipset": "GRAVITON",
                "chipsetGeneration": "4",
                "buildState": "FAILED",
                "stateReason": "S3_NO_SUCH_KEY",
            }
        ],
    ]
    client = ScriptedImages(clock, [(1002.0, "FAILED", "S3_NO_SUCH_KEY")], builds=builds)
    with pytest.raises(BuildFailed) as err:
        waiters.wait_for_image_version(
            client,
            ARN,
            "1.0",
            timeout=60,
            log_group="/aws/lambda-microvms/app",
            sleep=clock.sleep,
            clock=clock.now,
            rng=lambda: 0.0,
        )
    exc = err.value
    assert [b.build_id for b in exc.builds] == ["b-3", "b-4"]  # both pages of ListBuilds
    text = str(exc)
    assert f"image {ARN} version 1.0 failed to build: S3_NO_SUCH_KEY" in text
    assert "build b-4 (ARM_64, chipset generation 4): FAILED - S3_NO_SUCH_KEY" in text
    assert "what to do: the artifact object does not exist; check codeArtifact.uri" in text
    assert "full build logs: CloudWatch log group /aws/lambda-microvms/app" in text
    assert clock.now() - 1000.0 < 3.0  # an early failure is seen early


def test_failed_version_without_a_reason_says_so():
    clock = FakeClock()
    client = ScriptedImages(clock, [(1000.0, "FAILED", None)])
    with pytest.raises(BuildFailed) as err:
        waiters.wait_for_image_version(
            client, ARN, "1.0", timeout=60, sleep=clock.sleep, clock=clock.now
        )
    assert "failed to build: version state FAILED" in str(err.value)


def test_version_that_disappears_raises_image_gone():
    clock = FakeClock()
    missing = client_error(
        "ResourceNotFoundException",
        f"MicroVMImage not found for MicroVMImage: {ARN}, Version: 1.0",
        404,
    )
    client = ScriptedImages(clock, [], error=missing)
    with pytest.raises(ImageGone, match="disappeared while building"):
        waiters.wait_for_image_version(
            client, ARN, "1.0", timeout=60, sleep=clock.sleep, clock=clock.now
        )


def test_other_api_errors_propagate_unchanged():
    clock = FakeClock()
    denied = client_error("AccessDeniedException", "not authorized", 403)
    client = ScriptedImages(clock, [], error=denied)
    with pytest.raises(ClientError) as err:
        waiters.wait_for_image_version(
            client, ARN, "1.0", timeout=60, sleep=clock.sleep, clock=clock.now
        )
    assert waiters.error_code(err.value) == "AccessDeniedException"


def test_a_broken_progress_callback_never_breaks_the_wait():
    clock = FakeClock()
    client = ScriptedImages(clock, [(1001.0, "SUCCESSFUL", None)])

    def explode(*_):
        raise RuntimeError("log sink down")

    version = waiters.wait_for_image_version(
        client, ARN, "1.0", timeout=60, progress=explode, sleep=clock.sleep, clock=clock.now
    )
    assert version["state"] == "SUCCESSFUL"


# ---- wait_for_image_deleted / wait_for_microvms_terminated --------------------------------------


class ScriptedDeletes:
    def __init__(self, clock: FakeClock, gone_at: float | None, final_state: str = "DELETING"):
        self.clock = clock
        self.gone_at = gone_at
        self.final_state = final_state

    def get_microvm_image(self, imageIdentifier):
        if self.gone_at is not None and self.clock.now() >= self.gone_at:
            raise client_error(
                "ResourceNotFoundException",
                f"MicroVMImage not found for MicroVMImageID: {imageIdentifier}",
                404,
            )
        return {"imageArn": imageIdentifier, "state": self.final_state}


def test_image_delete_wait_ends_on_404():
    clock = FakeClock()
    waiters.wait_for_image_deleted(
        ScriptedDeletes(clock, gone_at=1005.0), ARN, timeout=60, sleep=clock.sleep, clock=clock.now
    )
    assert 1005.0 <= clock.now() <= 1005.0 + DEFAULT_BACKOFF.cap


def test_image_delete_wait_times_out():
    clock = FakeClock()
    with pytest.raises(WaitTimeout, match=f"image {ARN} still DELETING after 20 s"):
        waiters.wait_for_image_deleted(
            ScriptedDeletes(clock, gone_at=None),
            ARN,
            timeout=20,
            sleep=clock.sleep,
            clock=clock.now,
        )
    assert clock.now() == pytest.approx(1020.0)


def test_image_delete_failed_is_an_error():
    clock = FakeClock()
    with pytest.raises(RuntimeError, match="failed \\(state DELETE_FAILED\\)"):
        waiters.wait_for_image_deleted(
            ScriptedDeletes(clock, gone_at=None, final_state="DELETE_FAILED"),
            ARN,
            timeout=20,
            sleep=clock.sleep,
            clock=clock.now,
        )


class ScriptedVms:
    def __init__(self, clock: FakeClock, terminated_at: dict[str, float | None]):
        self.clock = clock
        self.terminated_at = terminated_at

    def get_microvm(self, microvmIdentifier):
        at = self.terminated_at[microvmIdentifier]
        if at == -1:
            raise client_error(
                "ResourceNotFoundException", f"MicroVM not found: {microvmIdentifier}", 404
            )
        done = at is not None and self.clock.now() >= at
        return {"microvmId": microvmIdentifier, "state": "TERMINATED" if done else "TERMINATING"}


def test_microvm_wait_ends_when_all_are_terminated_or_gone():
    clock = FakeClock()
    vms = ScriptedVms(clock, {"microvm-a": 1003.0, "microvm-b": -1, "microvm-c": 1001.0})
    waiters.wait_for_microvms_terminated(
        vms, list(vms.terminated_at), timeout=60, sleep=clock.sleep, clock=clock.now
    )
    assert 1003.0 <= clock.now() <= 1003.0 + DEFAULT_BACKOFF.cap


def test_microvm_wait_times_out_naming_the_stragglers():
    clock = FakeClock()
    vms = ScriptedVms(clock, {"microvm-a": 1001.0, "microvm-b": None})
    with pytest.raises(WaitTimeout) as err:
        waiters.wait_for_microvms_terminated(
            vms, ["microvm-a", "microvm-b"], timeout=15, sleep=clock.sleep, clock=clock.now
        )
    assert str(err.value) == "MicroVMs microvm-b not terminated after 15 s"


# ---- failure text and error helpers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "hint"),
    [
        ("S3_ACCESS_DENIED", "grant s3:GetObject on it to buildRoleArn"),
        ("S3_NO_SUCH_BUCKET", "the artifact bucket does not exist"),
        ("S3_CROSS_REGION_ACCESS_DENIED", "it must be in the image's region"),
        ("ARCHIVE_DOCKERFILE_NOT_FOUND", "no Dockerfile at its root"),
        ("The container image build failed.", "the Dockerfile build failed"),
        (
            "Ready hook check failed: the application returned a client error (HTTP 4xx) response",
            "the /ready hook did not answer 200",
        ),
        ("Build role: unable to assume role", "remove aws:SourceArn/SourceAccount"),
        ("INTERNAL_PLATFORM_ERROR", "retry the deployment"),
    ],
)
def test_failure_hints_cover_documented_codes_and_live_prose(reason, hint):
    text = str(BuildFailed(image_arn=ARN, image_version="1.0", state_reason=reason))
    (advice,) = [line for line in text.splitlines() if line.startswith("  what to do: ")]
    assert hint in advice


def test_unknown_reason_has_no_made_up_hint():
    text = str(BuildFailed(image_arn=ARN, image_version="1.0", state_reason="SOMETHING_NEW"))
    assert "what to do" not in text
    assert text == f"image {ARN} version 1.0 failed to build: SOMETHING_NEW"


def test_build_result_output_uses_api_names():
    out = BuildResult("b-3", "ARM_64", "GRAVITON", "3", "SUCCESSFUL", None).as_output()
    assert out == {
        "buildId": "b-3",
        "architecture": "ARM_64",
        "chipset": "GRAVITON",
        "chipsetGeneration": "3",
        "buildState": "SUCCESSFUL",
        "stateReason": None,
    }


def test_error_helpers_read_both_message_spellings_and_404s():
    lower = ClientError(
        {"Error": {"Code": "ValidationException", "message": "lowercase body"}},
        "CreateMicrovmImage",
    )
    assert waiters.error_message(lower) == "lowercase body"
    assert waiters.error_code(lower) == "ValidationException"
    assert not waiters.is_not_found(lower)
    bare_404 = ClientError(
        {
            "Error": {"Code": "404", "Message": "Not Found"},
            "ResponseMetadata": {"HTTPStatusCode": 404},
        },
        "GetMicrovmImage",
    )
    assert waiters.is_not_found(bare_404)
