"""Delete racing a MicroVM that starts after the provider looked (issue 13, item 4).

The provider must look again: terminate the newcomer (``terminateMicrovmsOnDelete``) or refuse at
once naming it, never retry DeleteMicrovmImage blindly. The emulator's injectable clock holds a
terminating MicroVM in ``TERMINATING`` until the test moves time on, so the race is staged in a
fixed order without waiting; the refusal case uses injected latency to open the window.
"""

from __future__ import annotations

import threading
import time

import pytest

from devkit.offline.provider import ProviderError
from tests.protocol.test_image_provider_support import start_rig

pytestmark = pytest.mark.protocol

HOUR = 3600.0


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def _delete_in_background(rig, created, inputs) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def run():
        try:
            rig.provider.delete(created.id, rig.urn, created.outputs, inputs)
            box["done"] = True
        except ProviderError as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _running(rig, image_arn) -> dict:
    vm = rig.aws.run_microvm(imageIdentifier=image_arn)
    _wait(lambda: rig.aws.get_microvm(microvmIdentifier=vm["microvmId"])["state"] == "RUNNING")
    return vm


def test_a_microvm_started_during_delete_is_terminated_too(emulator_factory):
    # terminations take an hour of emulator time: nothing finishes until the test says so
    emu = emulator_factory(transition_seconds=HOUR)
    rig = start_rig(emu)
    try:
        inputs, created = rig.create(terminateMicrovmsOnDelete=True)
        first = _running(rig, created.id)
        rig.reset_calls()
        thread, box = _delete_in_background(rig, created, inputs)
        _wait(lambda: rig.calls().get("TerminateMicrovm", 0) >= 1)
        # the provider terminated what it saw and waits; a new MicroVM starts meanwhile
        late = _running(rig, created.id)
        rig._admin("clock/advance", {"seconds": HOUR})  # the first one is gone now
        _wait(lambda: rig.calls().get("TerminateMicrovm", 0) >= 2)
        rig._admin("clock/advance", {"seconds": HOUR})
        thread.join(60)
        assert box.get("done"), box
        calls = rig.calls()
    finally:
        rig.provider.stop()
    for vm in (first, late):
        assert rig.aws.get_microvm(microvmIdentifier=vm["microvmId"])["state"] == "TERMINATED"
    assert rig.images() == []
    # refused once while the newcomer ran, then accepted: no blind retries
    assert calls["DeleteMicrovmImage"] == 2
    assert calls["TerminateMicrovm"] == 2
    assert late["microvmId"] in rig.provider.stderr


def test_a_microvm_started_during_delete_is_named_at_once_when_not_terminating(emulator_factory):
    emu = emulator_factory()
    rig = start_rig(emu)
    try:
        inputs, created = rig.create()
        rig.reset_calls()
        # every call now takes a second: the MicroVM started after the provider's listing is
        # running when its DeleteMicrovmImage is served
        rig.faults(latencyMs=1000)
        thread, box = _delete_in_background(rig, created, inputs)
        _wait(lambda: rig.calls().get("ListMicrovms", 0) >= 1)
        late = rig.aws.run_microvm(imageIdentifier=created.id)
        thread.join(60)
        rig.faults(latencyMs=0)
        calls = rig.calls()
    finally:
        rig.provider.stop()
    assert "error" in box, box
    text = box["error"].details
    assert "refusing to delete image" in text
    assert late["microvmId"] in text
    assert "terminateMicrovmsOnDelete" in text
    # one refused delete, one fresh listing, then the answer: not ten minutes of retries
    assert calls["DeleteMicrovmImage"] == 1
    assert calls["ListMicrovms"] == 2
    assert rig.aws.get_microvm_image(imageIdentifier=created.id)["state"] == "CREATED"
    rig.aws.terminate_microvm(microvmIdentifier=late["microvmId"])
