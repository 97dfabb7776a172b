"""``make up STACK=local`` as a user runs it: ``python -m devkit.local_stack up/down`` (what the
Make targets call) drives the real Pulumi CLI built by ``make pulumi``.

The only stand-ins are the pulumi-aws and pulumi-command test doubles in this test's own
``PULUMI_HOME`` (automatic plugin downloads off). Everything else is the user's path: the module
starts moto, the emulator and the image app itself, selects or creates the stack in a file backend,
runs ``pulumi up --policy-pack``, prints the outputs and the smoke verdict; a second ``up`` reuses
the services and changes nothing, and so does ``preview``; after the emulators were stopped ``up`` refreshes and rebuilds;
``down`` destroys the stack and stops every service. And when the plugins are missing, ``up`` says
which and how to install them before it starts anything.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devkit import local_stack, services, toolchain
from tests.engine.stack import REPO, rewrite_endpoints
from tests.fixtures.local_services import FAST_SERVICE_ENV

pytestmark = pytest.mark.slow


def _user_env(tmp_path: Path, ports: services.Ports, *, doubles: bool = True) -> dict[str, str]:
    from tests.engine.doubles.command_plugin import install_command_double
    from tests.engine.doubles.plugins import install_aws_double

    home = tmp_path / "pulumi-home"
    home.mkdir()
    if doubles:
        install_aws_double(home, sys.executable)
        install_command_double(home, sys.executable)
    # Pulumi.local.yaml with this test's ports, as a user who moved the ports would copy it.
    config = tmp_path / "Pulumi.local.yaml"
    committed = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())
    config.write_text(yaml.safe_dump(rewrite_endpoints(committed, ports), sort_keys=False))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LOCAL_", "PULUMI_")) and k != "MICROVMS_PROXY_URL"
    }
    env.update(FAST_SERVICE_ENV)
    env.update(
        PATH=f"{toolchain.bin_dir()}{os.pathsep}{env.get('PATH', '')}",
        PULUMI_HOME=str(home),
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        NO_COLOR="1",
        AWS_PROFILE="someone-real",  # never reaches the local stack (fake keys only)
        LOCAL_STACK_STATE_DIR=str(tmp_path / "local"),
        LOCAL_STACK_PULUMI_CONFIG=str(config),
        LOCAL_STACK_LIFETIME_SECONDS="900",
        LOCAL_MOTO_PORT=str(ports.moto),
        LOCAL_EMULATOR_PORT=str(ports.emulator),
        LOCAL_APP_PORT=str(ports.app),
        LOCAL_HOOK_PORT=str(ports.hooks),
    )
    return env


def _local_stack(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "devkit.local_stack", command],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    sys.stdout.write(f"$ local_stack {command} → exit {proc.returncode}\n{proc.stdout[-6000:]}\n")
    sys.stdout.write(proc.stderr[-4000:])
    return proc


def _exported_resources(env: dict[str, str], ports: services.Ports, state: Path) -> list[dict]:
    """The stack's resources in the file backend, as ``pulumi stack export`` shows them."""
    proc = subprocess.run(
        [str(toolchain.bin_dir() / "pulumi"), "stack", "export", "--stack", "local",
         "--non-interactive"],
        cwd=REPO, env=local_stack.pulumi_env(ports, state_dir=state, base=env),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)["deployment"].get("resources") or []


def _nothing_running(state: Path, ports: services.Ports) -> list[str]:
    left = [f"port {p}" for p in (ports.moto, ports.emulator, ports.app) if services.port_open(p)]
    left += [f"record {p.name}" for p in (state / "services").glob("*.json")]
    return left


def test_make_up_twice_preview_restart_and_down_under_the_real_cli(tmp_path, pulumi_bin):
    ports = services.free_ports()
    env = _user_env(tmp_path, ports)
    state = tmp_path / "local"
    try:
        # ---- first up: services started, stack created, the image built, the smoke test passed
        first = _local_stack("up", env)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        for name in ("moto", "app", "emulator"):
            assert f"{name:9s} started " in first.stdout
        assert "pulumi stack init local --secrets-provider passphrase" in first.stdout
        assert (
            "--policy-pack policies --policy-pack-config policies/config/dev.json" in first.stdout
        )
        assert f"--config-file {tmp_path / 'Pulumi.local.yaml'}" in first.stdout
        assert '"imageArn": "arn:aws:lambda:us-east-1:123456789012:microvm-image:' in first.stdout
        assert "Smoke test: PASSED — GET /health on MicroVM " in first.stdout
        assert "someone-real" not in first.stdout + first.stderr
        created = _exported_resources(env, ports, state)
        assert any(r["type"].endswith("MicrovmImage") for r in created)

        # ---- second up: the same services, nothing to change
        second = _local_stack("up", env)
        assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
        for name in ("moto", "app", "emulator"):
            assert f"{name:9s} reused " in second.stdout
        assert "stack init" not in second.stdout and "--refresh" not in second.stdout
        assert re.search(r"^\s+\d+ unchanged$", second.stdout, re.M), second.stdout[-3000:]
        assert not re.search(r"^\s+\+ \d+ created", second.stdout, re.M)

        # ---- make preview: the same services, the pack, and nothing to change
        preview = _local_stack("preview", env)
        assert preview.returncode == 0, preview.stdout[-4000:] + preview.stderr[-4000:]
        assert "--diff" in preview.stdout and "--policy-pack policies" in preview.stdout
        assert re.search(r"^\s+\d+ unchanged$", preview.stdout, re.M), preview.stdout[-3000:]

        # ---- the emulators stopped (their state is in memory): up refreshes, then rebuilds
        stop = _local_stack("stop-emulators", env)
        assert stop.returncode == 0
        third = _local_stack("up", env)
        assert third.returncode == 0, third.stdout[-4000:] + third.stderr[-4000:]
        assert "--refresh" in third.stdout
        assert "Smoke test: PASSED" in third.stdout

        # ---- down: the stack is empty and nothing is left running
        down = _local_stack("down", env)
        assert down.returncode == 0, down.stdout[-4000:] + down.stderr[-4000:]
        assert "Stopped: local stack: emulator, app, moto." in down.stdout
        assert _exported_resources(env, ports, state) == []
        assert _nothing_running(state, ports) == []
    finally:
        services.stop_services(state)


def test_make_up_without_the_plugins_says_which_and_starts_nothing(tmp_path, pulumi_bin):
    ports = services.free_ports()
    env = _user_env(tmp_path, ports, doubles=False)  # an empty PULUMI_HOME, downloads off
    state = tmp_path / "local"
    try:
        proc = _local_stack("up", env)
        assert proc.returncode == local_stack.EXIT_NO_PLUGINS, proc.stdout + proc.stderr
        assert "The Pulumi resource plugins this program needs are not installed:" in proc.stderr
        for name, version in (("aws", "7.51.1"), ("command", "1.2.1")):
            assert f"  - pulumi-resource-{name} v{version}\n" in proc.stderr
            assert f"    pulumi plugin install resource {name} v{version}\n" in proc.stderr
        assert "Nothing was started." in proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
        assert "started" not in proc.stdout
        assert _nothing_running(state, ports) == []
    finally:
        services.stop_services(state)
