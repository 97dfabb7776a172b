"""Pure parts of ``make pulumi``: our language host's version mapping and plugin discovery."""

from __future__ import annotations

import sys

import pytest

from devkit import language_host, toolchain

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("package", "plugin"),
    [
        ("7.51.1", "7.51.1"),
        ("1.2", "1.2.0"),
        ("3.31.0a1605189729", "3.31.0-alpha.1605189729"),
        ("1.2.3b4", "1.2.3-beta.4"),
        ("1.2.3rc4", "1.2.3-rc.4"),
        ("1.2.3.post4", "1.2.3+post4"),
        ("1.2.3.dev5", "1.2.3+dev5"),
        ("1.2.3.post4.dev5", "1.2.3+post4dev5"),
    ],
)
def test_plugin_version_follows_upstream_pep440_translation(package, plugin):
    assert language_host.plugin_version(package) == plugin


def test_plugin_version_refuses_what_upstream_cannot_map():
    with pytest.raises(ValueError, match="cannot derive a plugin version"):
        language_host.plugin_version("1!2.0")


def test_required_packages_of_this_venv_are_the_resource_plugins_the_program_uses():
    found = {(p.name, p.version, p.kind) for p in language_host.required_packages(sys.executable)}
    # pulumi-policy's pulumi-plugin.json says resource: false, so it is not a plugin dependency.
    assert found == {("aws", "v7.51.1", "resource"), ("command", "v1.2.1", "resource")}


def test_resolve_python_names_the_missing_virtualenv(tmp_path):
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import language_pb2

    opts = struct_pb2.Struct()
    opts.update({"toolchain": "uv", "virtualenv": ".venv"})
    info = language_pb2.ProgramInfo(
        root_directory=str(tmp_path), program_directory=str(tmp_path), options=opts
    )
    with pytest.raises(language_host.VenvError, match=r"'\.venv'.*make sync"):
        language_host.resolve_python(info)


def test_cache_dir_is_outside_the_repository_and_versioned(monkeypatch):
    monkeypatch.delenv("MICROVMS_TOOLCHAIN_DIR", raising=False)
    path = toolchain.cache_dir()
    assert toolchain.REPO not in path.parents
    assert path.name == f"pulumi-{toolchain.CLI_VERSION}"


def test_wanted_versions_record_the_sdk_the_launchers_come_from():
    wanted = toolchain.wanted_versions()
    assert wanted["pythonSdk"] == "3.272.0"
    assert wanted["pulumi"] == toolchain.CLI_VERSION
