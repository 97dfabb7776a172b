"""Self-tests of the dynamic-provider driver (devkit/offline/provider.py) over real gRPC.

The toy provider (``tests/fixtures/toy/program/toyprov.py``) manages a text file; its serialized
``__provider`` is taken from the toy program's graph, exactly what the engine would send.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import grpc
import pytest

from devkit.offline import wire
from devkit.offline.evaluate import evaluate_program
from devkit.offline.provider import DynamicProvider, ProviderError, make_urn, serialize_provider

pytestmark = pytest.mark.protocol

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "toy" / "program"
FILE_TYPE = "pulumi-python:dynamic/toy:File"


@pytest.fixture(scope="module")
def record():
    return evaluate_program("dev", program_dir=TOY).one(FILE_TYPE)


@pytest.fixture(scope="module")
def graph_config():
    g = evaluate_program("dev", program_dir=TOY)
    return g.config, g.secret_keys


@pytest.fixture(scope="module")
def provider(graph_config):
    config, secret_keys = graph_config
    with DynamicProvider(cwd=TOY, project="toyproj") as p:
        p.configure(config, secret_keys=secret_keys)
        yield p


def test_make_urn_and_serialize_provider(record, monkeypatch):
    assert (
        make_urn(FILE_TYPE, "f")
        == "urn:pulumi:test::lambda-microvms::pulumi-python:dynamic/toy:File::f"
    )
    assert record.urn == make_urn(
        FILE_TYPE, "site-file", stack="dev", project="toyproj", parent_type="toyproj:site:Site"
    )
    monkeypatch.syspath_prepend(str(TOY))
    import toyprov

    try:
        # Pickled by reference (an importable class): the same string the program produced.
        assert serialize_provider(toyprov.FileProvider()) == record.plain_inputs["__provider"]
    finally:
        sys.modules.pop("toyprov", None)


def test_handshake_plugin_info_and_configure_flags(provider):
    assert provider.plugin_info == {"version": "0.1.0"}
    # The Python server refuses secrets, so the engine (and the driver) unwrap them before sending.
    assert provider.configure_response == {
        "acceptSecrets": False,
        "supportsPreview": False,
        "acceptResources": False,
        "acceptOutputs": False,
    }


def test_full_lifecycle_writes_updates_and_deletes_the_file(provider, record, tmp_path):
    news = dict(record.inputs, dir=str(tmp_path))  # salt and __provider still secret-wrapped here
    checked = provider.check(record.urn, {}, news)
    assert checked.failures == []
    assert checked.inputs["mode"] == "0644"  # default filled in by check
    assert checked.inputs["salt"] == "<secret:toyproj:salt>"  # arrives unwrapped
    assert checked.inputs["__provider"] == record.plain_inputs["__provider"]

    created = provider.create(record.urn, checked.inputs)
    path = Path(created.id)
    assert path.parent == tmp_path and path.is_file()
    body = path.read_text()
    assert body.startswith(record.plain_inputs["content"] + "\n")
    assert "<secret:toyproj:salt>" not in body
    assert created.outputs["path"] == created.id
    assert created.outputs["env"] == "dev"  # configure() got the full namespaced stack config
    assert created.outputs["__provider"] == checked.inputs["__provider"]  # echoed back
    assert created.outputs["size"] == 3

    read = provider.read(created.id, record.urn, created.outputs, checked.inputs)
    assert read.id == created.id and read.outputs["sha256"] == created.outputs["sha256"]
    assert read.inputs is None

    same = provider.diff(created.id, record.urn, created.outputs, checked.inputs, checked.inputs)
    assert (same.changes, same.replaces, same.has_changes) == ("DIFF_NONE", [], False)
    changed = dict(checked.inputs, content="hello")
    diff = provider.diff(created.id, record.urn, created.outputs, changed, checked.inputs)
    assert (diff.changes, diff.replaces, diff.delete_before_replace) == ("DIFF_SOME", [], False)
    moved = provider.diff(created.id, record.urn, created.outputs, dict(changed, dir="/elsewhere"))
    assert (moved.changes, moved.replaces, moved.delete_before_replace) == (
        "DIFF_SOME",
        ["dir"],
        True,
    )

    updated = provider.update(created.id, record.urn, created.outputs, changed, checked.inputs)
    assert path.read_text().startswith("hello\n")
    assert updated["content"] == "hello" and updated["sha256"] != created.outputs["sha256"]

    provider.delete(created.id, record.urn, updated, checked.inputs)
    assert not path.exists()
    gone = provider.read(created.id, record.urn, updated)
    assert gone.id == ""  # the engine drops the resource from state


def test_check_failures_name_the_property(provider, record):
    result = provider.check(record.urn, {}, {"__provider": record.inputs["__provider"], "dir": ""})
    assert result.failures == [
        {"property": "dir", "reason": "dir is required: the directory to write into"},
        {"property": "content", "reason": "content is required"},
    ]


def test_preview_check_and_diff_keep_unknowns(provider, record, tmp_path):
    news = dict(record.inputs, dir=str(tmp_path), content=wire.UNKNOWN)
    checked = provider.check(record.urn, {}, news, preview=True)
    assert checked.inputs["content"] == wire.UNKNOWN
    olds = dict(record.plain_inputs, dir=str(tmp_path), mode="0644")
    diff = provider.diff("some-id", record.urn, olds, news, preview=True)
    assert diff.changes == "DIFF_SOME"
    # Outside preview the engine never sends unknowns: they are dropped like nulls.
    assert "content" not in provider.check(record.urn, {}, news, preview=False).inputs
    assert not list(tmp_path.iterdir())  # no Create during preview


def test_unknown_provider_is_replaced_by_the_real_string(provider, record, tmp_path):
    """pulumi 3.272 compares an Unknown object with a string, so an unknown __provider crashes."""
    olds = dict(record.plain_inputs, dir=str(tmp_path), mode="0644")
    news = dict(olds, __provider=wire.UNKNOWN)
    assert provider.check(record.urn, olds, news, preview=True).failures == []

    from pulumi.runtime.proto import provider_pb2

    raw = provider_pb2.CheckRequest(
        urn=record.urn,
        olds=wire.to_struct(olds),
        news=wire.to_struct(news),
    )
    with pytest.raises(grpc.RpcError) as info:
        provider._stub.Check(raw, timeout=30)
    assert info.value.code() == grpc.StatusCode.UNKNOWN
    assert "Unknown" in info.value.details()


def test_provider_exceptions_become_provider_errors(provider, record):
    props = dict(record.plain_inputs, dir="/nonexistent")
    with pytest.raises(ProviderError) as info:
        provider.delete("/nonexistent/toy-missing.txt", record.urn, props)
    assert info.value.code == grpc.StatusCode.UNKNOWN
    assert info.value.method == "Delete"
    assert (
        "FileNotFoundError: [Errno 2] No such file or directory: '/nonexistent/toy-missing.txt'"
        in (info.value.details)
    )


def test_provider_module_must_be_importable_from_cwd(record, tmp_path):
    """A provider pickled by reference fails when the plugin's cwd is not the program dir."""
    with (
        DynamicProvider(cwd=tmp_path, project="toyproj", python=sys.executable) as p,
        pytest.raises(ProviderError) as info,
    ):
        p.check(record.urn, {}, dict(record.inputs, dir=str(tmp_path)))
    assert info.value.code == grpc.StatusCode.UNKNOWN
    assert "No module named 'toyprov'" in info.value.details


def test_driver_injects_the_configured_provider_and_autoconfigures(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TOY))
    import toyprov

    try:
        prov = toyprov.FileProvider()
        urn = make_urn(FILE_TYPE, "direct", project="toyproj")
        with DynamicProvider(
            cwd=TOY,
            project="toyproj",
            provider=prov,
            config={"toyproj:env": "ci"},
            env={"TOY_MARK": "1"},
        ) as p:
            created = p.create(
                urn, {"dir": str(tmp_path), "content": "x", "salt": "s", "mode": "0600"}
            )
            assert p.configured and created.outputs["env"] == "ci"
            assert oct(os.stat(created.id).st_mode & 0o777) == "0o600"
            p.delete(created.id, urn, created.outputs)
    finally:
        sys.modules.pop("toyprov", None)
