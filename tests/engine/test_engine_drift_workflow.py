"""``.github/workflows/drift.yml``'s own scripts (``tests.engine.workflow``) against the local
stack under the real Pulumi CLI: the drift check and ``pulumi policy analyze``, before and after a
console change. This found two bugs: ``policy analyze`` sends the pack no stack name (so
``microvm-regions`` failed closed on every state), and CLI 3.274's drift message differs from the
one the summary looked for.
"""

from __future__ import annotations

import os

import pytest

from tests.engine.stack import EngineStack
from tests.engine.test_engine_platform import console_change, image_state
from tests.engine.workflow import linked_project, run_step

pytestmark = pytest.mark.timeout(900)


def test_drift_workflow_scripts_report_no_drift_then_a_console_change(
    engine: EngineStack, tmp_path
):
    engine.write_config(**{"lambda-microvms:smokeTest": {"enabled": False}})
    assert engine.up().returncode == 0
    project = linked_project(engine, tmp_path / "project")
    summary = tmp_path / "summary.md"

    # ---- nothing changed: both steps pass and say so
    refresh, text = run_step("drift.yml", "pulumi refresh", project, engine, summary)
    assert refresh.returncode == 0, refresh.stdout[-3000:] + refresh.stderr
    assert "## Drift check: stack `local`" in text
    assert "No drift: every resource is as the state records it." in text
    analyze, text = run_step(
        "drift.yml", "Policy pack over the current state", project, engine, summary
    )
    assert analyze.returncode == 0, analyze.stdout[-3000:] + analyze.stderr
    assert "## Policy pack over the current state: stack `local`" in text
    assert "No mandatory violation." in text
    assert "has no `pulumi policy analyze`" not in text  # the command exists in this CLI

    # ---- a console change to the image's memory: the drift step fails and says what to do
    res = image_state(engine, "image-image")
    console_change(
        engine, res["id"], lambda body: body.update(resources=[{"minimumMemoryInMiB": 4096}])
    )

    refresh, text = run_step("drift.yml", "pulumi refresh", project, engine, summary)
    assert refresh.returncode != 0
    assert "**Drift found.**" in text and "`make up STACK=local`" in text
    assert "image-image" in text and "resources" in text  # the diff, in the job summary
    assert "Nothing was changed by this check." in text
    # The check changed nothing: the state still records the deployed memory.
    assert image_state(engine, "image-image")["outputs"] == res["outputs"]
    analyze, text = run_step(
        "drift.yml", "Policy pack over the current state", project, engine, summary
    )
    assert analyze.returncode == 0 and "No mandatory violation." in text
    assert os.path.islink(project / "Pulumi.yaml")  # ran in the linked copy, not the repo
