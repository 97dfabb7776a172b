"""Failure paths of the image provider through the SDK's gRPC server against the emulator:
the build timeout, service 4xx errors, and secrets on every error path.

``buildTimeoutMinutes`` is at least 1 minute in ``check``; ``create``/``update`` honour whatever
value the checked inputs carry, so these tests hand the provider a fractional minute directly
(an internal override of the checked inputs, as only a test can) instead of waiting minutes.
"""

from __future__ import annotations

import pytest

from devkit.offline.provider import ProviderError
from tests.protocol import test_image_provider_support as support
from tests.protocol.test_image_provider_support import (
    SECRET_VALUE,
    assert_no_secret_in_logs,
    program_inputs,
    start_rig,
)

# fixtures shared with the other image-provider modules
rig = support.rig
shared_rig = support.shared_rig

pytestmark = pytest.mark.protocol

NEW_SECRET = "correct-horse-battery-staple-2"


@pytest.fixture
def slow_rig(emulator_factory):
    """A rig whose builds take 2.5 s (long enough to outlive a 0.6 s build timeout)."""
    r = start_rig(emulator_factory(build_seconds=2.5))
    try:
        yield r
    finally:
        r.provider.stop()
        assert_no_secret_in_logs(r)


@pytest.mark.slow  # waits out a real build timeout
def test_create_that_outlives_the_build_timeout_fails_and_leaves_nothing(slow_rig):
    r = slow_rig
    checked = r.check(program_inputs())
    assert checked.failures == []
    inputs = {**checked.inputs, "buildTimeoutMinutes": 0.01}  # 0.6 s, less than the 2.5 s build
    with pytest.raises(ProviderError) as err:
        r.provider.create(r.urn, inputs)
    text = err.value.details
    assert err.value.code.name == "UNKNOWN"
    assert "MicrovmImageError" in text
    assert "version 1.0 still IN_PROGRESS after 1 s (buildTimeoutMinutes)" in text
    assert "raise buildTimeoutMinutes (now 0.01)" in text
    assert "CloudWatch log group /aws/lambda-microvms/app" in text
    # the first build cannot be deleted while it runs (docs/service-facts.md §4.3): the provider waits it out
    assert "the failed image was deleted; nothing is left behind." in text
    assert SECRET_VALUE not in text
    assert r.images() == []
    calls = r.calls()
    assert calls.get("CreateMicrovmImage") == 1
    assert calls.get("DeleteMicrovmImage", 0) >= 1


@pytest.mark.slow  # waits out a real build timeout
def test_update_that_outlives_the_build_timeout_keeps_the_old_version(slow_rig):
    r = slow_rig
    inputs, created = r.create()
    news, diff = r.plan(created.outputs, inputs, resources=[{"minimumMemoryInMiB": 4096}])
    assert diff.changes == "DIFF_SOME"
    news = {**news, "buildTimeoutMinutes": 0.01}
    with pytest.raises(ProviderError) as err:
        r.provider.update(created.id, r.urn, created.outputs, news, inputs)
    text = err.value.details
    assert "version 2.0 still IN_PROGRESS after 1 s (buildTimeoutMinutes)" in text
    assert "raise buildTimeoutMinutes (now 0.01)" in text
    assert "Version 1.0 stays active." in text
    versions = {
        v["imageVersion"]: v["state"]
        for v in r.aws.list_microvm_image_versions(imageIdentifier=created.id)["items"]
    }
    assert versions["1.0"] == "SUCCESSFUL"
    # the timed-out version is deleted once the service lets go of it, or reported as left
    if "The failed version 2.0 was deleted." in text:
        assert versions.get("2.0") in (None, "DELETING", "DELETED")
    else:
        assert "Could not delete the failed version 2.0" in text
    # the engine keeps the old state; the next deployment retries the same update and ends on a
    # live version with the desired configuration (never on the timed-out one being deleted)
    retry = {**news, "buildTimeoutMinutes": 30}
    out = r.provider.update(created.id, r.urn, created.outputs, retry, inputs)
    assert out["versionState"] == "SUCCESSFUL" and out["resources"] == [
        {"minimumMemoryInMiB": 4096}
    ]
    live = r.aws.get_microvm_image_version(
        imageIdentifier=created.id, imageVersion=out["imageVersion"]
    )
    assert live["state"] == "SUCCESSFUL" and live["resources"] == [{"minimumMemoryInMiB": 4096}]
    assert (
        r.aws.get_microvm_image(imageIdentifier=created.id)["latestActiveImageVersion"]
        == (out["imageVersion"])
    )


def test_service_4xx_is_surfaced_at_once_with_the_service_message(rig):
    checked = rig.check(program_inputs())
    # what check would refuse, sent anyway: the service's own answer must come through intact
    inputs = {**checked.inputs, "resources": [{"minimumMemoryInMiB": 3000}]}
    rig.reset_calls()
    with pytest.raises(ProviderError) as err:
        rig.provider.create(rig.urn, inputs)
    text = err.value.details
    assert (
        "CreateMicrovmImage failed: ValidationException: The requested memory size of 3000 MiB "
        "is not supported by base MicroVM image arn:aws:lambda:us-east-1:aws:microvm-image:"
        "al2023-1. Supported memory sizes in MiB are: [512, 1024, 2048, 4096, 8192]."
    ) in text
    assert "botocore" not in text.split("MicrovmImageError")[-1]
    # the leftover lookup, then one create: a 4xx is not retried
    assert rig.calls() == {"ListMicrovmImages": 1, "CreateMicrovmImage": 1}
    assert rig.images() == []


def test_a_secret_echoed_by_the_service_is_scrubbed_from_a_create_error(rig):
    rig.faults(failNextBuilds=[f"RUN step failed: API_TOKEN={SECRET_VALUE} rejected"])
    with pytest.raises(ProviderError) as err:
        rig.create()
    text = err.value.details
    assert "failed to build: RUN step failed: API_TOKEN=*** rejected" in text
    assert SECRET_VALUE not in text
    assert rig.images() == []


def test_old_and_new_secret_values_are_scrubbed_from_an_update_error(rig):
    inputs, created = rig.create()
    news, diff = rig.plan(
        created.outputs, inputs, secretEnvironmentVariables={"API_TOKEN": NEW_SECRET}
    )
    assert diff.changes == "DIFF_SOME"
    rig.faults(failNextBuilds=[f"token {NEW_SECRET} differs from {SECRET_VALUE}"])
    with pytest.raises(ProviderError) as err:
        rig.provider.update(created.id, rig.urn, created.outputs, news, inputs)
    text = err.value.details
    assert "failed to build: token *** differs from ***" in text
    assert NEW_SECRET not in text and SECRET_VALUE not in text
    assert NEW_SECRET not in rig.provider.stderr and NEW_SECRET not in rig.provider.stdout


def test_no_secret_reaches_the_logs_across_a_whole_lifecycle(rig):
    """Create, tags, new version with a changed secret, refresh, delete: progress lines are
    logged at every step, and none carries a secret value."""
    inputs, created = rig.create()
    news, _ = rig.plan(created.outputs, inputs, tags={"team": "infra"})
    out = rig.provider.update(created.id, rig.urn, created.outputs, news, inputs)
    news2, _ = rig.plan(
        out, news, tags={"team": "infra"}, secretEnvironmentVariables={"API_TOKEN": NEW_SECRET}
    )
    out2 = rig.provider.update(created.id, rig.urn, out, news2, news)
    assert out2["imageVersion"] == "2.0"
    assert out2["secretEnvironmentVariables"] == {"API_TOKEN": NEW_SECRET}
    rig.provider.read(created.id, rig.urn, out2, news2)
    rig.provider.delete(created.id, rig.urn, out2, news2)
    logs = rig.provider.stderr + rig.provider.stdout
    assert "UpdateMicrovmImage accepted" in logs and "tags updated in place" in logs
    assert "after" in logs  # progress lines carry the elapsed time
    for value in (SECRET_VALUE, NEW_SECRET):
        assert value not in logs


def test_rerunning_an_update_whose_build_failed_builds_again(rig):
    """The "retry the deployment" hint must work: the rerun's stable clientToken would replay the
    answer naming the failed (and deleted) version; the provider starts a fresh build instead."""
    inputs, created = rig.create()
    news, _ = rig.plan(created.outputs, inputs, resources=[{"minimumMemoryInMiB": 4096}])
    rig.faults(failNextBuilds=["INTERNAL_PLATFORM_ERROR"])
    with pytest.raises(ProviderError) as err:
        rig.provider.update(created.id, rig.urn, created.outputs, news, inputs)
    assert "version 2.0 failed to build: INTERNAL_PLATFORM_ERROR" in err.value.details
    assert "retry the deployment" in err.value.details
    rig.reset_calls()
    out = rig.provider.update(created.id, rig.urn, created.outputs, news, inputs)
    assert out["versionState"] == "SUCCESSFUL" and out["imageVersion"] == "3.0"
    assert out["resources"] == [{"minimumMemoryInMiB": 4096}]
    assert rig.calls()["UpdateMicrovmImage"] == 2  # the replay, then the fresh build
    assert "belongs to an earlier failed attempt" in rig.provider.stderr
    # and a third run of the same program is a no-op
    _, diff = rig.plan(out, news, resources=[{"minimumMemoryInMiB": 4096}])
    assert diff.changes == "DIFF_NONE"
