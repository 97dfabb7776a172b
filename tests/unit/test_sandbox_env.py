"""The sandbox's port choice and the lines ``eval "$(make -s sandbox-env)"`` runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devkit import sandbox, services

REPO = Path(__file__).resolve().parents[2]


def _record(**ports) -> sandbox.Record:
    return sandbox.Record(
        ports={"moto": 4566, "emulator": 4567, "app": 18080, "hooks": 19000, "shell": 18022}
        | ports,
        region="us-east-1",
        image_arn="arn:aws:lambda:us-east-1:123456789012:microvm-image:agent-sandbox-1a2b3c4d",
        image_name="agent-sandbox-1a2b3c4d",
        image_version="1.0",
        execution_role_arn="arn:aws:iam::123456789012:role/agent-sandbox-sandbox-execution",
        build_role_arn="arn:aws:iam::123456789012:role/agent-sandbox-sandbox-build",
        artifact_uri="s3://bucket/images/agent-sandbox/abc.zip",
        started_at=0.0,
    )


def test_default_ports_when_free():
    ports = sandbox.choose_ports({}, is_free=lambda port: True)
    assert ports == services.Ports(moto=4566, emulator=4567, app=18080, hooks=19000, shell=18022)


def test_preferred_ports_from_the_environment():
    ports = sandbox.choose_ports(
        {"LOCAL_MOTO_PORT": "5566", "LOCAL_SHELL_PORT": "5522"}, is_free=lambda port: True
    )
    assert (ports.moto, ports.emulator, ports.shell) == (5566, 4567, 5522)


def test_busy_default_ports_fall_back_to_distinct_free_ports():
    busy = {4566, 4567}
    ports = sandbox.choose_ports({}, is_free=lambda port: port not in busy)
    assert ports.moto not in busy and ports.emulator not in busy
    assert (ports.app, ports.hooks, ports.shell) == (18080, 19000, 18022)
    values = [ports.moto, ports.emulator, ports.app, ports.hooks, ports.shell]
    assert len(set(values)) == 5


@pytest.mark.parametrize("raw", ["abc", "0", "70000"])
def test_bad_port_variable_is_named(raw):
    with pytest.raises(sandbox.SandboxError) as err:
        sandbox.choose_ports({"LOCAL_EMULATOR_PORT": raw}, is_free=lambda port: True)
    assert str(err.value) == f"LOCAL_EMULATOR_PORT must be a TCP port from 1 to 65535, got {raw!r}"


def test_env_lines_evaluate_in_bash_to_the_sandbox_environment():
    record = _record(moto=5566, emulator=5567)
    script = "\n".join(sandbox.env_lines(record)) + "\nenv -0"
    proc = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": "/usr/bin:/bin", "AWS_PROFILE": "prod", "AWS_SESSION_TOKEN": "real"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    env = dict(item.split("=", 1) for item in proc.stdout.split("\0") if "=" in item)
    assert env["AWS_ENDPOINT_URL_LAMBDA_MICROVMS"] == "http://127.0.0.1:5567"
    assert env["MICROVMS_PROXY_URL"] == "http://127.0.0.1:5567"
    for service in ("S3", "IAM", "STS", "CLOUDWATCH_LOGS"):
        assert env[f"AWS_ENDPOINT_URL_{service}"] == "http://127.0.0.1:5566"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("testing", "testing")
    assert env["MICROVMS_IMAGE_ARN"] == record.image_arn
    assert env["MICROVMS_EXECUTION_ROLE_ARN"] == record.execution_role_arn
    # a profile or session token would beat the fake keys in boto3's lookup order
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert env["PATH"] == f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin"


def test_env_lines_are_few_and_comment_first():
    lines = sandbox.env_lines(_record())
    assert lines[0].startswith("# lambda-microvms sandbox")
    assert len(lines) <= 8
    assert all(line.startswith(("#", "export ", "unset ")) for line in lines)
