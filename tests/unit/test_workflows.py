"""The GitHub Actions workflows are schema-valid, zizmor-clean and follow the house rules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
BIN = Path(sys.executable).parent
FILES = sorted(WORKFLOWS.glob("*.yml"))
PULUMI_CLI_VERSION = "3.272.0"


def _load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def test_expected_workflows_exist():
    assert [p.name for p in FILES] == ["ci.yml", "deploy.yml", "drift.yml", "preview.yml"]


def test_check_jsonschema_github_workflows():
    proc = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok -- validation done" in proc.stdout


@pytest.mark.parametrize("persona", ["regular", "pedantic", "auditor"])
def test_zizmor_offline_has_no_findings(persona):
    proc = subprocess.run(
        [str(BIN / "zizmor"), "--offline", f"--persona={persona}", "--no-progress", str(WORKFLOWS)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_house_rules(path):
    text = path.read_text()
    doc = _load(path)
    assert doc["permissions"] == {}, "top-level permissions must be {}"
    for name, job in doc["jobs"].items():
        assert "permissions" in job, f"{name}: job needs its own least permissions"
        assert job["permissions"].get("contents") == "read", name
        for step in job["steps"]:
            uses = step.get("uses")
            if uses and uses.startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name
            if uses and uses.startswith("pulumi/actions@"):
                assert step["with"]["pulumi-version"] == PULUMI_CLI_VERSION, name
                if "command" not in step["with"]:
                    continue  # install only (drift.yml runs the CLI itself)
                assert step["with"]["policyPacks"] == "policies", name
                assert step["with"]["policyPackConfigs"].startswith("policies/config/"), name
    for line in text.splitlines():
        m = re.search(r"uses:\s*(\S+)", line)
        if m:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", m.group(1)), line
            assert re.search(r"# v\d+\.\d+\.\d+$", line), f"missing '# vX.Y.Z' comment: {line}"
    # No untrusted expression is interpolated into a shell script.
    for job in doc["jobs"].values():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), step.get("name")


def test_ci_runs_make_test_and_policy_check_for_every_stack():
    ci = _load(WORKFLOWS / "ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert "make test" in runs
    pc = ci["jobs"]["policy-check"]
    assert pc["strategy"]["matrix"]["stack"] == ["dev", "prod", "local"]
    assert any('make policy-check STACK="$STACK"' in s.get("run", "") for s in pc["steps"])


def test_preview_matrix_oidc_and_comment():
    wf = _load(WORKFLOWS / "preview.yml")
    assert list(wf["on"]) == ["pull_request"]
    job = wf["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert job["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert "matrix.stack" in job["concurrency"]["group"]
    steps = {s.get("uses", "").split("@")[0]: s for s in job["steps"]}
    creds = steps["aws-actions/configure-aws-credentials"]["with"]
    assert "role-to-assume" in creds and "aws-access-key-id" not in creds
    pulumi = steps["pulumi/actions"]["with"]
    assert pulumi["command"] == "preview" and pulumi["diff"] is True
    assert pulumi["comment-on-pr"] is True
    assert pulumi["policyPackConfigs"] == "policies/config/${{ matrix.stack }}.json"
    summary = next(s for s in job["steps"] if "review_summary" in s.get("run", ""))
    assert "--event-log events.jsonl" in summary["run"]
    # `gh pr comment` names the repository itself (checkout keeps no credentials or remote auth).
    assert summary["env"]["GH_REPO"] == "${{ github.repository }}"
    assert summary["env"]["PR_NUMBER"] == "${{ github.event.pull_request.number }}"


def test_deploy_dev_then_prod_behind_environment():
    wf = _load(WORKFLOWS / "deploy.yml")
    assert wf["on"] == {"push": {"branches": ["main"]}}
    dev, prod = wf["jobs"]["dev"], wf["jobs"]["prod"]
    assert dev["environment"] == "dev" and prod["environment"] == "prod"
    assert prod["needs"] == "dev"
    for job, stack in ((dev, "dev"), (prod, "prod")):
        assert job["concurrency"] == {"group": f"pulumi-stack-{stack}", "cancel-in-progress": False}
        up = next(s for s in job["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
        assert up["with"]["command"] == "up" and up["with"]["stack-name"] == stack
        assert up["with"]["policyPackConfigs"] == f"policies/config/{stack}.json"
