"""Several images per stack, per-image adoption and protected prod, on the graph the real
``__main__.py`` registers under the offline engine."""

from __future__ import annotations

import json

import pytest

from components.artifact import build_zip
from devkit.offline import wire
from devkit.offline.config import SecretValue
from devkit.offline.evaluate import ProgramError, evaluate_program
from tests.unit.test_components_graph import IMAGE_DIR

pytestmark = pytest.mark.unit

IMAGE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
COMMAND = "command:local:Command"
BUCKET = "aws:s3/bucket:Bucket"
ACCOUNT = "111111111111"
TWO_IMAGES = {
    "default": {},
    "worker": {
        "memoryMiB": 4096,
        "logRetentionDays": 90,
        "smokeTest": {"path": "/ready"},
        "environmentVariables": {"MODE": "worker"},
        "tags": {"team": "workers"},
        "activeVersion": "2.0",
    },
}


def named(graph, type_, name):
    return graph.one(type_, name).plain_inputs


@pytest.fixture(scope="module")
def two():
    return evaluate_program("dev", overrides={"images": TWO_IMAGES})


def statements(graph, name):
    return {s["Sid"]: s for s in json.loads(named(graph, ROLE_POLICY, name)["policy"])["Statement"]}


def test_each_image_has_its_own_content_addressed_artifact_key(two):
    digest = build_zip(IMAGE_DIR).sha256
    keys = {r.name: r.plain_inputs["key"] for r in two.by_type(OBJECT)}
    assert keys == {
        "artifact-object": f"images/agent-sandbox/{digest}.zip",
        "worker-artifact-object": f"images/agent-sandbox-worker/{digest}.zip",
    }


def test_each_image_has_its_own_log_group_with_its_own_retention(two):
    groups = {r.name: r.plain_inputs for r in two.by_type(LOG_GROUP)}
    assert groups["logs-log-group"]["name"] == "/aws/lambda-microvms/agent-sandbox"
    assert groups["logs-log-group"]["retentionInDays"] == 14  # Pulumi.dev.yaml
    assert groups["worker-logs-log-group"]["name"] == "/aws/lambda-microvms/agent-sandbox-worker"
    assert groups["worker-logs-log-group"]["retentionInDays"] == 90
    assert groups["worker-logs-log-group"]["tags"]["team"] == "workers"


@pytest.mark.parametrize(
    ("prefix", "image"), [("", "agent-sandbox"), ("worker-", "agent-sandbox-worker")]
)
def test_each_images_roles_reach_only_its_artifact_prefix_and_log_group(two, prefix, image):
    build = statements(two, f"{prefix}build-policy")
    bucket = named(two, BUCKET, "artifacts-bucket")["bucket"]
    assert build["ReadImageArtifacts"]["Resource"] == f"arn:aws:s3:::{bucket}/images/{image}/*"
    group = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda-microvms/{image}"
    assert build["WriteOwnLogGroup"]["Resource"] == [group, f"{group}:*"]
    execution = statements(two, f"{prefix}execution-policy")
    assert execution["WriteOwnLogGroup"]["Resource"] == [group, f"{group}:*"]
    # nothing in either role names another image's artifacts or logs
    other = "agent-sandbox-worker" if image == "agent-sandbox" else "agent-sandbox/"
    for name in (f"{prefix}build-policy", f"{prefix}execution-policy"):
        assert other not in named(two, ROLE_POLICY, name)["policy"]


def test_each_image_is_built_by_its_own_role_into_its_own_log_group(two):
    default, worker = named(two, IMAGE, "image-image"), named(two, IMAGE, "worker-image-image")
    assert default["resources"] == [{"minimumMemoryInMiB": 2048}]
    assert worker["resources"] == [{"minimumMemoryInMiB": 4096}]
    assert (
        worker["logging"]["cloudWatch"]["logGroup"] == "/aws/lambda-microvms/agent-sandbox-worker"
    )
    assert worker["environmentVariables"] == {"AWS_REGION": "us-east-1", "MODE": "worker"}
    assert worker["namePrefix"] == "agent-sandbox-worker"
    assert worker["activeVersion"] == "2.0" and "activeVersion" not in default
    deps = two.one(IMAGE, "worker-image-image").property_dependencies["buildRoleArn"]
    assert [d.rsplit("::", 1)[1] for d in deps] == ["worker-build-role"]


def test_each_image_has_its_own_smoke_test_against_its_active_version(two):
    default = named(two, COMMAND, "smoke-smoke")
    worker = named(two, COMMAND, "worker-smoke-smoke")
    assert worker["environment"]["MICROVMS_PROBE_PATH"] == "/ready"
    assert default["environment"]["MICROVMS_PROBE_PATH"] == "/health"
    assert worker["environment"]["MICROVMS_IMAGE_VERSION"] == "2.0"
    assert "MICROVMS_IMAGE_VERSION" not in default["environment"]
    images = two.plain_outputs["images"]
    assert worker["environment"]["MICROVMS_IMAGE_ARN"] == images["worker"]["imageArn"]
    assert default["environment"]["MICROVMS_IMAGE_ARN"] == images["default"]["imageArn"]
    assert (
        worker["environment"]["MICROVMS_EXECUTION_ROLE_ARN"]
        .split("/")[1]
        .startswith("worker-execution-role")
    )
    assert worker["triggers"][1].endswith("@2.0")  # pinning or clearing it re-runs the test


def test_outputs_keyed_by_image_and_the_default_images_outputs_stay(two):
    out = two.plain_outputs
    assert set(out["images"]) == {"default", "worker"}
    worker = out["images"]["worker"]
    assert worker["logGroupName"] == "/aws/lambda-microvms/agent-sandbox-worker"
    assert "/images/agent-sandbox-worker/" in worker["artifactUri"]
    assert worker["imageArn"].endswith(worker["imageName"])
    assert worker["activeVersion"] == "2.0"
    assert {"imageArn", "imageName", "imageVersion", "smokeTest", "buildRoleArn"} <= set(worker)
    assert out["imageArn"] == out["images"]["default"]["imageArn"]
    assert out["logGroupName"] == "/aws/lambda-microvms/agent-sandbox"


def test_a_stack_without_a_default_image_exports_only_the_images_map():
    graph = evaluate_program("local", overrides={"images": {"api": {}, "batch": {}}})
    assert {r.name for r in graph.by_type(IMAGE)} == {"api-image-image", "batch-image-image"}
    out = graph.plain_outputs
    assert set(out["images"]) == {"api", "batch"}
    assert "imageArn" not in out and "artifactBucketName" in out


def test_adopt_per_image_and_the_stack_wide_adopt_for_the_default_image_only():
    arn = "arn:aws:lambda:us-east-1:123456789012:microvm-image:{}"
    graph = evaluate_program(
        "local",
        overrides={
            "adopt": "hand-built",
            "images": {"default": {}, "worker": {"adopt": "worker-by-hand"}, "batch": {}},
        },
    )
    default = named(graph, IMAGE, "image-image")
    worker = named(graph, IMAGE, "worker-image-image")
    batch = named(graph, IMAGE, "batch-image-image")
    assert (default["adoptArn"], default["name"]) == (arn.format("hand-built"), "hand-built")
    assert (worker["adoptArn"], worker["name"]) == (arn.format("worker-by-hand"), "worker-by-hand")
    assert "adoptArn" not in batch and batch["namePrefix"] == "agent-sandbox-batch"
    for rec in graph.by_type(IMAGE):
        assert not rec.options.get("importId")  # a create that takes the image over


def test_a_per_image_secret_stays_secret_and_the_others_get_the_stack_wide_ones():
    graph = evaluate_program(
        "local",
        overrides={
            "secretEnvironmentVariables": SecretValue({"SHARED": "s3cr3t-shared"}),
            "images": SecretValue(
                {"default": {}, "worker": {"secretEnvironmentVariables": {"TOKEN": "s3cr3t-w"}}}
            ),
        },
    )
    worker = graph.one(IMAGE, "worker-image-image").inputs["secretEnvironmentVariables"]
    default = graph.one(IMAGE, "image-image").inputs["secretEnvironmentVariables"]
    assert wire.is_secret(worker) and wire.is_secret(default)
    assert wire.unwrap_secrets(worker) == {"TOKEN": "s3cr3t-w"}
    assert wire.unwrap_secrets(default) == {"SHARED": "s3cr3t-shared"}
    assert "s3cr3t" not in json.dumps(graph.outputs)


def test_a_bad_entry_fails_the_program_naming_the_key_path():
    with pytest.raises(ProgramError) as err:
        evaluate_program("dev", overrides={"images": {"worker": {"memoryMiB": 3000}}})
    assert err.value.error_type == "ConfigError"
    assert "'lambda-microvms:images.worker.memoryMiB' is 3000 MiB; allowed values:" in str(
        err.value
    )


# ------------------------------------------------------------------------------ protect

PROTECTED = {"artifacts-bucket", "image-image", "logs-log-group"}


def protected(graph):
    marked = {r.name for r in graph.resources if r.options.get("protect")}
    retained = {r.name for r in graph.resources if r.options.get("retainOnDelete")}
    assert marked == retained
    return marked


def test_prod_protects_exactly_the_bucket_images_and_log_groups():
    assert protected(evaluate_program("prod")) == PROTECTED
    graph = evaluate_program("prod", overrides={"images": {"default": {}, "worker": {}}})
    assert protected(graph) == PROTECTED | {"worker-image-image", "worker-logs-log-group"}


@pytest.mark.parametrize("stack", ["dev", "local"])
def test_dev_and_local_protect_nothing(stack):
    graph = evaluate_program(stack, overrides={"images": {"default": {}, "worker": {}}})
    assert protected(graph) == set()


def test_protect_can_be_turned_on_for_any_stack():
    assert protected(evaluate_program("local", overrides={"protect": True})) == PROTECTED
