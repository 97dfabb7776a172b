"""The SmokeTest command the real ``__main__.py`` registers for ``dev`` and ``prod`` (program harness):
CLI line, environment (no inputs in argv), triggers on the image ARN + build fingerprint, secrets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from components import runs
from components.microvm_image import spec
from components.microvm_image.component import fingerprint_of
from devkit.offline import wire
from devkit.offline.config import REPO_ROOT
from devkit.offline.evaluate import evaluate_program

pytestmark = pytest.mark.unit

COMMAND = "command:local:Command"
IMAGE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
ROLE = "aws:iam/role:Role"

STACKS = {
    "dev": {"account": "111111111111", "region": "us-east-1", "timeout": "300", "create": "420s",
            "backstop": "420"},  # min(maximumDurationSeconds 900, 300 + 120)
    "prod": {"account": "222222222222", "region": "us-west-2", "timeout": "600", "create": "720s",
             "backstop": "720"},  # min(maximumDurationSeconds 3600, 600 + 120)
}  # fmt: skip


def _interpreter() -> str:
    exe = Path(sys.executable)
    root = Path(REPO_ROOT).resolve()
    return os.path.relpath(exe, root) if exe.is_relative_to(root) else sys.executable


def _execution_role_arn(graph) -> str:
    (role,) = [
        r for r in graph.by_type(ROLE)
        if (r.plain_outputs.get("tags") or {}).get("lambda-microvms:role") == "execution"
    ]  # fmt: skip
    return role.plain_outputs["arn"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_smoke_command_inputs_and_triggers(stack):
    want = STACKS[stack]
    graph = evaluate_program(stack)
    image = graph.one(IMAGE)
    smoke = graph.one(runs.SMOKE_TEST_TYPE, "smoke")
    cmd = graph.one(COMMAND, "smoke-smoke")
    assert cmd.parent == smoke.urn
    image_arn = image.plain_outputs["imageArn"]
    assert image.id == image_arn
    fingerprint = fingerprint_of(
        {k: image.plain_inputs[k] for k in spec.BUILD_KEYS if k in image.plain_inputs}
    )
    assert image_arn.startswith(f"arn:aws:lambda:{want['region']}:{want['account']}:microvm-image:")

    inputs = cmd.plain_inputs
    # The CLI line carries no input: everything is in the environment.
    assert inputs["create"] == runs.cli_command(_interpreter(), "smoke")
    assert inputs["triggers"] == [image_arn, fingerprint]
    assert set(cmd.property_dependencies["triggers"]) >= {image.urn}
    env = dict(inputs["environment"])
    # Set once __main__.py passes settings.maximum_duration_seconds (else the CLI computes the
    # same backstop itself); when present it must be the tighter of ceiling and backstop.
    assert env.pop("MICROVMS_MAX_DURATION_SECONDS", want["backstop"]) == want["backstop"]
    assert env == {
        "MICROVMS_REGION": want["region"],
        "MICROVMS_IMAGE_ARN": image_arn,
        "MICROVMS_EXECUTION_ROLE_ARN": _execution_role_arn(graph),
        "MICROVMS_PROBE_PATH": "/health",
        "MICROVMS_PROBE_PORT": "8080",
        "MICROVMS_EXPECT_STATUS": "200",
        "MICROVMS_TIMEOUT_SECONDS": want["timeout"],
        "MICROVMS_INGRESS": "HTTP_INGRESS",
        "MICROVMS_EGRESS": "INTERNET_EGRESS",
        "MICROVMS_OUTPUT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    assert "delete" not in inputs and "stdin" not in inputs
    assert cmd.options["customTimeouts"] == {"create": want["create"]}
    assert cmd.options["additionalSecretOutputs"] == ["stderr"]
    assert graph.by_type(runs.SESSION_RUN_TYPE) == []  # off by default


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_preview_triggers_wait_for_the_new_image(stack):
    graph = evaluate_program(stack, preview=True)
    cmd = graph.one(COMMAND, "smoke-smoke")
    image = graph.one(IMAGE)
    # A new image: its ARN is unknown until it exists; the build fingerprint depends on the roles'
    # and bucket's outputs, unknown in a first preview too.
    assert cmd.inputs["triggers"][0] == wire.UNKNOWN
    assert image.urn in cmd.property_dependencies["triggers"]
    assert cmd.plain_inputs["create"] == runs.cli_command(_interpreter(), "smoke")
    assert graph.outputs["smokeTest"] == wire.UNKNOWN  # the CLI's JSON, known after the run


def test_session_run_when_enabled_for_a_stack():
    graph = evaluate_program("dev", overrides={"sessionRun": {"enabled": True}})
    cmd = graph.one(COMMAND, "session-run")
    assert cmd.parent == graph.one(runs.SESSION_RUN_TYPE, "session").urn
    inputs = cmd.plain_inputs
    assert inputs["create"] == runs.cli_command(
        _interpreter(), "run", "--wait", "--terminate-on-failure"
    )
    assert inputs["delete"] == runs.cli_command(
        _interpreter(), "terminate", "--wait", "--missing-ok",
        "--from-json-env", "PULUMI_COMMAND_STDOUT",
    )  # fmt: skip
    env = inputs["environment"]
    assert env["MICROVMS_INGRESS"] == "SHELL_INGRESS,HTTP_INGRESS"
    assert (env["MICROVMS_MAX_IDLE_SECONDS"], env["MICROVMS_AUTO_RESUME"]) == ("600", "true")
    assert env["MICROVMS_MAX_DURATION_SECONDS"] == "900"


def test_local_stack_points_the_cli_at_the_emulator():
    graph = evaluate_program("local")
    env = graph.one(COMMAND, "smoke-smoke").plain_inputs["environment"]
    assert env["AWS_ENDPOINT_URL_LAMBDA_MICROVMS"] == "http://127.0.0.1:4567"
    assert env["MICROVMS_PROXY_URL"] == "http://127.0.0.1:4567"
    assert env["MICROVMS_TIMEOUT_SECONDS"] == "120"


def test_smoke_can_be_disabled_per_stack():
    graph = evaluate_program("prod", overrides={"smokeTest": {"enabled": False}})
    smoke = graph.one(runs.SMOKE_TEST_TYPE, "smoke")
    assert graph.children_of(smoke.urn) == [] and graph.by_type(COMMAND) == []
