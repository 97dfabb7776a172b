"""`make policy-check`: the program under mocks and the real pack over Analyzer gRPC, per stack.

Runs the real command (`python -m devkit.policy_check`) as a subprocess, the way CI does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BAD_STATEMENT = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::*/*"}
BAD_VARIANT = f"""

# --- deliberately bad variant (tests/protocol/test_policy_check.py) ---
import json as _json

aws.iam.RolePolicy(
    "execution-extra-write",
    role=images[0].execution_role.role_name,
    policy=_json.dumps({{"Version": "2012-10-17", "Statement": [{BAD_STATEMENT!r}]}}),
)
"""


def policy_check(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devkit.policy_check", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.slow  # the real command: program evaluation and a pack process per run
@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_every_stack_passes(stack):
    proc = policy_check("--stack", stack)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(
        f"policy-check: stack {stack} (preview + update), pack lambda-microvms-guardrails"
    )
    assert "Result: passed" in proc.stdout
    assert "MANDATORY" not in proc.stdout
    assert "sees the program's inputs, not values the AWS provider computes" in proc.stdout


@pytest.fixture
def bad_program(tmp_path):
    """The real program plus an execution-role policy that writes to S3."""
    for name in ("components", "image", "microvms"):
        (tmp_path / name).symlink_to(REPO / name, target_is_directory=True)
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    (tmp_path / "__main__.py").write_text((REPO / "__main__.py").read_text() + BAD_VARIANT)
    return tmp_path


@pytest.mark.slow  # the real command: program evaluation and a pack process per run
def test_bad_variant_fails_with_the_violation(bad_program):
    proc = policy_check("--stack", "dev", "--program-dir", str(bad_program))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("MANDATORY"))
    assert "microvm-execution-role-read-only" in line
    assert "execution-extra-write (aws:iam/rolePolicy:RolePolicy)" in line
    assert "[preview, update]" in line
    assert "s3:PutObject" in proc.stdout
    assert "Result: FAILED (1 mandatory" in proc.stdout


@pytest.mark.slow  # the real command: program evaluation and a pack process per run
def test_config_override_reaches_the_program():
    # The program refuses a write statement in executionRoleExtraStatements before any resource
    # exists (the component validates it), so the gate reports that it could not run.
    proc = policy_check(
        "--stack", "dev", "--mode", "update",
        "--config", "executionRoleExtraStatements=" + json.dumps([BAD_STATEMENT]),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ProgramError" in proc.stderr
    assert "executionRoleExtraStatements[0].Action: s3:PutObject not read-only" in proc.stderr


@pytest.mark.slow  # the real command: program evaluation and a pack process per run
def test_config_override_with_an_allowed_but_broad_value_is_reported():
    proc = policy_check(
        "--stack", "dev", "--mode", "update", "--config", "attachReadOnlyAccess=true"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "execution-role-broad-read-access" in proc.stdout
    assert "ReadOnlyAccess" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stack", "staging"], "--stack must be one of dev, prod, local, got 'staging'"),
        (
            ["--stack", "dev", "--config", "memoryMiB"],
            "--config expects KEY=VALUE, got 'memoryMiB'",
        ),
        (["--stack", "dev", "--config-file", "policies/config/nope.json"], "does not exist"),
        (
            ["--stack", "dev", "--mode", "update", "--config", "memoryMiB=1000"],
            "memoryMiB",
        ),
    ],
)
def test_bad_usage_exits_2_naming_the_problem(args, message):
    proc = policy_check(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr


def test_terminal_report_prints_messages_literally(capsys):
    from devkit.policy_check import Finding, render_rich

    finding = Finding(
        "microvm-execution-role-read-only",
        "mandatory",
        "urn:pulumi:dev::lambda-microvms::aws:iam/rolePolicy:RolePolicy::execution-policy",
        "aws:iam/rolePolicy:RolePolicy",
        "value [secret] is not [bold]markup",
        ["update"],
    )
    render_rich(
        [finding], {"stack": "dev", "pack": "lambda-microvms-guardrails", "config_file": "c"}
    )
    out = capsys.readouterr().out
    assert "[secret]" in out and "[bold]" in out  # escaped, not swallowed as rich markup
    assert "FAILED: 1 mandatory violation(s)." in out
