"""``.github/workflows/drift.yml``'s own scripts, run as written by bash against the local stack
under the real Pulumi CLI: the drift check and ``pulumi policy analyze``, before and after a
console change.

The workflow cannot run on GitHub from here (it needs OIDC into a real account), so this runs its
two ``run:`` scripts byte for byte, with what the runner would give them (``STACK``,
``GITHUB_STEP_SUMMARY``, the backend and passphrase), in a copy of the project whose
``Pulumi.local.yaml`` points at this test's emulators and whose ``policies/config/local.json`` is
dev's file (the workflow reads ``policies/config/$STACK.json``; ``local`` shares dev's).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from microvms import waiters
from tests.engine.stack import REPO, EngineStack
from tests.engine.test_engine_local_stack import client
from tests.engine.test_engine_platform import image_state

pytestmark = pytest.mark.timeout(900)

WORKFLOW = REPO / ".github" / "workflows" / "drift.yml"
SKIP = {".git", ".pulumi-local", "Pulumi.local.yaml", "policies"}


def _script(prefix: str) -> str:
    """The ``run:`` text of the drift job's step whose name starts with ``prefix``."""
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    for job in jobs.values():
        for step in job.get("steps", []):
            if step.get("name", "").startswith(prefix):
                script = step["run"]
                assert "${{" not in script  # nothing the runner would substitute
                return script
    raise AssertionError(f"no step named {prefix!r} in {WORKFLOW}")


def _project(engine: EngineStack, root: Path) -> Path:
    """The repository as links, with this test's stack file and a ``local`` policy config."""
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in SKIP:
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


def _step(prefix: str, project: Path, engine: EngineStack, summary: Path):
    env = {**engine.env(), "STACK": "local", "GITHUB_STEP_SUMMARY": str(summary)}
    env.pop("PULUMI_DEBUG_COMMANDS", None)
    summary.write_text("")
    proc = subprocess.run(
        ["bash", "-e", "-c", _script(prefix)],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    print(f"$ drift.yml: {prefix} → exit {proc.returncode}\n{proc.stdout[-4000:]}{proc.stderr}")
    return proc, summary.read_text()


def test_drift_workflow_scripts_report_no_drift_then_a_console_change(
    engine: EngineStack, tmp_path
):
    engine.write_config(**{"lambda-microvms:smokeTest": {"enabled": False}})
    assert engine.up().returncode == 0
    project = _project(engine, tmp_path / "project")
    summary = tmp_path / "summary.md"

    # ---- nothing changed: both steps pass and say so
    refresh, text = _step("pulumi refresh", project, engine, summary)
    assert refresh.returncode == 0, refresh.stdout[-3000:] + refresh.stderr
    assert "## Drift check: stack `local`" in text
    assert "No drift: every resource is as the state records it." in text
    analyze, text = _step("Policy pack over the current state", project, engine, summary)
    assert analyze.returncode == 0, analyze.stdout[-3000:] + analyze.stderr
    assert "## Policy pack over the current state: stack `local`" in text
    assert "No mandatory violation." in text
    assert "has no `pulumi policy analyze`" not in text  # the command exists in this CLI

    # ---- a console change to the image's memory: the drift step fails and says what to do
    res = image_state(engine, "image-image")
    mv = client(engine, "lambda-microvms")
    current = mv.get_microvm_image(imageIdentifier=res["id"])["latestActiveImageVersion"]
    live = mv.get_microvm_image_version(imageIdentifier=res["id"], imageVersion=current)
    members = mv.meta.service_model.operation_model("UpdateMicrovmImage").input_shape.members
    body = {
        k: live[k] for k in members if k in live and k not in ("imageIdentifier", "clientToken")
    }
    body["resources"] = [{"minimumMemoryInMiB": 4096}]
    version = mv.update_microvm_image(imageIdentifier=res["id"], **body)["imageVersion"]
    waiters.wait_for_image_version(mv, res["id"], version, timeout=60)

    refresh, text = _step("pulumi refresh", project, engine, summary)
    assert refresh.returncode != 0
    assert "**Drift found.**" in text and "`make up STACK=local`" in text
    assert "image-image" in text and "resources" in text  # the diff, in the job summary
    assert "Nothing was changed by this check." in text
    # The check changed nothing: the state still records the deployed memory.
    assert image_state(engine, "image-image")["outputs"] == res["outputs"]
    analyze, text = _step("Policy pack over the current state", project, engine, summary)
    assert analyze.returncode == 0 and "No mandatory violation." in text
    assert os.path.islink(project / "Pulumi.yaml")  # ran in the linked copy, not the repo
