"""lambda-microvms: settings → components → exports. Keep this file thin."""

import os
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.artifact import ImageArtifact, ImageArtifactArgs
from components.artifact_bucket import ArtifactBucket, ArtifactBucketArgs
from components.config import load_settings
from components.logs import ImageLogGroup, ImageLogGroupArgs
from components.naming import artifact_bucket_name, partition_for_region
from components.roles import BuildRole, BuildRoleArgs, ExecutionRole, ExecutionRoleArgs

PROGRAM_DIR = Path(__file__).resolve().parent

settings = load_settings()

pulumi.export("environment", settings.environment)
pulumi.export("region", settings.region)

# --- storage, artifact, log group, roles (components engineer) ------------------------------
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
