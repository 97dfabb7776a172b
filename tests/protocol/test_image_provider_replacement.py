"""Create never re-attaches to a live image, names never run out, and a crash mid-create leaves one
image whatever the rerun's inputs (issue 13, items 1-3).

Every call goes through the SDK's dynamic-provider gRPC server against the emulator, in the order
the engine makes them: a replacement is Check (with the old inputs) → Create → Delete(old).
"""

from __future__ import annotations

import threading
import time

import pytest

from components.microvm_image import spec
from devkit.offline.provider import ProviderError
from tests.protocol import test_image_provider_support as support
from tests.protocol.test_image_provider_support import program_inputs, start_rig

rig = support.rig
shared_rig = support.shared_rig

pytestmark = pytest.mark.protocol

GONE = ("DELETING", "DELETED")


def live_images(r) -> dict[str, dict]:
    return {i["name"]: i for i in r.images() if i["state"] not in GONE}


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


# ---------------------------------------------------------------- item 1: replacements
@pytest.mark.parametrize(
    "edit",
    [{}, {"tags": {"team": "platform", "cost": "7"}}, {"keepVersions": 2}],
    ids=["forced-replace-equal-inputs", "replace-on-tags-change", "replace-on-settings-change"],
)
def test_a_replacement_builds_a_new_image_and_only_the_delete_removes_the_old(rig, edit):
    inputs, created = rig.create()
    # the engine re-checks against the old inputs, then (replace forced by --replace or
    # replaceOnChanges) creates the replacement before deleting the old image
    checked = rig.check(program_inputs(**edit), olds=inputs)
    assert checked.failures == []
    replacement = rig.provider.create(rig.urn, checked.inputs)
    assert replacement.id != created.id
    assert replacement.outputs["name"] != created.outputs["name"]
    both = live_images(rig)
    assert set(both) == {created.outputs["name"], replacement.outputs["name"]}
    assert {i["state"] for i in both.values()} == {"CREATED"}

    rig.provider.delete(created.id, rig.urn, created.outputs, inputs)
    after = live_images(rig)
    assert list(after) == [replacement.outputs["name"]]
    assert after[replacement.outputs["name"]]["state"] == "CREATED"
    live = rig.aws.get_microvm_image(imageIdentifier=replacement.id)
    assert live["latestActiveImageVersion"] == "1.0"


def test_a_second_and_third_forced_replace_still_never_touch_the_live_image(rig):
    inputs, state = rig.create()
    for _ in range(3):
        checked = rig.check(program_inputs(), olds=inputs)
        new = rig.provider.create(rig.urn, checked.inputs)
        assert new.id != state.id
        rig.provider.delete(state.id, rig.urn, state.outputs, inputs)
        assert list(live_images(rig)) == [new.outputs["name"]]
        inputs, state = checked.inputs, new


def test_a_replacement_that_keeps_an_explicit_name_is_refused_and_the_image_kept(rig):
    inputs, created = rig.create(name="app-fixed", namePrefix=None)
    checked = rig.check(program_inputs(name="app-fixed", namePrefix=None), olds=inputs)
    with pytest.raises(ProviderError) as err:
        rig.provider.create(rig.urn, checked.inputs)
    assert "an image named 'app-fixed' already exists" in err.value.details
    assert "is the one this resource manages" in err.value.details
    assert "a replacement needs a new name" in err.value.details
    assert live_images(rig)["app-fixed"]["state"] == "CREATED"


# ---------------------------------------------------------------- item 2: names never run out
@pytest.mark.slow  # provider processes killed and rerun on real build clocks
def test_destroy_and_up_cycles_never_run_out_of_names(rig):
    names = []
    for _ in range(7):  # more than the five fixed candidates the provider used to have
        inputs, created = rig.create()
        names.append(created.outputs["name"])
        assert created.outputs["state"] == "CREATED"
        rig.provider.delete(created.id, rig.urn, created.outputs, inputs)
    assert len(set(names)) == len(names)
    assert live_images(rig) == {}


@pytest.mark.slow  # provider processes killed and rerun on real build clocks
def test_failed_first_builds_never_run_out_of_names(rig):
    for _ in range(6):
        rig.faults(failNextBuilds=["INTERNAL_PLATFORM_ERROR"])
        with pytest.raises(ProviderError) as err:
            rig.create()
        assert "INTERNAL_PLATFORM_ERROR" in err.value.details
        assert "nothing is left behind" in err.value.details
    _, created = rig.create()
    assert created.outputs["state"] == "CREATED"
    wait_until(lambda: [i["name"] for i in rig.images()] == [created.outputs["name"]])


# ---------------------------------------------------------------- item 3: crash, then rerun
def _create_and_kill(r, inputs) -> None:
    """Start Create in the plugin, SIGKILL the plugin while it waits for the build."""
    box: dict = {}
    r.reset_calls()

    def run():
        try:
            box["result"] = r.provider.create(r.urn, inputs)
        except ProviderError as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: r.calls().get("GetMicrovmImageVersion", 0) >= 1)
    r.provider._plugin.proc.kill()
    thread.join(30)
    r.provider.stop()
    assert "error" in box and "result" not in box


EDITS = {
    "same-inputs": {},
    "tags-edit": {"tags": {"team": "infra", "cost": "42"}},
    "memory-edit": {"resources": [{"minimumMemoryInMiB": 4096}]},
    "env-edit": {"environmentVariables": {"LOG_LEVEL": "debug"}},
    "artifact-edit": {"codeArtifact": {"uri": "s3://artifact-bucket-1/images/app-def456.zip"}},
    "prefix-edit": {"namePrefix": "renamed"},
}


@pytest.mark.slow  # provider processes killed and rerun on real build clocks
@pytest.mark.parametrize("edit", list(EDITS.values()), ids=list(EDITS))
def test_killed_mid_create_then_rerun_with_edited_inputs_leaves_one_image(emulator_factory, edit):
    emu = emulator_factory(build_seconds=2.0)
    first = start_rig(emu)
    checked = first.check(program_inputs())
    _create_and_kill(first, checked.inputs)
    assert len(live_images(first)) == 1

    second = start_rig(emu)
    try:
        rerun = second.check(program_inputs(**edit))
        assert rerun.failures == []
        created = second.provider.create(second.urn, rerun.inputs)
    finally:
        second.provider.stop()
    out = created.outputs
    assert out["state"] in ("CREATED", "UPDATED")
    assert "clientToken" not in second.provider.stderr
    # exactly one image, the one in state; what the crashed run made is adopted or deleted
    wait_until(lambda: [i["name"] for i in second.images()] == [out["name"]])
    aws = second.aws
    version = aws.get_microvm_image_version(
        imageIdentifier=created.id, imageVersion=out["imageVersion"]
    )
    want = spec.fill_defaults(rerun.inputs)
    assert version["resources"] == want["resources"]
    assert version["codeArtifact"]["uri"] == want["codeArtifact"]["uri"]
    assert version["environmentVariables"]["LOG_LEVEL"] == want["environmentVariables"]["LOG_LEVEL"]
    tags = aws.list_tags(Resource=created.id)["Tags"]
    assert spec.user_tags(tags) == want["tags"]
    assert out["name"].startswith(f"{want['namePrefix']}-")
    if edit in ({}, EDITS["tags-edit"]):
        # adopted as it was built: no second build
        assert out["imageVersion"] == "1.0"
        assert "re-attaching to the build started by an interrupted run" in second.provider.stderr


@pytest.mark.slow  # provider processes killed and rerun on real build clocks
def test_killed_mid_replacement_then_rerun_adopts_the_replacement_not_the_live_image(
    emulator_factory,
):
    emu = emulator_factory(build_seconds=2.0)
    first = start_rig(emu)
    inputs, created = first.create()
    checked = first.check(program_inputs(), olds=inputs)
    _create_and_kill(first, checked.inputs)  # the forced replacement's create dies mid-build
    assert len(live_images(first)) == 2

    second = start_rig(emu)
    try:
        rerun = second.check(program_inputs(), olds=inputs)
        replacement = second.provider.create(second.urn, rerun.inputs)
        assert replacement.id != created.id
        assert len(live_images(second)) == 2  # the old one (in state) and the adopted one
        second.provider.delete(created.id, second.urn, created.outputs, inputs)
    finally:
        second.provider.stop()
    assert list(live_images(second)) == [replacement.outputs["name"]]
    assert "re-attaching to the build started by an interrupted run" in second.provider.stderr


@pytest.mark.slow  # provider processes killed and rerun on real build clocks
def test_killed_mid_create_whose_build_then_failed_is_rebuilt_under_a_new_name(emulator_factory):
    emu = emulator_factory(build_seconds=2.0)
    first = start_rig(emu)
    first.faults(failNextBuilds=["INTERNAL_PLATFORM_ERROR"])
    checked = first.check(program_inputs())
    _create_and_kill(first, checked.inputs)
    [leftover] = live_images(first)

    second = start_rig(emu)
    try:
        created = second.provider.create(second.urn, second.check(program_inputs()).inputs)
    finally:
        second.provider.stop()
    assert created.outputs["name"] != leftover and created.outputs["state"] == "CREATED"
    wait_until(lambda: [i["name"] for i in second.images()] == [created.outputs["name"]])
