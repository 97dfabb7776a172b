"""SmokeTest / SessionRun under the offline program harness (mocks; the command itself is not run).

Asserts the ``pulumi-command`` inputs the engine would store: the CLI line (no inputs in argv),
the environment, triggers, secrets (payload via a secret ``stdin``, ``stderr`` an additional
secret output) and the exported result.
"""

from __future__ import annotations

import json
import shlex
import textwrap

import pytest

from components import runs
from devkit.offline import wire
from devkit.offline.evaluate import evaluate_program
from devkit.offline.mocks import HarnessMocks

pytestmark = pytest.mark.unit

COMMAND = "command:local:Command"
IMAGE = "arn:aws:lambda:eu-west-1:123456789012:microvm-image:demo"
ROLE = "arn:aws:iam::123456789012:role/exec"
PYTHON = "/opt/venv with space/bin/python"
PAYLOAD = "payload-do-not-leak-0451"
RESULT = {"ok": True, "microvmId": "microvm-1", "endpoint": "e.lambda-microvm.eu-west-1.on.aws"}

PROGRAM = textwrap.dedent(
    f"""
    import pulumi
    from components.runs import SessionRun, SessionRunArgs, SmokeTest, SmokeTestArgs

    cfg = pulumi.Config()
    smoke = SmokeTest("smoke", SmokeTestArgs(
        image_arn={IMAGE!r}, image_version=cfg.require("version"), region="eu-west-1",
        execution_role_arn={ROLE!r}, path="/ready", expected_status=204, timeout_seconds=60,
        ingress_connectors=["HTTP_INGRESS"], egress_connectors=[], max_duration_seconds=3600,
        microvms_endpoint=cfg.get("endpoint"), proxy_url=cfg.get("proxy"), interpreter={PYTHON!r},
    ))
    off = SmokeTest("off", SmokeTestArgs(
        image_arn={IMAGE!r}, image_version="1.0", region="eu-west-1", enabled=False,
    ))
    session = SessionRun("session", SessionRunArgs(
        image_arn={IMAGE!r}, image_version=cfg.require("version"), region="eu-west-1",
        idle_policy={{"maxIdleDurationSeconds": 900, "suspendedDurationSeconds": 0,
                      "autoResumeEnabled": True}},
        max_duration_seconds=3600, run_hook_payload=cfg.require_secret("payload"),
        interpreter={PYTHON!r},
    ))
    pulumi.export("smoke", smoke.result)
    pulumi.export("off", off.result)
    pulumi.export("sessionId", session.microvm_id)
    pulumi.export("sessionEndpoint", session.endpoint)
    """
)


class CommandMocks(HarnessMocks):
    """As the engine after a successful create: the command printed the CLI's JSON."""

    def new_resource(self, args, **kwargs):
        resource_id, outputs = super().new_resource(args, **kwargs)
        if args.typ == COMMAND and not self.preview:
            outputs["stdout"] = json.dumps(RESULT)
            outputs["stderr"] = "smoke: started microvm-1"
        return resource_id, outputs


def _evaluate(tmp_path, *, endpoints: bool):
    (tmp_path / "Pulumi.yaml").write_text("name: lambda-microvms\nruntime: python\n")
    config = {"lambda-microvms:version": "2.0"}
    if endpoints:
        config["lambda-microvms:endpoint"] = "http://127.0.0.1:4566"
        config["lambda-microvms:proxy"] = "http://127.0.0.1:4566"
    lines = ["config:"] + [f"  {k}: {json.dumps(v)}" for k, v in config.items()]
    lines.append("  lambda-microvms:payload:\n    secure: c2VjcmV0")
    (tmp_path / "Pulumi.test.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "__main__.py").write_text(PROGRAM)
    from devkit.offline.config import SecretValue

    return evaluate_program(
        "test",
        program_dir=tmp_path,
        overrides={"payload": SecretValue(PAYLOAD)},
        mocks=CommandMocks(account_id="123456789012", region="eu-west-1", preview=False),
    )


def test_smoke_command_inputs_environment_and_triggers(tmp_path):
    graph = _evaluate(tmp_path, endpoints=True)
    component = graph.one(runs.SMOKE_TEST_TYPE, "smoke")
    cmd = graph.one(COMMAND, "smoke-smoke")
    assert cmd.parent == component.urn
    inputs = cmd.plain_inputs
    assert inputs["create"] == f"{shlex.quote(PYTHON)} -m microvms --output json smoke"
    assert shlex.split(inputs["create"]) == [PYTHON, "-m", "microvms", "--output", "json", "smoke"]
    assert inputs["triggers"] == [IMAGE, "2.0"]
    assert inputs["environment"] == {
        "MICROVMS_REGION": "eu-west-1",
        "MICROVMS_IMAGE_ARN": IMAGE,
        "MICROVMS_IMAGE_VERSION": "2.0",
        "MICROVMS_EXECUTION_ROLE_ARN": ROLE,
        "MICROVMS_PROBE_PATH": "/ready",
        "MICROVMS_PROBE_PORT": "8080",
        "MICROVMS_EXPECT_STATUS": "204",
        "MICROVMS_TIMEOUT_SECONDS": "60",
        # min(stack ceiling 3600, backstop 60 + 120): the tighter one, visible to policies.
        "MICROVMS_MAX_DURATION_SECONDS": "180",
        "MICROVMS_INGRESS": "HTTP_INGRESS",
        "MICROVMS_EGRESS": "",
        "MICROVMS_OUTPUT": "json",
        "PYTHONUNBUFFERED": "1",
        "AWS_ENDPOINT_URL_LAMBDA_MICROVMS": "http://127.0.0.1:4566",
        "MICROVMS_PROXY_URL": "http://127.0.0.1:4566",
    }
    assert "delete" not in inputs  # nothing to undo: the smoke VM is already terminated
    assert "stderr" in cmd.options.get("additionalSecretOutputs", [])
    assert graph.plain_outputs["smoke"] == RESULT


def test_no_endpoint_overrides_without_config(tmp_path):
    graph = _evaluate(tmp_path, endpoints=False)
    env = graph.one(COMMAND, "smoke-smoke").plain_inputs["environment"]
    assert "AWS_ENDPOINT_URL_LAMBDA_MICROVMS" not in env and "MICROVMS_PROXY_URL" not in env


def test_disabled_smoke_registers_no_command(tmp_path):
    graph = _evaluate(tmp_path, endpoints=False)
    off = graph.one(runs.SMOKE_TEST_TYPE, "off")
    assert graph.children_of(off.urn) == []
    assert graph.plain_outputs.get("off") is None


def test_session_run_create_delete_and_secret_payload(tmp_path):
    graph = _evaluate(tmp_path, endpoints=False)
    cmd = graph.one(COMMAND, "session-run")
    inputs = cmd.plain_inputs
    q = shlex.quote(PYTHON)
    assert inputs["create"] == f"{q} -m microvms --output json run --wait --terminate-on-failure"
    assert inputs["delete"] == (
        f"{q} -m microvms --output json terminate --wait --missing-ok "
        "--from-json-env PULUMI_COMMAND_STDOUT"
    )
    assert inputs["addPreviousOutputInEnv"] is True
    assert inputs["triggers"] == [IMAGE, "2.0"]
    env = inputs["environment"]
    assert env["MICROVMS_PAYLOAD_FILE"] == "-"
    assert (env["MICROVMS_MAX_IDLE_SECONDS"], env["MICROVMS_SUSPENDED_SECONDS"]) == ("900", "0")
    assert env["MICROVMS_AUTO_RESUME"] == "true"
    assert env["MICROVMS_MAX_DURATION_SECONDS"] == "3600"
    assert env["MICROVMS_INGRESS"] == "SHELL_INGRESS,HTTP_INGRESS"
    # The payload travels only on stdin, and stdin is a secret in state.
    assert inputs["stdin"] == PAYLOAD
    assert cmd.inputs["stdin"] == {wire.SIG: wire.SECRET_SIG, "value": PAYLOAD}
    assert cmd.options["additionalSecretOutputs"] == ["stderr", "stdin"]
    raw = json.dumps({k: v for k, v in cmd.inputs.items() if k != "stdin"})
    assert PAYLOAD not in raw
    assert graph.plain_outputs["sessionId"] == "microvm-1"
    assert graph.plain_outputs["sessionEndpoint"] == RESULT["endpoint"]


def test_no_secret_or_token_anywhere_in_plain_state(tmp_path):
    graph = _evaluate(tmp_path, endpoints=True)
    for record in graph.by_type(COMMAND):
        for key, value in record.inputs.items():
            if isinstance(value, dict) and value.get(wire.SIG) == wire.SECRET_SIG:
                continue
            assert PAYLOAD not in json.dumps(value), (record.name, key)
        assert "X-aws-proxy-auth" not in json.dumps(record.inputs)


def test_parse_result():
    assert runs.parse_result(None) is None
    assert runs.parse_result('{"ok": true}') == {"ok": True}
    assert runs.parse_result("oops")["error"] == "the command did not print a JSON document"


def test_smoke_max_duration_is_the_tighter_of_ceiling_and_backstop():
    assert runs.smoke_max_duration(900, 300) == 420  # dev: backstop 300 + 120
    assert runs.smoke_max_duration(300, 300) == 300  # the stack's ceiling wins
    assert runs.smoke_max_duration(3600, 600) == 720  # prod
