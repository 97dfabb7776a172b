"""The pack's guarded adaptations of pulumi_policy internals (sdk_patches.py: decode cache, secret marks).

Each patch must be a no-op when the SDK does not have the shape it expects, and the speed patches
must be switchable off with ``MICROVMS_POLICY_SDK_PATCHES=0`` (the protocol test
``tests/protocol/test_policy_sdk_patches.py`` proves the verdicts are the same either way).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from devkit.offline.config import REPO_ROOT
from tests.unit.test_policy_iam_docs import image, sdk_patches

pytestmark = pytest.mark.unit


class _Servicer:
    def __init__(self):
        self.calls = []

    def Analyze(self, request, context):  # noqa: N802
        self.calls.append(("Analyze", request, context))
        return "analyzed"

    def AnalyzeStack(self, request, context, *extra, **kw):  # noqa: N802 - a future signature
        self.calls.append(("AnalyzeStack", request, context, extra, kw))
        return "stack"

    def Remediate(self, request, context):  # noqa: N802
        return "remediated"


def _fake_sdk(**drop):
    """A module-like object with every piece the decode cache wraps; ``drop`` removes some."""
    decoded = []

    def message_to_dict(message, *args, **kwargs):
        decoded.append(message)
        return {"decoded": message, "args": args, **kwargs}

    servicer = type("FakeServicer", (_Servicer,), {})
    sdk = SimpleNamespace(
        json_format=SimpleNamespace(MessageToDict=message_to_dict, Parse=lambda *a: "parsed"),
        unknown_checking_proxy=lambda props, *a, **k: ("proxy", id(props), a, tuple(k)),
        _PolicyAnalyzerServicer=servicer,
        deserialize_properties=lambda props, proxy_secrets=False: dict(props),
        decoded=decoded,
    )
    for path in drop:
        owner, _, attr = path.rpartition("__")
        target = getattr(sdk, owner) if owner else sdk
        if isinstance(target, type):
            setattr(target, attr, None)
        else:
            delattr(target, attr)
    return sdk


@pytest.mark.parametrize(
    "missing",
    [
        "json_format",
        "json_format__MessageToDict",
        "unknown_checking_proxy",
        "_PolicyAnalyzerServicer",
        "_PolicyAnalyzerServicer__Analyze",
        "_PolicyAnalyzerServicer__AnalyzeStack",
        "_PolicyAnalyzerServicer__Remediate",
    ],
)
def test_decode_cache_patches_nothing_if_the_sdk_differs(missing):
    sdk = _fake_sdk(**{missing: True})
    servicer = getattr(sdk, "_PolicyAnalyzerServicer", None)
    before = dict(vars(sdk))
    servicer_before = dict(vars(servicer)) if servicer else {}
    assert sdk_patches._install_decode_cache(sdk) is False
    assert dict(vars(sdk)) == before
    if servicer:
        assert dict(vars(servicer)) == servicer_before


def test_decode_cache_on_the_expected_shape_memoises_per_request_and_forwards_arguments(
    monkeypatch,
):
    monkeypatch.setenv(sdk_patches.SDK_PATCHES_ENV, "1")
    # Installing on the fake must not change what the rest of the suite sees of the real SDK.
    monkeypatch.setattr(
        sdk_patches, "_DECODE_CACHE_INSTALLED", sdk_patches.decode_cache_installed()
    )
    monkeypatch.setattr(sdk_patches, "REQUEST_CACHES", [])
    sdk = _fake_sdk()
    assert sdk_patches._install_decode_cache(sdk) is True
    assert sdk_patches._install_decode_cache(sdk) is False  # idempotent
    message = object()
    first = sdk.json_format.MessageToDict(message)
    assert sdk.json_format.MessageToDict(message) is first  # decoded once
    assert sdk.decoded == [message]
    # Anything but the SDK's plain call goes straight through, uncached.
    assert sdk.json_format.MessageToDict(message, preserving_proto_field_name=True)[
        "preserving_proto_field_name"
    ]
    assert sdk.json_format.Parse() == "parsed"  # the rest of the module is delegated
    bag = {"a": 1}
    assert sdk.unknown_checking_proxy(bag) is sdk.unknown_checking_proxy(bag)
    assert sdk.unknown_checking_proxy(bag, "x")[2] == ("x",)
    # Each request starts with empty tables, whatever the method's signature.
    servicer = sdk._PolicyAnalyzerServicer()
    assert servicer.Analyze("req", "ctx") == "analyzed"
    assert all(not table for table in sdk_patches.REQUEST_CACHES)
    sdk.json_format.MessageToDict(message)
    assert len(sdk.decoded) == 3
    assert servicer.AnalyzeStack("req", "ctx", "extra", flag=True) == "stack"
    assert servicer.calls[-1] == ("AnalyzeStack", "req", "ctx", ("extra",), {"flag": True})
    assert servicer.Remediate("req", "ctx") == "remediated"
    assert sdk._PolicyAnalyzerServicer.Analyze.__name__ == "Analyze"
    assert len(sdk_patches.REQUEST_CACHES) == 2 and sdk_patches.decode_cache_installed()


def test_decode_cache_honours_the_off_switch(monkeypatch):
    monkeypatch.setenv(sdk_patches.SDK_PATCHES_ENV, "0")
    sdk = _fake_sdk()
    before = dict(vars(sdk))
    assert sdk_patches._install_decode_cache(sdk) is False
    assert dict(vars(sdk)) == before
    for off in ("off", "FALSE", " no "):
        monkeypatch.setenv(sdk_patches.SDK_PATCHES_ENV, off)
        assert not sdk_patches.sdk_patches_enabled()
    monkeypatch.setenv(sdk_patches.SDK_PATCHES_ENV, "1")
    assert sdk_patches.sdk_patches_enabled()


@pytest.mark.parametrize("shape", ["missing", "not-callable"])
def test_secret_marks_patch_nothing_if_the_sdk_differs(shape):
    sdk = _fake_sdk()
    if shape == "missing":
        del sdk.deserialize_properties
    else:
        sdk.deserialize_properties = "not a function"
    before = dict(vars(sdk))
    assert sdk_patches._install_secret_marks(sdk) is False
    assert dict(vars(sdk)) == before


def test_secret_marks_mark_only_secrets_and_pass_other_calls_through():
    calls = []

    def original(props, *args, **kwargs):
        calls.append((args, kwargs))
        out = {}
        for key, value in props.items():
            if isinstance(value, dict) and "value" in value:
                out[key] = value["value"]
            elif isinstance(value, dict):
                out[key] = {k: v["value"] if isinstance(v, dict) else v for k, v in value.items()}
            else:
                out[key] = value
        return out

    sdk = SimpleNamespace(deserialize_properties=original)
    assert sdk_patches._install_secret_marks(sdk) is True
    assert sdk_patches._install_secret_marks(sdk) is False  # idempotent
    wrapped = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
    props = {
        "environmentVariables": {"TOKEN": {**wrapped, "value": "s3cr3t"}, "PLAIN": "p"},
        "other": {**wrapped, "value": "x"},
    }
    decoded = sdk.deserialize_properties(props)
    env = decoded["environmentVariables"]
    assert env == {"TOKEN": "s3cr3t", "PLAIN": "p"}
    assert image.is_secret(env["TOKEN"]) and not image.is_secret(env["PLAIN"])
    assert not image.is_secret(decoded["other"])  # only the marked properties are re-walked
    # The secrets-preserving path (Remediate), extra positional args and keywords: untouched.
    for args, kwargs in (((True,), {}), ((False, "future"), {}), ((), {"proxy_secrets": False})):
        out = sdk.deserialize_properties(props, *args, **kwargs)
        assert not image.is_secret(out["environmentVariables"]["TOKEN"])
        assert calls[-1] == (args, kwargs)


_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import graph, image, sdk_patches
import pulumi_policy.policy as sdk
from google.protobuf import json_format
from pulumi_policy import proxy
print(json.dumps({
    "decode_cache": sdk_patches.decode_cache_installed(),
    "json_format_is_original": sdk.json_format is json_format,
    "proxy_is_original": sdk.unknown_checking_proxy is proxy.unknown_checking_proxy,
    "servicer_wrapped": hasattr(sdk._PolicyAnalyzerServicer.Analyze, "__wrapped__"),
    "secret_marks": getattr(sdk.deserialize_properties, "_marks_secrets", False),
}))
"""


@pytest.mark.parametrize(("value", "patched"), [(None, True), ("1", True), ("0", False)])
def test_the_pack_process_applies_the_switch(value, patched):
    """Import the pack's modules in a fresh interpreter, as the engine's policy host does."""
    env = {k: v for k, v in os.environ.items() if k != sdk_patches.SDK_PATCHES_ENV}
    if value is not None:
        env[sdk_patches.SDK_PATCHES_ENV] = value
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(REPO_ROOT / "policies")],
        capture_output=True, text=True, timeout=60, env=env, cwd=REPO_ROOT / "policies",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    state = json.loads(proc.stdout)
    assert state == {
        "decode_cache": patched,
        "json_format_is_original": not patched,
        "proxy_is_original": not patched,
        "servicer_wrapped": patched,
        "secret_marks": True,  # a correctness patch: kept with the speed patches off
    }
