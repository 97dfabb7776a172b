"""One image of the stack, wired: its artifact, log group, roles, image, smoke test and session.

``__main__.py`` calls :func:`declare_image` once per :class:`~components.config.ImageSettings`.
Every image gets its own content-addressed artifact (``images/<image-name>/<sha256>.zip``), its
own log group (``/aws/lambda-microvms/<image-name>``) and its own build and execution roles, each
scoped to exactly that artifact prefix and that log group, so one image's roles never reach
another's artifacts or logs. The artifact bucket is the stack's (one per stack).

The default image keeps the single-image resource names (``artifact``, ``logs``, ``build``,
``execution``, ``image``, ``smoke``, ``session``), so a stack that had one image sees no diff;
another image's names are prefixed with its key (``worker-image``, ``worker-logs``, …). The
resources stay top-level (no per-image component), which is what keeps those URNs unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.artifact import ImageArtifact, ImageArtifactArgs
from components.artifact_bucket import ArtifactBucket
from components.config import ImageSettings, Settings, image_secret_environment_variables
from components.logs import ImageLogGroup, ImageLogGroupArgs
from components.microvm_image import MicrovmImage, MicrovmImageArgs
from components.roles import BuildRole, BuildRoleArgs, ExecutionRole, ExecutionRoleArgs
from components.runs import SessionRun, SessionRunArgs, SmokeTest, SmokeTestArgs


@dataclass
class DeclaredImage:
    """What one image registered."""

    settings: ImageSettings
    artifact: ImageArtifact
    log_group: ImageLogGroup
    build_role: BuildRole
    execution_role: ExecutionRole
    image: MicrovmImage
    smoke: SmokeTest
    session: SessionRun | None

    def outputs(self) -> dict[str, Any]:
        """This image's entry in the stack's ``images`` output."""
        out: dict[str, Any] = {
            "imageArn": self.image.image_arn,
            "imageName": self.image.image_name,
            "imageVersion": self.image.image_version,
            "activeVersion": self.settings.active_version,
            "artifactUri": self.artifact.uri,
            "artifactDigest": self.artifact.digest,
            "logGroupName": self.log_group.group_name,
            "buildRoleArn": self.build_role.arn,
            "executionRoleArn": self.execution_role.arn,
            "smokeTest": self.smoke.result,
        }
        if self.session is not None:
            out["sessionMicrovmId"] = self.session.microvm_id
        return out


def declare_image(
    image: ImageSettings,
    settings: Settings,
    *,
    bucket: ArtifactBucket,
    account_id: pulumi.Input[str],
    program_dir: Path,
    interpreter: str,
) -> DeclaredImage:
    """Register one image's resources (in the order the single-image program always did)."""
    name = image.logical_name
    tags = settings.tags_for(image)
    artifact = ImageArtifact(
        name("artifact"),
        ImageArtifactArgs(
            bucket=bucket.bucket_name,
            image_name=image.image_name,
            source_dir=os.path.relpath(program_dir / image.source),
            # Relative (and git-ignored), so the asset path in state is the same on every machine.
            build_dir=os.path.relpath(program_dir / "build" / "artifacts"),
            region=settings.region,
            tags=tags,
        ),
    )
    log_group = ImageLogGroup(
        name("logs"),
        ImageLogGroupArgs(
            image_name=image.image_name,
            retention_days=image.log_retention_days,
            region=settings.region,
            tags=tags,
            protect=settings.protect,
        ),
    )
    build_role = BuildRole(
        name("build"),
        BuildRoleArgs(
            account_id=account_id,
            region=settings.region,
            image_name=image.image_name,
            bucket_name=bucket.bucket_name,
            ecr_repository_arns=settings.ecr_repository_arns,
            kms_key_arn=settings.artifact_bucket.kms_key_arn,
            log_group_name=log_group.log_group_name,
            tags=tags,
        ),
    )
    execution_role = ExecutionRole(
        name("execution"),
        ExecutionRoleArgs(
            account_id=account_id,
            region=settings.region,
            image_name=image.image_name,
            bedrock_model_arns=settings.bedrock_model_arns,
            extra_statements=settings.execution_role_extra_statements,
            attach_read_only_access=settings.attach_read_only_access,
            log_group_name=log_group.log_group_name,
            tags=tags,
        ),
    )

    microvm_image = MicrovmImage(
        name("image"),
        MicrovmImageArgs(
            name_prefix=image.image_name,
            artifact_uri=artifact.uri,
            build_role_arn=build_role.arn,
            region=settings.region,
            memory_mib=image.memory_mib,
            architecture=image.architecture,
            base_image_version=image.base_image_version,
            hooks=image.hooks,
            # The agent calls Bedrock in the stack's region (the Dockerfile's AWS_REGION is only
            # a default).
            environment_variables={"AWS_REGION": settings.region, **image.environment_variables},
            secret_environment_variables=image_secret_environment_variables(image),
            # The log group both roles are scoped to (not the service's default, which would
            # carry the image name's random suffix).
            logging={"cloudWatch": {"logGroup": log_group.group_name}},
            tags=tags,
            endpoint_url=settings.endpoints.microvms,
            keep_versions=image.keep_versions,
            build_timeout_minutes=image.build_timeout_minutes,
            terminate_microvms_on_delete=image.terminate_microvms_on_delete,
            adopt_arn=settings.adopted_arn_of(image),
            active_version=image.active_version,
            protect=settings.protect,
        ),
        opts=pulumi.ResourceOptions(depends_on=[log_group, build_role]),
    )

    # The runs test (and run) the version that is active: the newest build, or the pinned
    # activeVersion. Pinning or clearing it re-runs them like a build does.
    rerun_on: pulumi.Input[str] = microvm_image.build_fingerprint
    if image.active_version:
        rerun_on = pulumi.Output.concat(rerun_on, "@", image.active_version)
    smoke_settings = image.smoke_test
    smoke = SmokeTest(
        name("smoke"),
        SmokeTestArgs(
            image_arn=microvm_image.image_arn,
            image_version=image.active_version,
            rerun_on=rerun_on,
            region=settings.region,
            execution_role_arn=execution_role.arn,
            path=smoke_settings.path,
            expected_status=smoke_settings.expected_status,
            timeout_seconds=smoke_settings.timeout_seconds,
            ingress_connectors=smoke_settings.ingress_connectors,
            egress_connectors=smoke_settings.egress_connectors,
            enabled=smoke_settings.enabled,
            max_duration_seconds=settings.maximum_duration_seconds,
            microvms_endpoint=settings.endpoints.microvms,
            proxy_url=settings.endpoints.proxy,
            interpreter=interpreter,
        ),
    )

    session = None
    if image.session_run.enabled:
        session = SessionRun(
            name("session"),
            SessionRunArgs(
                image_arn=microvm_image.image_arn,
                image_version=image.active_version,
                rerun_on=rerun_on,
                region=settings.region,
                execution_role_arn=execution_role.arn,
                ingress_connectors=image.session_run.ingress_connectors,
                idle_policy=settings.idle_policy.to_api() if settings.idle_policy else None,
                max_duration_seconds=settings.maximum_duration_seconds,
                microvms_endpoint=settings.endpoints.microvms,
                proxy_url=settings.endpoints.proxy,
                interpreter=interpreter,
            ),
        )
    return DeclaredImage(
        image, artifact, log_group, build_role, execution_role, microvm_image, smoke, session
    )
