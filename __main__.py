"""lambda-microvms: settings → components → exports. Keep this file thin."""

import os
import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.artifact import ImageArtifact, ImageArtifactArgs
from components.artifact_bucket import ArtifactBucket, ArtifactBucketArgs
from components.config import load_settings, secret_environment_variables
from components.logs import ImageLogGroup, ImageLogGroupArgs
from components.microvm_image import MicrovmImage, MicrovmImageArgs
from components.naming import artifact_bucket_name, partition_for_region
from components.roles import BuildRole, BuildRoleArgs, ExecutionRole, ExecutionRoleArgs
from components.runs import SessionRun, SessionRunArgs, SmokeTest, SmokeTestArgs

PROGRAM_DIR = Path(__file__).resolve().parent

settings = load_settings()

pulumi.export("environment", settings.environment)
pulumi.export("region", settings.region)

# --- storage, artifact, log group, roles ----------------------------------------------------
# The local stack has no real STS, so it names its account in config.
account_id = settings.account_id or aws.get_caller_identity().account_id
tags = settings.common_tags

bucket = ArtifactBucket(
    "artifacts",
    ArtifactBucketArgs(
        bucket_name=artifact_bucket_name(
            settings.project, settings.stack, account_id, settings.region
        ),
        force_destroy=settings.artifact_bucket.force_destroy,
        noncurrent_version_expiration_days=settings.artifact_bucket.noncurrent_version_expiration_days,
        kms_key_arn=settings.artifact_bucket.kms_key_arn,
        region=settings.region,
        partition=partition_for_region(settings.region),
        tags=tags,
    ),
)
artifact = ImageArtifact(
    "artifact",
    ImageArtifactArgs(
        bucket=bucket.bucket_name,
        image_name=settings.image_name,
        source_dir=os.path.relpath(PROGRAM_DIR / "image"),
        # Relative (and git-ignored), so the asset path in state is the same on every machine.
        build_dir=os.path.relpath(PROGRAM_DIR / "build" / "artifacts"),
        region=settings.region,
        tags=tags,
    ),
)
log_group = ImageLogGroup(
    "logs",
    ImageLogGroupArgs(
        image_name=settings.image_name,
        retention_days=settings.log_retention_days,
        region=settings.region,
        tags=tags,
    ),
)
build_role = BuildRole(
    "build",
    BuildRoleArgs(
        account_id=account_id,
        region=settings.region,
        image_name=settings.image_name,
        bucket_name=bucket.bucket_name,
        ecr_repository_arns=settings.ecr_repository_arns,
        kms_key_arn=settings.artifact_bucket.kms_key_arn,
        log_group_name=log_group.log_group_name,
        tags=tags,
    ),
)
execution_role = ExecutionRole(
    "execution",
    ExecutionRoleArgs(
        account_id=account_id,
        region=settings.region,
        image_name=settings.image_name,
        bedrock_model_arns=settings.bedrock_model_arns,
        extra_statements=settings.execution_role_extra_statements,
        attach_read_only_access=settings.attach_read_only_access,
        log_group_name=log_group.log_group_name,
        tags=tags,
    ),
)

pulumi.export("artifactBucketName", bucket.bucket_name)
pulumi.export("artifactUri", artifact.uri)
pulumi.export("artifactDigest", artifact.digest)
pulumi.export("buildRoleArn", build_role.arn)
pulumi.export("executionRoleArn", execution_role.arn)
pulumi.export("logGroupName", log_group.group_name)
# --- end of storage, artifact, log group, roles ----------------------------------------------

# --- MicroVM image (dynamic provider) ---------------------------------------------------------
image = MicrovmImage(
    "image",
    MicrovmImageArgs(
        name_prefix=settings.image_name,
        artifact_uri=artifact.uri,
        build_role_arn=build_role.arn,
        region=settings.region,
        memory_mib=settings.memory_mib,
        architecture=settings.architecture,
        base_image_version=settings.base_image_version,
        hooks=settings.hooks,
        # The agent calls Bedrock in the stack's region (the Dockerfile's AWS_REGION is only a default).
        environment_variables={"AWS_REGION": settings.region, **settings.environment_variables},
        secret_environment_variables=secret_environment_variables(),
        # The log group both roles are scoped to (not the service's default, which would carry
        # the image name's random suffix).
        logging={"cloudWatch": {"logGroup": log_group.group_name}},
        tags=tags,
        endpoint_url=settings.endpoints.microvms,
        keep_versions=settings.keep_versions,
        build_timeout_minutes=settings.build_timeout_minutes,
        terminate_microvms_on_delete=settings.terminate_microvms_on_delete,
        adopt_arn=settings.adopted_image_arn,
    ),
    opts=pulumi.ResourceOptions(depends_on=[log_group, build_role]),
)
pulumi.export("imageArn", image.image_arn)
pulumi.export("imageName", image.image_name)
pulumi.export("imageVersion", image.image_version)

# --- ephemeral runs (pulumi-command) ----------------------------------------------------------
# The interpreter is stored relative to the program when it lives in the project's .venv, so the
# command (and so the preview) is the same on every machine.
interpreter = sys.executable
if Path(interpreter).is_relative_to(PROGRAM_DIR):
    interpreter = os.path.relpath(interpreter, PROGRAM_DIR)

smoke = SmokeTest(
    "smoke",
    SmokeTestArgs(
        image_arn=image.image_arn,
        # The active version (the one just built); a build re-runs the test.
        rerun_on=image.build_fingerprint,
        region=settings.region,
        execution_role_arn=execution_role.arn,
        path=settings.smoke_test.path,
        expected_status=settings.smoke_test.expected_status,
        timeout_seconds=settings.smoke_test.timeout_seconds,
        ingress_connectors=settings.smoke_test.ingress_connectors,
        egress_connectors=settings.smoke_test.egress_connectors,
        enabled=settings.smoke_test.enabled,
        max_duration_seconds=settings.maximum_duration_seconds,
        microvms_endpoint=settings.endpoints.microvms,
        proxy_url=settings.endpoints.proxy,
        interpreter=interpreter,
    ),
)
pulumi.export("smokeTest", smoke.result)

if settings.session_run.enabled:
    session = SessionRun(
        "session",
        SessionRunArgs(
            image_arn=image.image_arn,
            rerun_on=image.build_fingerprint,
            region=settings.region,
            execution_role_arn=execution_role.arn,
            ingress_connectors=settings.session_run.ingress_connectors,
            idle_policy=settings.idle_policy.to_api() if settings.idle_policy else None,
            max_duration_seconds=settings.maximum_duration_seconds,
            microvms_endpoint=settings.endpoints.microvms,
            proxy_url=settings.endpoints.proxy,
            interpreter=interpreter,
        ),
    )
    pulumi.export("sessionMicrovmId", session.microvm_id)
