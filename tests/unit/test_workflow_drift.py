"""``drift.yml``: scheduled, per stack, read-only, and it runs exactly the checks it promises."""

from __future__ import annotations

from tests.unit.test_workflows import PULUMI_CLI_VERSION, WORKFLOWS, _load

DRIFT = WORKFLOWS / "drift.yml"


def _job() -> dict:
    return _load(DRIFT)["jobs"]["drift"]


def _step(name_part: str) -> dict:
    return next(s for s in _job()["steps"] if name_part in s.get("name", ""))


def test_scheduled_and_on_demand():
    wf = _load(DRIFT)
    assert set(wf["on"]) == {"schedule", "workflow_dispatch"}
    assert wf["on"]["schedule"][0]["cron"].count(" ") == 4


def test_per_stack_matrix_read_only_role_and_per_stack_concurrency():
    job = _job()
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert job["strategy"]["fail-fast"] is False  # drift in dev must not hide drift in prod
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    # the read-only preview environments: prod's deploy environment needs a reviewer
    assert job["environment"] == "preview-${{ matrix.stack }}"
    assert job["concurrency"] == {"group": "drift-${{ matrix.stack }}", "cancel-in-progress": False}
    creds = next(
        s for s in job["steps"] if s.get("uses", "").startswith("aws-actions/configure-aws")
    )
    assert creds["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    assert "aws-access-key-id" not in creds["with"]


def test_secrets_reach_only_the_steps_that_call_pulumi():
    job = _job()
    assert "PULUMI_ACCESS_TOKEN" not in job.get("env", {})
    for step in job["steps"]:
        has_secret = "secrets." in str(step.get("env", {}))
        assert has_secret == ("pulumi " in step.get("run", "")), step.get("name")


def test_refresh_is_preview_only_expects_no_changes_and_reports():
    install = next(s for s in _job()["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert install["with"] == {"pulumi-version": PULUMI_CLI_VERSION}  # install only
    run = _step("pulumi refresh")["run"]
    assert 'pulumi refresh --stack "$STACK" --preview-only --expect-no-changes' in run
    assert "--yes" not in run and "--skip-preview" not in run
    assert '>> "$GITHUB_STEP_SUMMARY"' in run and 'exit "$code"' in run
    # the CLI's own words for drift, so a failed refresh is not reported as drift: older CLIs say
    # "no changes were expected but …", 3.274 (run by tests/engine/test_engine_drift_workflow.py)
    # "no changes were expected for refresh but …"
    assert 'grep -Eq "no changes were expected( for [a-z]+)? but changes were proposed"' in run


def test_policy_pack_over_the_current_state():
    step = _step("policy analyze")
    assert step["if"] == "${{ !cancelled() }}"  # runs after drift was found too
    run = step["run"]
    assert "pulumi policy analyze --help" in run  # only where the CLI has the command
    assert 'pulumi policy analyze --stack "$STACK" --policy-pack policies' in run
    assert '--policy-pack-config "policies/config/$STACK.json"' in run
