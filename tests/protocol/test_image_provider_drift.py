"""Drift: a console change to an image's build configuration is seen by Read, then by Diff.

GetMicrovmImage returns none of the build configuration (docs/service-facts.md §6, §18), so the
provider's Read takes it from the newest built version (GetMicrovmImageVersion). Each case here
rebuilds the image out of band with one setting changed, as someone in the console would, then
drives Read and Diff through the SDK's dynamic-provider gRPC server against the emulator, the way
``pulumi refresh`` and the next ``pulumi preview`` do.
"""

from __future__ import annotations

import pytest

from components.microvm_image import spec
from microvms import waiters
from tests.protocol import test_image_provider_support as support

rig = support.rig
shared_rig = support.shared_rig

pytestmark = pytest.mark.protocol

_HOOKS_OFF = {
    "port": 9000,
    "microvmImageHooks": {"ready": "DISABLED"},
    "microvmHooks": {"run": "DISABLED"},
}

# (what changed, the console edit of the full UpdateMicrovmImage body, the output that shows it)
CASES = {
    "hooks": (lambda b: b.update(hooks=_HOOKS_OFF), "hooks"),
    "memory": (lambda b: b.update(resources=[{"minimumMemoryInMiB": 4096}]), "resources"),
    "logging": (lambda b: b.update(logging={"disabled": {}}), "logging"),
    "environment": (
        lambda b: b["environmentVariables"].update(LOG_LEVEL="debug"),
        "environmentVariables",
    ),
    "capabilities": (
        lambda b: b.update(additionalOsCapabilities=["ALL"]),
        "additionalOsCapabilities",
    ),
}


def _console_rebuild(rig, arn: str, inputs: dict, edit) -> None:
    body = spec.build_request(spec.plain_numbers(inputs))
    edit(body)
    version = rig.aws.update_microvm_image(imageIdentifier=arn, **body)["imageVersion"]
    waiters.wait_for_image_version(rig.aws, arn, version, timeout=30)


@pytest.mark.parametrize("case", CASES)
def test_refresh_reports_a_console_change_and_the_next_diff_rebuilds(rig, case):
    edit, key = CASES[case]
    inputs, created = rig.create()
    arn, state = created.id, created.outputs
    # no drift yet: Read returns what the state holds for every setting the program controls
    clean = rig.provider.read(arn, rig.urn, state, inputs).outputs
    for k in spec.BUILD_KEYS:
        assert clean.get(k) == state.get(k), k
    _, diff = rig.plan(clean, inputs)
    assert diff.changes == "DIFF_NONE"

    _console_rebuild(rig, arn, inputs, edit)
    rig.reset_calls()
    read = rig.provider.read(arn, rig.urn, state, inputs)
    calls = rig.calls()
    # read from the version: the image itself carries none of it
    assert calls.get("GetMicrovmImageVersion") == 1 and calls.get("GetMicrovmImage") == 1
    out = read.outputs
    assert read.id == arn and out["imageVersion"] == "2.0"
    assert out.get(key) != state.get(key), f"{key} drift not read back"
    changed = [k for k in spec.BUILD_KEYS if out.get(k) != state.get(k)]
    assert changed == [key], changed  # only what the console changed
    # secrets stay split by name and never print
    assert out["secretEnvironmentVariables"] == {"API_TOKEN": support.SECRET_VALUE}

    # the next preview: the program's settings against the refreshed state want a new version
    rig.reset_calls()
    news, diff = rig.plan(out, inputs)
    assert diff.changes == "DIFF_SOME" and diff.replaces == []
    assert rig.calls() == {}  # the diff is local
    applied = rig.provider.update(arn, rig.urn, out, news, inputs)
    assert applied["imageVersion"] == "3.0" and applied.get(key) == state.get(key)
    live = rig.aws.get_microvm_image_version(imageIdentifier=arn, imageVersion="3.0")
    assert spec.config_from_version(live, prior=inputs).get(key) == state.get(key)
