"""``activeVersion``: roll back to a retained version without a rebuild, and back to the newest.

Through the SDK's dynamic-provider gRPC server against the emulator, which serves RunMicrovm
without ``imageVersion`` from the newest ACTIVE version, as the service does
(docs/service-facts.md §4.3). Every rollback is checked by starting a MicroVM the way the smoke
test does (no version given) and reading which version it got.
"""

from __future__ import annotations

import pytest

from components.microvm_image import spec
from devkit.offline.provider import ProviderError
from microvms import waiters
from tests.protocol import test_image_provider_support as support

rig = support.rig
shared_rig = support.shared_rig

pytestmark = pytest.mark.protocol


def _artifact(n: int) -> dict:
    return {"uri": f"s3://artifact-bucket-1/images/app-v{n}.zip"}


def _built(rig, versions: int, **overrides):
    """An image with ``versions`` versions built through the provider; (state, inputs)."""
    inputs, created = rig.create(**overrides)
    state = created.outputs
    for n in range(2, versions + 1):
        news, _ = rig.plan(state, inputs, codeArtifact=_artifact(n), **overrides)
        state = rig.provider.update(created.id, rig.urn, state, news, inputs)
        inputs = news
    return state, inputs


def _statuses(rig, arn: str) -> dict[str, str]:
    items = rig.aws.list_microvm_image_versions(imageIdentifier=arn)["items"]
    return {v["imageVersion"]: v["status"] for v in items if v["state"] == "SUCCESSFUL"}


def _serving(rig, arn: str) -> str:
    """The version a MicroVM started without imageVersion gets (what the smoke test runs)."""
    vm = rig.aws.run_microvm(imageIdentifier=arn)
    rig.aws.terminate_microvm(microvmIdentifier=vm["microvmId"])
    return vm["imageVersion"]


def test_rollback_is_in_place_and_the_pinned_version_serves(rig):
    state, inputs = _built(rig, 3)
    arn = state["imageArn"]
    news, diff = rig.plan(state, inputs, codeArtifact=_artifact(3), activeVersion="2.0")
    assert news["activeVersion"] == "2.0"
    assert diff.changes == "DIFF_SOME" and diff.replaces == []
    rig.reset_calls()
    out = rig.provider.update(arn, rig.urn, state, news, inputs)
    calls = rig.calls()
    # no build, no delete: two status changes (2.0 stays ACTIVE, so only 3.0 is set INACTIVE)
    assert "UpdateMicrovmImage" not in calls and "DeleteMicrovmImageVersion" not in calls
    assert calls.get("UpdateMicrovmImageVersion") == 1, calls
    assert out["imageArn"] == arn and out["imageVersion"] == "3.0"  # the newest build, unchanged
    assert out["latestActiveImageVersion"] == "2.0" and out["activeVersion"] == "2.0"
    assert _statuses(rig, arn) == {"1.0": "ACTIVE", "2.0": "ACTIVE", "3.0": "INACTIVE"}
    assert _serving(rig, arn) == "2.0"
    # the same program again: nothing to do; and a refresh finds no drift
    _, diff = rig.plan(out, news, codeArtifact=_artifact(3), activeVersion="2.0")
    assert diff.changes == "DIFF_NONE"
    refreshed = rig.provider.read(arn, rig.urn, out, news)
    assert refreshed.outputs["activeVersion"] == "2.0"
    assert refreshed.outputs["imageVersion"] == "3.0"
    _, diff = rig.plan(refreshed.outputs, news, codeArtifact=_artifact(3), activeVersion="2.0")
    assert diff.changes == "DIFF_NONE"


def test_clearing_active_version_returns_to_the_newest(rig):
    state, inputs = _built(rig, 3)
    arn = state["imageArn"]
    pinned, _ = rig.plan(state, inputs, codeArtifact=_artifact(3), activeVersion="1")
    state = rig.provider.update(arn, rig.urn, state, pinned, inputs)
    assert pinned["activeVersion"] == "1.0" and _serving(rig, arn) == "1.0"
    assert _statuses(rig, arn) == {"1.0": "ACTIVE", "2.0": "INACTIVE", "3.0": "INACTIVE"}

    cleared, diff = rig.plan(state, pinned, codeArtifact=_artifact(3))
    assert "activeVersion" not in cleared
    assert diff.changes == "DIFF_SOME" and diff.replaces == []
    rig.reset_calls()
    out = rig.provider.update(arn, rig.urn, state, cleared, pinned)
    assert "UpdateMicrovmImage" not in rig.calls()
    assert out["latestActiveImageVersion"] == "3.0" and "activeVersion" not in out
    assert _statuses(rig, arn) == {"1.0": "ACTIVE", "2.0": "ACTIVE", "3.0": "ACTIVE"}
    assert _serving(rig, arn) == "3.0"
    refreshed = rig.provider.read(arn, rig.urn, out, cleared)
    assert "activeVersion" not in refreshed.outputs


def test_retention_never_retires_the_pinned_version_and_a_build_keeps_the_pin(rig):
    inputs, created = rig.create(keepVersions=1, activeVersion="1.0")
    arn, state = created.id, created.outputs
    for n in (2, 3):
        news, diff = rig.plan(
            state, inputs, keepVersions=1, activeVersion="1.0", codeArtifact=_artifact(n)
        )
        assert diff.changes == "DIFF_SOME"
        state = rig.provider.update(arn, rig.urn, state, news, inputs)
        inputs = news
        # the new build exists and is the state's version, but the pinned one serves
        assert state["imageVersion"] == f"{n}.0"
        assert state["latestActiveImageVersion"] == "1.0"
        assert _serving(rig, arn) == "1.0"
    # keepVersions=1 keeps the newest, and the pinned version besides
    assert state["retainedVersions"] == ["3.0", "1.0"]
    assert _statuses(rig, arn) == {"1.0": "ACTIVE", "3.0": "INACTIVE"}


def test_a_version_the_image_does_not_keep_fails_listing_the_retained_ones(rig):
    state, inputs = _built(rig, 2)
    arn = state["imageArn"]
    news, diff = rig.plan(state, inputs, codeArtifact=_artifact(2), activeVersion="9.0")
    assert diff.changes == "DIFF_SOME"
    rig.reset_calls()
    with pytest.raises(ProviderError) as err:
        rig.provider.update(arn, rig.urn, state, news, inputs)
    text = err.value.details
    assert "activeVersion: version 9.0 is not a retained" in text
    assert "retained versions: 2.0, 1.0" in text
    assert "clear it to serve the newest" in text
    calls = rig.calls()
    assert "UpdateMicrovmImageVersion" not in calls and "UpdateMicrovmImage" not in calls
    assert _statuses(rig, arn) == {"1.0": "ACTIVE", "2.0": "ACTIVE"}


def test_a_new_image_cannot_pin_a_version_it_will_not_have(rig):
    with pytest.raises(ProviderError) as err:
        rig.create(activeVersion="2.0")
    assert "activeVersion: version 2.0 does not exist; a new image has only version 1.0" in (
        err.value.details
    )
    assert rig.images() == []


def test_check_refuses_a_malformed_active_version_with_no_api_call(rig):
    rig.reset_calls()
    for bad in ("latest", "2.5", "0", "v2", True):
        checked = rig.check(support.program_inputs(activeVersion=bad))
        assert [f["property"] for f in checked.failures] == ["activeVersion"], checked.failures
        assert 'give "<n>.0"' in checked.failures[0]["reason"]
    assert rig.calls() == {}


def test_a_console_rollback_is_drift_that_the_next_update_undoes(rig):
    state, inputs = _built(rig, 2)
    arn = state["imageArn"]
    # someone rolls back by hand: 1.0 serves
    rig.aws.update_microvm_image_version(imageIdentifier=arn, imageVersion="2.0", status="INACTIVE")
    refreshed = rig.provider.read(arn, rig.urn, state, inputs)
    assert refreshed.outputs["activeVersion"] == "1.0"
    assert refreshed.outputs["latestActiveImageVersion"] == "1.0"
    news, diff = rig.plan(refreshed.outputs, inputs, codeArtifact=_artifact(2))
    assert diff.changes == "DIFF_SOME" and diff.replaces == []
    out = rig.provider.update(arn, rig.urn, refreshed.outputs, news, inputs)
    assert out["latestActiveImageVersion"] == "2.0" and _serving(rig, arn) == "2.0"


def test_a_console_build_while_pinned_is_drift_and_the_pin_is_restored(rig):
    state, inputs = _built(rig, 2)
    arn = state["imageArn"]
    pinned, _ = rig.plan(state, inputs, codeArtifact=_artifact(2), activeVersion="1.0")
    state = rig.provider.update(arn, rig.urn, state, pinned, inputs)
    # a console rebuild mints 3.0, which the service makes ACTIVE (so it would serve)
    body = spec.build_request(
        spec.plain_numbers({**pinned, "resources": [{"minimumMemoryInMiB": 4096}]})
    )
    rig.aws.update_microvm_image(imageIdentifier=arn, **body)
    waiters.wait_for_image_version(rig.aws, arn, "3.0", timeout=30)
    refreshed = rig.provider.read(arn, rig.urn, state, pinned)
    out = refreshed.outputs
    assert out["imageVersion"] == "3.0" and out["resources"] == [{"minimumMemoryInMiB": 4096}]
    assert "activeVersion" not in out  # the newest serves: the pin is gone
    _, diff = rig.plan(out, pinned, codeArtifact=_artifact(2), activeVersion="1.0")
    assert diff.changes == "DIFF_SOME"
    out = rig.provider.update(arn, rig.urn, out, pinned, pinned)
    assert out["imageVersion"] == "4.0"  # the program's configuration again, as a new build
    assert out["latestActiveImageVersion"] == "1.0" and _serving(rig, arn) == "1.0"
