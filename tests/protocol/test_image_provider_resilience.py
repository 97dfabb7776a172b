"""The image provider under throttling and when its process dies mid-create."""

from __future__ import annotations

import threading
import time

import pytest

from devkit.offline.provider import ProviderError
from tests.protocol.test_image_provider_support import (
    assert_no_secret_in_logs,
    program_inputs,
    start_rig,
)

# Provider processes killed mid-operation and rerun, on real build clocks.
pytestmark = [pytest.mark.protocol, pytest.mark.slow]


def test_throttling_at_30_percent_is_invisible(emulator_factory):
    emu = emulator_factory(throttle_rate=0.3)
    rig = start_rig(emu)
    try:
        inputs, created = rig.create()
        assert created.outputs["state"] == "CREATED"
        news, diff = rig.plan(created.outputs, inputs, tags={"team": "infra"})
        out = rig.provider.update(created.id, rig.urn, created.outputs, news, inputs)
        news2, diff = rig.plan(
            out, news, tags={"team": "infra"}, resources=[{"minimumMemoryInMiB": 4096}]
        )
        assert diff.changes == "DIFF_SOME"
        out2 = rig.provider.update(created.id, rig.urn, out, news2, news)
        assert out2["imageVersion"] == "2.0" and out2["tags"] == {"team": "infra"}
        refreshed = rig.provider.read(created.id, rig.urn, out2, news2)
        assert refreshed.outputs["resources"] == [{"minimumMemoryInMiB": 4096}]
        rig.provider.delete(created.id, rig.urn, out2, news2)
        rig.faults(throttleRate=0.0)
        assert rig.images() == []
        calls = rig.calls()
        # every throttled attempt is counted by the emulator: there were retries, one image
        assert calls["CreateMicrovmImage"] >= 1 and calls["DeleteMicrovmImage"] >= 1
        assert sum(calls.values()) > 20
    finally:
        rig.provider.stop()
    assert_no_secret_in_logs(rig)


def _create_in_background(rig, inputs):
    box: dict = {}

    def run():
        try:
            box["result"] = rig.provider.create(rig.urn, inputs)
        except ProviderError as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("token_remembered", [True, False], ids=["token-replay", "token-expired"])
def test_killed_mid_create_and_rerun_makes_one_image(emulator_factory, token_remembered):
    emu = emulator_factory(build_seconds=2.5)
    first = start_rig(emu)
    checked = first.check(program_inputs())
    thread, box = _create_in_background(first, checked.inputs)
    # wait until the build is running and the provider is polling, then SIGKILL the plugin
    _wait_for(lambda: first.calls().get("GetMicrovmImageVersion", 0) >= 1)
    first.provider._plugin.proc.kill()
    thread.join(30)
    assert "error" in box and "result" not in box
    first.provider.stop()
    if not token_remembered:
        # the service keeps idempotency tokens for an undocumented while (docs/service-facts.md §8); forget it
        emu.state.client_tokens.clear()

    second = start_rig(emu)
    try:
        rerun = second.check(program_inputs())
        assert rerun.inputs == checked.inputs
        created = second.provider.create(second.urn, rerun.inputs)
    finally:
        second.provider.stop()
    images = second.images()
    assert [i["name"] for i in images] == [created.outputs["name"]]
    assert created.outputs["state"] == "CREATED" and created.outputs["imageVersion"] == "1.0"
    if not token_remembered:
        assert "re-attaching to the build started by an interrupted run" in second.provider.stderr


@pytest.mark.parametrize(
    "build_seconds", [2.0, 9.0], ids=["build-finished-meanwhile", "build-still-running"]
)
def test_killed_mid_update_and_rerun_builds_one_version(emulator_factory, build_seconds):
    emu = emulator_factory(build_seconds=build_seconds)
    first = start_rig(emu)
    inputs, created = first.create()
    news, _ = first.plan(created.outputs, inputs, resources=[{"minimumMemoryInMiB": 4096}])
    box: dict = {}

    def run():
        try:
            box["result"] = first.provider.update(
                created.id, first.urn, created.outputs, news, inputs
            )
        except ProviderError as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    first.reset_calls()
    thread.start()
    _wait_for(lambda: first.calls().get("GetMicrovmImageVersion", 0) >= 1)
    first.provider._plugin.proc.kill()
    thread.join(30)
    first.provider.stop()
    assert "error" in box
    emu.state.client_tokens.clear()  # the worst case: the service forgot the token

    # the engine still holds the old state and retries the same update
    second = start_rig(emu)
    try:
        out = second.provider.update(created.id, second.urn, created.outputs, news, inputs)
    finally:
        second.provider.stop()
    assert out["imageVersion"] == "2.0", second.provider.stderr
    versions = sorted(
        v["imageVersion"]
        for v in second.aws.list_microvm_image_versions(imageIdentifier=created.id)["items"]
    )
    assert versions == ["1.0", "2.0"]
    assert "version 2.0 has the desired configuration" in second.provider.stderr
    if build_seconds > 5:
        assert "version 2.0 is already building; waiting for it" in second.provider.stderr
