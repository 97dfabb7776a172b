"""``make sandbox`` end to end, as a chain of real processes, the way the README tells a newcomer.

1. ``python -m devkit.sandbox up`` (what ``make sandbox`` runs) starts moto, the real image app,
   the guest shell server and the emulator under their watchdogs, and builds an image from
   ``image/`` through ``MicrovmImageProvider`` (the build calls the app's ``/ready`` and
   ``/validate`` hooks). A second ``up`` reuses all of it.
2. The printed lines are ``eval``-ed by bash; in that environment the ``microvms`` console script
   runs ``ls``, ``run --wait``, ``probe`` (200 from the real app through the emulator's proxy),
   ``shell`` (a command echoed back through the WebSocket and a PTY) and ``smoke``.
3. ``python -m devkit.local_stack down`` (what ``make down`` runs; no Pulumi CLI on PATH) stops
   everything: no service process, no listening port, no record; ``env`` then says it is not running.

Plus the failure path: a build that fails (the app's ``/ready`` answers 400) leaves nothing running.
Every service binds 127.0.0.1 on a free port and stops by itself after ``LIFETIME`` seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest

from devkit import services

# A chain of real processes per test (services, an image build, the CLI in bash).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
LIFETIME = "300"
SERVICES = ("moto", "app", "shell", "emulator")
FAST = {
    "LOCAL_EMULATOR_BUILD_SECONDS": "0.3",
    "LOCAL_EMULATOR_RUN_SECONDS": "0.1",
    "APP_INIT_SECONDS": "0.3",
    "APP_SUSPEND_DRAIN_SECONDS": "1",
}


def _path_without_pulumi() -> str:
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if not (Path(d) / "pulumi").exists())


def _base_env(state_dir: Path) -> dict[str, str]:
    """A newcomer's shell: no AWS settings, the sandbox's state in a temporary directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MICROVMS_", "LOCAL_", "APP_")) and k != "PYTHONPATH"
    }
    ports = services.free_ports()
    shell_port = services.free_port()
    env.update(FAST)
    env.update(
        PATH=_path_without_pulumi(),
        LOCAL_STACK_STATE_DIR=str(state_dir),
        LOCAL_STACK_LIFETIME_SECONDS=LIFETIME,
        LOCAL_MOTO_PORT=str(ports.moto),
        LOCAL_EMULATOR_PORT=str(ports.emulator),
        LOCAL_APP_PORT=str(ports.app),
        LOCAL_HOOK_PORT=str(ports.hooks),
        LOCAL_SHELL_PORT=str(shell_port),
    )
    return env


def _run(argv: list[str], env: dict[str, str], *, stdin: str | None = None, timeout: float = 180):
    return subprocess.run(
        argv, cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=timeout
    )


def _sandbox(command: str, env: dict[str, str]):
    return _run([sys.executable, "-m", "devkit.sandbox", command], env)


def _evaluated_env(env: dict[str, str]) -> dict[str, str]:
    """The environment after ``eval "$(python -m devkit.sandbox env)"`` in bash."""
    script = f'eval "$({sys.executable} -m devkit.sandbox env)" && env -0'
    proc = _run(["bash", "-c", script], env)
    assert proc.returncode == 0, proc.stderr
    pairs = (item.split("=", 1) for item in proc.stdout.split("\0") if "=" in item)
    return dict(pairs)


def _records(state_dir: Path) -> dict[str, services.Service]:
    out = {}
    for name in SERVICES:
        svc = services.read_service(state_dir / "sandbox", name)
        if svc is not None:
            out[name] = svc
    return out


def _everything_stopped(state_dir: Path, started: dict[str, services.Service]) -> list[str]:
    left = [f"{n} pid {s.pid}" for n, s in started.items() if services._pid_exists(s.pid)]
    left += [f"{n} port {s.port}" for n, s in started.items() if services.port_open(s.port)]
    left += [f"record {p.name}" for p in (state_dir / "sandbox" / "services").glob("*.json")]
    return left


@pytest.fixture
def state_dir(tmp_path):
    yield tmp_path
    services.stop_services(tmp_path / "sandbox")  # backstop after a failed assertion


def _microvms(env: dict[str, str], *args: str, stdin: str | None = None):
    microvms = shutil.which("microvms", path=env["PATH"])
    assert microvms == str(REPO / ".venv" / "bin" / "microvms"), microvms  # the PATH line works
    return _run([microvms, *args], env, stdin=stdin)


def test_sandbox_up_run_probe_shell_smoke_down(state_dir):
    env = _base_env(state_dir)

    # ---- 1. start: services, then the image through the provider
    up = _sandbox("up", env)
    assert up.returncode == 0, up.stdout + up.stderr
    for name in SERVICES:
        assert f"{name:10s} http://127.0.0.1:{env[services.PORT_ENV[name]]}  ready in " in up.stdout
    assert 'eval "$(make -s sandbox-env)"' in up.stdout
    assert "microvms run --ingress HTTP_INGRESS,SHELL_INGRESS --wait" in up.stdout
    record = json.loads((state_dir / "sandbox" / "sandbox.json").read_text())
    image_arn = record["image_arn"]
    assert image_arn.startswith(
        "arn:aws:lambda:us-east-1:123456789012:microvm-image:agent-sandbox-"
    )
    assert f"image      {image_arn} version 1.0 CREATED" in up.stdout
    started = _records(state_dir)
    assert set(started) == set(SERVICES)

    shell_env = _evaluated_env(env)
    emulator_url = f"http://127.0.0.1:{env['LOCAL_EMULATOR_PORT']}"
    assert shell_env["AWS_ENDPOINT_URL_LAMBDA_MICROVMS"] == emulator_url
    assert shell_env["MICROVMS_PROXY_URL"] == emulator_url
    assert shell_env["MICROVMS_IMAGE_ARN"] == image_arn
    assert shell_env["AWS_ACCESS_KEY_ID"] == "testing"
    client = boto3.client(
        "lambda-microvms",
        endpoint_url=emulator_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    version = client.get_microvm_image_version(imageIdentifier=image_arn, imageVersion="1.0")
    assert version["state"] == "SUCCESSFUL"
    assert version["codeArtifact"]["uri"] == record["artifact_uri"]
    assert version["resources"] == [{"minimumMemoryInMiB": 1024}]  # Pulumi.local.yaml's memoryMiB
    assert version["hooks"]["port"] == 9000
    with urllib.request.urlopen(f"http://127.0.0.1:{env['LOCAL_APP_PORT']}/health") as resp:
        hooks_after_build = json.load(resp)["hookCalls"]
    assert hooks_after_build["ready"] >= 1 and hooks_after_build["validate"] >= 1

    # ---- a second `make sandbox` reuses everything
    again = _sandbox("up", env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "The sandbox is already running (image agent-sandbox-" in again.stdout
    assert {n: s.pid for n, s in _records(state_dir).items()} == {
        n: s.pid for n, s in started.items()
    }
    assert [i["imageArn"] for i in client.list_microvm_images()["items"]] == [image_arn]

    # ---- 2. the CLI as the README shows it
    listed = _microvms(shell_env, "ls")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []

    run = _microvms(shell_env, "run", "--ingress", "HTTP_INGRESS,SHELL_INGRESS", "--wait")
    assert run.returncode == 0, run.stderr
    vm = json.loads(run.stdout)
    assert vm["state"] == "RUNNING" and vm["imageArn"] == image_arn
    vm_id = vm["microvmId"]

    probe = _microvms(shell_env, "probe", vm_id, "--path", "/health")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    probed = json.loads(probe.stdout)
    assert probed["status"] == 200 and probed["ok"] is True
    assert '"service": "claude-code-sandbox"' in probed["bodyExcerpt"]  # the real app answered

    shell = _microvms(shell_env, "shell", vm_id, stdin="echo sandbox-$((6*7))\nexit\n")
    assert shell.returncode == 0, shell.stdout + shell.stderr
    assert "sandbox-42" in shell.stdout  # computed by the guest shell, not an echo of the input

    smoke = _microvms(shell_env, "smoke", "--path", "/health")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    result = json.loads(smoke.stdout)
    assert result["ok"] is True and result["probeStatus"] == 200
    assert result["finalState"] == "TERMINATED"

    terminate = _microvms(shell_env, "terminate", vm_id, "--wait")
    assert terminate.returncode == 0, terminate.stderr
    live = [v for v in client.list_microvms()["items"] if v["state"] != "TERMINATED"]
    assert live == []

    # ---- 3. make down (no Pulumi CLI): everything stops
    down = _run([sys.executable, "-m", "devkit.local_stack", "down"], env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Stopped: sandbox: emulator, shell, app, moto." in down.stdout
    assert "no `pulumi destroy` ran" in down.stdout
    assert _everything_stopped(state_dir, started) == []
    assert not (state_dir / "sandbox" / "sandbox.json").exists()
    after = _sandbox("env", env)
    assert after.returncode == 1
    assert after.stdout == ""
    assert "sandbox: not running; start it with `make sandbox`" in after.stderr


def test_a_failed_build_leaves_nothing_running(state_dir):
    env = _base_env(state_dir)
    env["APP_BREAK_READY"] = "4xx"  # the app's /ready answers 400: the build must fail
    up = _sandbox("up", env)
    assert up.returncode == 4, up.stdout + up.stderr
    assert "sandbox: the image build failed: " in up.stderr
    assert "Ready hook check failed" in up.stderr
    assert (
        "Start failed; stopped emulator, shell, app, moto (nothing is left running)." in up.stdout
    )
    ports = [int(env[services.PORT_ENV[n]]) for n in SERVICES]
    assert [p for p in ports if services.port_open(p)] == []
    assert _records(state_dir) == {}
    assert not (state_dir / "sandbox" / "sandbox.json").exists()
