"""Run a GitHub workflow step's own ``run:`` script, byte for byte, against the local stack under
the real Pulumi CLI (the workflows cannot run on GitHub from here: they need OIDC into an account).

The script runs in bash in a linked copy of the project whose ``Pulumi.local.yaml`` points at the
test's emulators and whose ``policies/config/local.json`` is dev's (the workflows read
``policies/config/$STACK.json``; ``local`` shares dev's), with the step's literal ``env:`` values,
what the runner gives every step (``GITHUB_STEP_SUMMARY``) and the test's own settings.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.engine.stack import REPO, EngineStack

WORKFLOWS = REPO / ".github" / "workflows"
_NOT_LINKED = {".git", ".pulumi-local", "Pulumi.local.yaml", "policies"}


def step(workflow: str, prefix: str) -> dict:
    """The step of ``workflow`` (file name) whose name starts with ``prefix``."""
    jobs = yaml.safe_load((WORKFLOWS / workflow).read_text())["jobs"]
    for job in jobs.values():
        for candidate in job.get("steps", []):
            if candidate.get("name", "").startswith(prefix):
                assert "${{" not in candidate["run"]  # nothing the runner would substitute
                return candidate
    raise AssertionError(f"no step named {prefix!r} in {workflow}")


def literal_env(found: dict) -> dict[str, str]:
    """The step's ``env:`` entries that are plain values (not ``${{ … }}`` expressions)."""
    return {k: str(v) for k, v in (found.get("env") or {}).items() if "${{" not in str(v)}


def linked_project(engine: EngineStack, root: Path) -> Path:
    """The repository as links, with this test's stack file and a ``local`` policy config."""
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in _NOT_LINKED:
            (root / entry.name).symlink_to(entry)
    (root / "Pulumi.local.yaml").write_text(engine.config_file.read_text())
    policies = root / "policies"
    policies.mkdir()
    for entry in (REPO / "policies").iterdir():
        if entry.name != "config":
            (policies / entry.name).symlink_to(entry)
    config = policies / "config"
    config.mkdir()
    for entry in (REPO / "policies" / "config").iterdir():
        (config / entry.name).symlink_to(entry)
    (config / "local.json").symlink_to(REPO / "policies" / "config" / "dev.json")
    return root


def run_step(
    workflow: str, prefix: str, project: Path, engine: EngineStack, summary: Path, **extra: str
) -> tuple[subprocess.CompletedProcess, str]:
    """Run the step's script; return the process and what it wrote to the job summary."""
    found = step(workflow, prefix)
    env = {**engine.env(), "STACK": "local", "GITHUB_STEP_SUMMARY": str(summary)}
    env.pop("PULUMI_DEBUG_COMMANDS", None)  # only what the workflow itself sets
    env.update(literal_env(found))
    env.update(extra)
    summary.write_text("")
    proc = subprocess.run(
        ["bash", "-e", "-c", found["run"]],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    print(f"$ {workflow}: {prefix} → exit {proc.returncode}\n{proc.stdout[-4000:]}{proc.stderr}")
    return proc, summary.read_text()
