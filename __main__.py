"""lambda-microvms: settings → components → exports. Keep this file thin."""

import os
import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.artifact_bucket import ArtifactBucket, ArtifactBucketArgs
from components.config import load_settings
from components.naming import artifact_bucket_name, partition_for_region
from components.stack_images import declare_image

PROGRAM_DIR = Path(__file__).resolve().parent

settings = load_settings()

pulumi.export("environment", settings.environment)
pulumi.export("region", settings.region)

# --- storage (one bucket per stack) -----------------------------------------------------------
# The local stack has no real STS, so it names its account in config.
account_id = settings.account_id or aws.get_caller_identity().account_id

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
        tags=settings.common_tags,
        protect=settings.protect,
    ),
)
pulumi.export("artifactBucketName", bucket.bucket_name)

# --- images: artifact, log group, roles, image, smoke test, session (components/stack_images) --
# The interpreter is stored relative to the program when it lives in the project's .venv, so the
# command (and so the preview) is the same on every machine.
interpreter = sys.executable
if Path(interpreter).is_relative_to(PROGRAM_DIR):
    interpreter = os.path.relpath(interpreter, PROGRAM_DIR)

images = [
    declare_image(
        image,
        settings,
        bucket=bucket,
        account_id=account_id,
        program_dir=PROGRAM_DIR,
        interpreter=interpreter,
    )
    for image in settings.images
]

# The default image keeps the single-image stack's outputs.
for declared in images:
    if declared.settings.is_default:
        pulumi.export("artifactUri", declared.artifact.uri)
        pulumi.export("artifactDigest", declared.artifact.digest)
        pulumi.export("buildRoleArn", declared.build_role.arn)
        pulumi.export("executionRoleArn", declared.execution_role.arn)
        pulumi.export("logGroupName", declared.log_group.group_name)
        pulumi.export("imageArn", declared.image.image_arn)
        pulumi.export("imageName", declared.image.image_name)
        pulumi.export("imageVersion", declared.image.image_version)
        pulumi.export("smokeTest", declared.smoke.result)
        if declared.session is not None:
            pulumi.export("sessionMicrovmId", declared.session.microvm_id)
if settings.images_declared:
    pulumi.export("images", {d.settings.key: d.outputs() for d in images})
