"""One local stack under the real Pulumi CLI: a temporary file backend, PULUMI_HOME and stack config.

``EngineStack.pulumi(...)`` runs the CLI built by ``make pulumi`` (``devkit.toolchain``) as a real
subprocess from the project root, with:

- ``PULUMI_BACKEND_URL=file://<tmp>/state`` and ``PULUMI_HOME=<tmp>/home`` (its plugin folder holds
  the pulumi-aws and pulumi-command test doubles, nothing else, and automatic plugin downloads are
  off, so a missing plugin fails instead of reaching for the network);
- ``--config-file <tmp>/Pulumi.local.yaml``: a fresh copy of the committed stack file whose
  endpoints point at this test's moto and emulator ports (``rewrite_endpoints``);
- the environment ``make up STACK=local`` gives the CLI (``local_stack.pulumi_env``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devkit import local_stack, toolchain

REPO = Path(__file__).resolve().parents[2]
STACK = "local"
DEFAULT_TIMEOUT = 600


def rewrite_endpoints(config: dict, ports: local_stack.Ports) -> dict:
    """The committed ``Pulumi.local.yaml`` with its loopback endpoints moved to ``ports``."""
    cfg = dict(config["config"])
    moto, emulator = ports.moto_url, ports.emulator_url
    cfg["aws:endpoints"] = [
        {key: moto for key in entry} for entry in cfg.get("aws:endpoints", [{}])
    ]
    ours = dict(cfg.get("lambda-microvms:endpoints") or {})
    for key in ours:
        ours[key] = emulator if key in ("microvms", "proxy") else moto
    cfg["lambda-microvms:endpoints"] = ours
    return {**config, "config": cfg}


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self):
        return json.loads(self.stdout)


@dataclass
class EngineStack:
    root: Path
    ports: local_stack.Ports
    services_dir: Path
    config: dict = field(default_factory=dict)
    #: Echo every command's output (pytest shows it for a failing test); benchmarks turn it off.
    echo: bool = True

    @property
    def config_file(self) -> Path:
        return self.root / "Pulumi.local.yaml"

    @property
    def home(self) -> Path:
        return self.root / "home"

    def write_config(self, **changes) -> None:
        """Write the stack file; ``changes`` set (or, with None, remove) ``config`` keys."""
        cfg = dict(self.config["config"])
        for key, value in changes.items():
            if value is None:
                cfg.pop(key, None)
            else:
                cfg[key] = value
        self.config = {**self.config, "config": cfg}
        self.config_file.write_text(yaml.safe_dump(self.config, sort_keys=False))

    def set_secret(self, path: str, value: str) -> None:
        """``pulumi config set --secret --path`` (value on stdin, never argv), then reload the file."""
        cmd = [str(toolchain.bin_dir() / "pulumi"), "config", "set", "--secret", "--path", path,
               "--stack", STACK, "--config-file", str(self.config_file), "--non-interactive"]  # fmt: skip
        proc = subprocess.run(
            cmd, cwd=REPO, env=self.env(), input=value, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        self.config = yaml.safe_load(self.config_file.read_text())

    def env(self) -> dict[str, str]:
        env = local_stack.pulumi_env(self.ports, state_dir=self.root, base=dict(os.environ))
        env.update(
            {
                "PATH": f"{toolchain.bin_dir()}{os.pathsep}{env.get('PATH', '')}",
                "PULUMI_HOME": str(self.home),
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
                "NO_COLOR": "1",
                # --event-log is registered only with debug commands on (pkg/cmd/pulumi/operations).
                "PULUMI_DEBUG_COMMANDS": "true",
            }
        )
        return env

    def pulumi(
        self, *args: str, config: bool = True, stack: bool = True, timeout: float = DEFAULT_TIMEOUT
    ) -> Result:
        cmd = [str(toolchain.bin_dir() / "pulumi"), *args, "--non-interactive"]
        if stack:
            cmd += ["--stack", STACK]
        if config:
            cmd += ["--config-file", str(self.config_file)]
        proc = subprocess.run(
            cmd, cwd=REPO, env=self.env(), capture_output=True, text=True, timeout=timeout
        )
        result = Result(cmd, proc.returncode, proc.stdout, proc.stderr)
        # Every command's output lands in the test log (shown for a failing test).
        if self.echo:
            sys.stdout.write(
                f"$ {' '.join(args)}  → exit {proc.returncode}\n{result.output[-6000:]}\n"
            )
        return result

    def ok(self, *args: str, **kwargs) -> Result:
        result = self.pulumi(*args, **kwargs)
        assert result.returncode == 0, f"pulumi {' '.join(args)} failed:\n{result.output[-8000:]}"
        return result

    # -- the commands the tests use ------------------------------------------------------------
    POLICY = ("--policy-pack", "policies", "--policy-pack-config", "policies/config/dev.json")

    def preview_json(self, *extra: str, policy: bool = True) -> Result:
        return self.pulumi("preview", "--json", *(self.POLICY if policy else ()), *extra)

    def up(self, *extra: str, policy: bool = True) -> Result:
        return self.pulumi(
            "up", "--yes", "--skip-preview", *(self.POLICY if policy else ()), *extra
        )

    def outputs(self) -> dict:
        return self.ok("stack", "output", "--json", config=False).json()

    def export(self) -> dict:
        return self.ok("stack", "export", config=False).json()
