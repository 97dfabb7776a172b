"""SmokeTest / SessionRun inputs per stack, from the real ``Pulumi.<stack>.yaml`` files through the
real config model (``components.config.load_settings``) and ``components.runs.smoke_test_args``.

A small program stands in for ``__main__.py`` (which does not wire the image yet): it loads the
settings exactly as the real program does and builds the components from them.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from components import runs
from tests.harness.program import REPO_ROOT, evaluate_program

pytestmark = pytest.mark.unit

COMMAND = "command:local:Command"
PROGRAM = textwrap.dedent(
    """
    import pulumi
    from components.config import load_settings
    from components.runs import SessionRun, SmokeTest, session_run_args, smoke_test_args

    settings = load_settings()
    image_arn = f"arn:aws:lambda:{settings.region}:123456789012:microvm-image:{settings.image_name}"
    role = "arn:aws:iam::123456789012:role/exec"
    smoke = SmokeTest("smoke", smoke_test_args(
        settings, image_arn=image_arn, image_version="3.0", execution_role_arn=role))
    pulumi.export("smokeTest", smoke.result)
    if settings.session_run.enabled:
        session = SessionRun("session", session_run_args(
            settings, image_arn=image_arn, image_version="3.0", execution_role_arn=role))
        pulumi.export("sessionMicrovmId", session.microvm_id)
    """
)


@pytest.fixture
def program(tmp_path):
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "Pulumi.local.yaml"):
        shutil.copy(Path(REPO_ROOT) / name, tmp_path / name)
    (tmp_path / "__main__.py").write_text(PROGRAM)
    return tmp_path


EXPECTED = {
    "dev": {"region": "us-east-1", "timeout": "300", "create_timeout": "420s"},
    "prod": {"region": "us-west-2", "timeout": "600", "create_timeout": "720s"},
}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_smoke_command_inputs_and_triggers_per_stack(program, stack):
    graph = evaluate_program(stack, program_dir=program, preview=True)
    want = EXPECTED[stack]
    image_arn = f"arn:aws:lambda:{want['region']}:123456789012:microvm-image:agent-sandbox"
    cmd = graph.one(COMMAND, "smoke-smoke")
    assert cmd.parent == graph.one(runs.SMOKE_TEST_TYPE, "smoke").urn
    inputs = cmd.plain_inputs
    assert inputs["create"] == runs.cli_command(sys.executable, "smoke")
    assert inputs["triggers"] == [image_arn, "3.0"]
    assert inputs["environment"] == {
        "MICROVMS_REGION": want["region"],
        "MICROVMS_IMAGE_ARN": image_arn,
        "MICROVMS_IMAGE_VERSION": "3.0",
        "MICROVMS_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/exec",
        "MICROVMS_PROBE_PATH": "/health",
        "MICROVMS_PROBE_PORT": "8080",
        "MICROVMS_EXPECT_STATUS": "200",
        "MICROVMS_TIMEOUT_SECONDS": want["timeout"],
        "MICROVMS_INGRESS": "HTTP_INGRESS",
        "MICROVMS_EGRESS": "INTERNET_EGRESS",
        "MICROVMS_OUTPUT": "json",
        "PYTHONUNBUFFERED": "1",
    }  # real AWS: no endpoint overrides
    assert cmd.options["customTimeouts"] == {"create": want["create_timeout"]}
    assert cmd.options["additionalSecretOutputs"] == ["stderr"]
    assert graph.by_type(runs.SESSION_RUN_TYPE) == []  # off by default


def test_local_stack_points_the_cli_at_the_emulator(program):
    graph = evaluate_program("local", program_dir=program, preview=True)
    env = graph.one(COMMAND, "smoke-smoke").plain_inputs["environment"]
    assert env[runs.ENDPOINT_ENV] == "http://127.0.0.1:4567"
    assert env[runs.PROXY_ENV] == "http://127.0.0.1:4567"
    assert env["MICROVMS_TIMEOUT_SECONDS"] == "120"


def test_smoke_can_be_disabled_per_stack(program):
    graph = evaluate_program(
        "prod",
        program_dir=program,
        preview=True,
        overrides={"smokeTest": {"enabled": False}},
    )
    smoke = graph.one(runs.SMOKE_TEST_TYPE, "smoke")
    assert graph.children_of(smoke.urn) == [] and graph.by_type(COMMAND) == []


def test_session_run_uses_the_stack_idle_policy_and_backstop(program):
    graph = evaluate_program(
        "dev", program_dir=program, preview=True, overrides={"sessionRun": {"enabled": True}}
    )
    cmd = graph.one(COMMAND, "session-run")
    env = cmd.plain_inputs["environment"]
    assert env["MICROVMS_INGRESS"] == "SHELL_INGRESS,HTTP_INGRESS"
    assert (env["MICROVMS_MAX_IDLE_SECONDS"], env["MICROVMS_SUSPENDED_SECONDS"]) == ("600", "3600")
    assert env["MICROVMS_AUTO_RESUME"] == "true"
    assert env["MICROVMS_MAX_DURATION_SECONDS"] == "900"
    assert "--from-json-env PULUMI_COMMAND_STDOUT" in cmd.plain_inputs["delete"]
