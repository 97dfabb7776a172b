"""The launchers `make pulumi` writes next to the CLI start what the engine expects of them."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.engine.stack import REPO


def _first_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        raise AssertionError("no port line")
    return proc.stdout.readline().decode().strip()


@pytest.mark.parametrize(
    ("launcher", "args", "cwd"),
    [
        # engine: `pulumi-analyzer-policy-python ENGINE . -virtualenv=DIR` in the pack's folder
        (
            "pulumi-analyzer-policy-python",
            ["127.0.0.1:1", ".", "-virtualenv=../.venv", "-toolchain=pip"],
            "policies",
        ),
        # engine: `pulumi-language-python ENGINE` in the program's folder
        ("pulumi-language-python", ["127.0.0.1:1"], "."),
    ],
)
def test_launcher_prints_its_port(pulumi_bin, launcher, args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PULUMI_RUNTIME_VIRTUALENV"}
    env["PULUMI_CONFIG"] = "{}"
    proc = subprocess.Popen(
        [str(pulumi_bin / launcher), *args], cwd=REPO / cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        line = _first_line(proc)
        assert line.isdigit() and 0 < int(line) < 65536, line
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_language_host_names_a_missing_virtualenv(pulumi_bin, tmp_path):
    """Run against a program whose virtualenv does not exist: the engine shows upstream's advice."""
    (tmp_path / "Pulumi.yaml").write_text(
        "name: nope\nruntime:\n  name: python\n  options:\n    virtualenv: venv\n"
    )
    (tmp_path / "__main__.py").write_text("import pulumi\n")
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": "x",
           "PULUMI_HOME": str(tmp_path / "home"), "PULUMI_SKIP_UPDATE_CHECK": "true"}  # fmt: skip
    pulumi = str(pulumi_bin / "pulumi")
    subprocess.run([pulumi, "stack", "init", "s", "--non-interactive"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)  # fmt: skip
    out = subprocess.run([pulumi, "preview", "--non-interactive"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode != 0
    assert "is not a virtual environment" in out.stdout + out.stderr
