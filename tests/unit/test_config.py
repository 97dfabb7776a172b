"""The settings model: pure parsing of raw config strings, no mocks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, Settings, parse_settings

REPO = Path(__file__).resolve().parents[2]


def raw_for(stack: str, **overrides) -> dict[str, str]:
    """Project defaults + stack values, as the engine's PULUMI_CONFIG strings."""
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    raw: dict[str, str] = {}
    for key, spec in project.get("config", {}).items():
        if isinstance(spec, dict) and "default" in spec:
            raw[key] = _s(spec["default"])
    stack_cfg = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    for key, value in stack_cfg.items():
        raw[key] = _s(value)
    for key, value in overrides.items():
        key = key.replace("__", ":")
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = _s(value)
    return raw


def _s(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_each_stack_loads(stack):
    s = parse_settings(raw_for(stack), stack=stack)
    assert isinstance(s, Settings)
    assert s.environment == stack
    assert s.memory_mib in (512, 1024, 2048, 4096, 8192)
    assert s.allowed_account_ids


def test_dev_and_prod_differ_where_a_team_would():
    dev = parse_settings(raw_for("dev"), stack="dev")
    prod = parse_settings(raw_for("prod"), stack="prod")
    assert dev.artifact_bucket.force_destroy is True
    assert prod.artifact_bucket.force_destroy is False
    assert prod.log_retention_days > dev.log_retention_days
    assert (
        prod.artifact_bucket.noncurrent_version_expiration_days
        > dev.artifact_bucket.noncurrent_version_expiration_days
    )
    assert prod.terminate_microvms_on_delete is False
    assert dev.allowed_account_ids != prod.allowed_account_ids


def test_local_points_every_endpoint_at_loopback():
    s = parse_settings(raw_for("local"), stack="local")
    for name in ("microvms", "proxy", "s3", "iam", "sts", "logs"):
        assert getattr(s.endpoints, name).startswith("http://127.0.0.1:"), name
    assert s.account_id == "123456789012"


def test_common_tags():
    s = parse_settings(raw_for("dev"), stack="dev")
    assert s.common_tags["project"] == "lambda-microvms"
    assert s.common_tags["environment"] == "dev"
    assert s.common_tags["stack"] == "dev"
    assert s.common_tags["team"] == "sandboxes"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"lambda-microvms__memoryMiB": 3000},
            "'lambda-microvms:memoryMiB' is 3000 MiB; allowed values: 512, 1024, 2048, 4096, 8192",
        ),
        (
            {"lambda-microvms__memoryMiB": "lots"},
            "'lambda-microvms:memoryMiB' must be an integer, got 'lots'",
        ),
        (
            {"aws__region": "mars-1"},
            "'aws:region' is 'mars-1'; allowed values: us-east-1, us-east-2, us-west-2, eu-west-1, ap-northeast-1",
        ),
        (
            {"lambda-microvms__environment": None},
            "missing required configuration key 'lambda-microvms:environment'",
        ),
        (
            {"lambda-microvms__environment": "qa"},
            "'lambda-microvms:environment' is 'qa'; allowed values: dev, prod, local",
        ),
        ({"aws__region": None}, "missing required configuration key 'aws:region'"),
        (
            {"aws__allowedAccountIds": None},
            "missing required configuration key 'aws:allowedAccountIds'",
        ),
        (
            {"aws__allowedAccountIds": ["12345"]},
            "'aws:allowedAccountIds[0]' is '12345'; it must be a 12-digit AWS account id",
        ),
        ({"lambda-microvms__imageName": "bad name!"}, "'lambda-microvms:imageName' is 'bad name!'"),
        (
            {"lambda-microvms__architecture": "X86_64"},
            "'lambda-microvms:architecture' is 'X86_64'; allowed values: ARM_64",
        ),
        (
            {"lambda-microvms__baseImageVersion": "1.0"},
            "'lambda-microvms:baseImageVersion' is '1.0'",
        ),
        (
            {"lambda-microvms__idlePolicy": {"maxIdleDurationSeconds": 60}},
            "is missing suspendedDurationSeconds, autoResumeEnabled",
        ),
        (
            {
                "lambda-microvms__idlePolicy": {
                    "maxIdleDurationSeconds": 10,
                    "suspendedDurationSeconds": 0,
                    "autoResumeEnabled": True,
                }
            },
            "maxIdleDurationSeconds' is 10; it must be an integer between 60 and 28800",
        ),
        ({"lambda-microvms__idlePolicy": {"maxIdle": 60}}, "unknown member(s) maxIdle"),
        (
            {"lambda-microvms__maximumDurationSeconds": 99999},
            "'lambda-microvms:maximumDurationSeconds' is 99999; it must be between 1 and 28800",
        ),
        (
            {"lambda-microvms__smokeTest": {"path": "health"}},
            "'lambda-microvms:smokeTest.path' is 'health'",
        ),
        (
            {"lambda-microvms__smokeTest": {"ingressConnectors": ["SHELL"]}},
            "allowed values: a network connector ARN or one of HTTP_INGRESS",
        ),
        (
            {"lambda-microvms__logRetentionDays": 2},
            "'lambda-microvms:logRetentionDays' is 2; allowed values: 1, 3, 5",
        ),
        (
            {"lambda-microvms__keepVersions": 0},
            "'lambda-microvms:keepVersions' is 0; it must be between 1 and 50",
        ),
        (
            {"lambda-microvms__endpoints": {"microvms": "localhost:4567"}},
            "'lambda-microvms:endpoints.microvms' is 'localhost:4567'; it must be an http(s):// URL",
        ),
        (
            {"lambda-microvms__artifactBucket": {"forceDestroy": "yes"}},
            "'lambda-microvms:artifactBucket.forceDestroy' is 'yes'; it must be true or false",
        ),
        (
            {"lambda-microvms__bedrockModelArns": ["claude"]},
            "'lambda-microvms:bedrockModelArns[0]' is 'claude'",
        ),
        (
            {"lambda-microvms__executionRoleExtraStatements": [{"Action": "s3:GetObject"}]},
            "must be an IAM statement object with Action and Resource",
        ),
        (
            {"lambda-microvms__attachReadOnlyAccess": "maybe"},
            "'lambda-microvms:attachReadOnlyAccess' must be true or false, got 'maybe'",
        ),
        (
            {"lambda-microvms__secretEnvironmentVariables": {"TOKEN": "x"}},
            "must be set as a secret",
        ),
        (
            {"lambda-microvms__tags": {f"k{i}": "v" for i in range(47)}},
            "'lambda-microvms:tags' has 47 tags; at most 46",
        ),
    ],
)
def test_bad_values_name_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        parse_settings(raw_for("dev", **overrides), stack="dev")
    assert message in str(err.value)


def test_secret_env_names_only_never_values():
    raw = raw_for("dev", **{"lambda-microvms__secretEnvironmentVariables": {"API_TOKEN": "s3cr3t"}})
    s = parse_settings(
        raw, stack="dev", secret_keys=("lambda-microvms:secretEnvironmentVariables",)
    )
    assert s.secret_environment_variable_names == ("API_TOKEN",)
    assert "s3cr3t" not in repr(s)


def test_hooks_default_to_image_hooks_file(tmp_path):
    hooks = {"port": 9000, "microvmImageHooks": {"ready": "ENABLED", "readyTimeoutInSeconds": 30}}
    f = tmp_path / "hooks.json"
    f.write_text(json.dumps(hooks))
    s = parse_settings(raw_for("dev"), stack="dev", hooks_file=f)
    assert s.hooks == hooks
    s2 = parse_settings(
        raw_for("dev", **{"lambda-microvms__hooks": {"port": 9100}}), stack="dev", hooks_file=f
    )
    assert s2.hooks == {"port": 9100}


def test_pulumi_yaml_declares_the_settings_models_own_defaults():
    """The Pulumi CLI wants a default for every optional key, so Pulumi.yaml repeats them; each
    must mean exactly what config.py does when the key is absent (one default, two spellings)."""
    project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
    declared = {
        key: _s(spec["default"])
        for key, spec in project["config"].items()
        if isinstance(spec, dict) and "default" in spec
    }
    assert "lambda-microvms:memoryMiB" in declared
    required = {
        "lambda-microvms:environment": "dev",
        "aws:region": "us-east-1",
        "aws:allowedAccountIds": '["123456789012"]',
    }
    absent = dataclasses.asdict(parse_settings(required))
    with_yaml = dataclasses.asdict(parse_settings({**required, **declared}))
    drifted = {k: (absent[k], with_yaml[k]) for k in absent if absent[k] != with_yaml[k]}
    assert drifted == {}, f"Pulumi.yaml's defaults differ from config.py's: {drifted}"
    # and a declared default that drifted would be seen
    moved = parse_settings({**required, **declared, "lambda-microvms:memoryMiB": "4096"})
    assert dataclasses.asdict(moved)["memory_mib"] != absent["memory_mib"]


def test_staging_is_not_an_environment_because_no_staging_stack_ships():
    # Every accepted environment has a stack file and a policy config (local shares dev's).
    from components.config import ENVIRONMENTS

    for env in ENVIRONMENTS:
        assert (REPO / f"Pulumi.{env}.yaml").exists(), env
        assert (REPO / "policies" / "config" / f"{'dev' if env == 'local' else env}.json").exists()
    with pytest.raises(ConfigError, match="allowed values: dev, prod, local"):
        parse_settings({"lambda-microvms:environment": "staging", "aws:region": "us-east-1"})
