"""The offline policy gate judges every image of a stack with several images.

Runs the real command (``python -m devkit.policy_check``) with an ``images`` override, the way a
stack with several images is checked before a preview.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# The real command per test: program evaluation and a pack process per run.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TWO_IMAGES = {"default": {}, "worker": {"memoryMiB": 4096, "smokeTest": {"path": "/ready"}}}
BAD_WORKER_VARIANT = """

# --- deliberately bad variant (tests/protocol/test_policy_images.py) ---
import json as _json

aws.iam.RolePolicy(
    "worker-execution-extra-write",
    role=[d for d in images if d.settings.key == "worker"][0].execution_role.role_name,
    policy=_json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::*/*"}]}),
)
"""


def policy_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devkit.policy_check", *args],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_two_images_pass_the_gate(stack):
    proc = policy_check("--stack", stack, "--config", "images=" + json.dumps(TWO_IMAGES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Result: passed" in proc.stdout


def test_the_second_images_resources_are_judged():
    images = {"default": {}, "worker": {"environmentVariables": {"API_TOKEN": "plain-value-1"}}}
    proc = policy_check(
        "--stack", "dev", "--mode", "preview", "--config", "images=" + json.dumps(images)
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if "image-env-plaintext-secrets" in ln)
    assert "worker-image-image (pulumi-python:dynamic/lambda-microvms:MicrovmImage)" in line
    assert "'image-image'" not in proc.stdout  # the default image has no such variable


def test_a_write_grant_on_the_second_images_role_fails_the_gate(tmp_path):
    for name in ("components", "image", "microvms"):
        (tmp_path / name).symlink_to(REPO / name, target_is_directory=True)
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((REPO / name).read_text())
    (tmp_path / "__main__.py").write_text((REPO / "__main__.py").read_text() + BAD_WORKER_VARIANT)
    proc = policy_check(
        "--stack", "dev", "--program-dir", str(tmp_path),
        "--config", "images=" + json.dumps(TWO_IMAGES),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("MANDATORY"))
    assert "microvm-execution-role-read-only" in line
    assert "worker-execution-extra-write (aws:iam/rolePolicy:RolePolicy)" in line
    assert "s3:PutObject" in proc.stdout
