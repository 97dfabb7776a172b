"""Build the sandbox's MicroVM image the way ``pulumi up`` would, without Pulumi's engine.

The same pieces the program (``__main__.py``) wires together, called as plain Python against the
sandbox's moto and emulator:

1. settings: ``Pulumi.local.yaml`` read and validated by ``components.config.parse_settings``;
2. the artifact bucket (``components.naming``) and the reproducible zip of ``image/`` under its
   content-addressed key (``components.artifact``), uploaded to moto S3;
3. the image's log group, the build role and the execution role with the program's own trust and
   permission documents (``components.roles``), created in moto Logs / IAM;
4. the ``MicrovmImage`` provider properties (``components.microvm_image.component.image_props``)
   through ``MicrovmImageProvider.check`` then ``.create``: ``CreateMicrovmImage`` against the
   emulator, the build wait (the emulator calls the app's ``/ready`` and ``/validate`` hooks)
   and every failure path of the real provider.

Everything is idempotent: the bucket, log group and roles are reused when they exist; an image
that already exists is reused by ``devkit.sandbox`` before this module is called.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from components.artifact import artifact_key, build_zip
from components.config import Settings, parse_settings
from components.microvm_image.component import MicrovmImageArgs, image_props
from components.microvm_image.provider import MicrovmImageError, MicrovmImageProvider
from components.naming import artifact_bucket_name
from components.roles import (
    build_role_policy,
    execution_role_policy,
    lambda_trust_policy,
    log_group_arn,
    log_group_name,
    role_tags,
    to_json,
)

REPO = Path(__file__).resolve().parents[1]
PROJECT = "lambda-microvms"
#: The sandbox's own stack name: it names the bucket, the tags and the image's name seed.
STACK = "sandbox"
DEFAULT_ACCOUNT_ID = "123456789012"


class SandboxBuildError(RuntimeError):
    """The image could not be built; the message says why and what to do."""


@dataclass(frozen=True)
class BuiltImage:
    image_arn: str
    image_name: str
    image_version: str
    state: str
    artifact_uri: str
    artifact_sha256: str
    build_role_arn: str
    execution_role_arn: str
    log_group: str


def _config_strings(config: dict) -> dict[str, str]:
    """A stack file's ``config:`` map as the engine hands it to a program: strings or JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def load_settings(config_file: Path | None = None) -> Settings:
    """The local environment's settings (``Pulumi.local.yaml``), validated like ``pulumi up``."""
    import yaml

    path = config_file or REPO / "Pulumi.local.yaml"
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    settings = parse_settings(_config_strings(config), project=PROJECT, stack=STACK)
    if settings.environment != "local":
        raise SandboxBuildError(
            f"{path.name} sets lambda-microvms:environment to {settings.environment!r}; "
            "the sandbox only runs the 'local' environment"
        )
    return settings


def _client(service: str, endpoint: str, region: str):
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint,
        config=Config(retries={"mode": "standard", "max_attempts": 5}),
    )


def _ensure_bucket(s3, bucket: str, region: str) -> None:
    kwargs = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}
    }  # fmt: skip
    try:
        s3.create_bucket(Bucket=bucket, **kwargs)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _ensure_log_group(logs, name: str, retention_days: int, tags: dict[str, str]) -> None:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=name, tags=tags)
    logs.put_retention_policy(logGroupName=name, retentionInDays=retention_days)


def _ensure_role(iam, name: str, trust: dict, policy: dict, tags: dict[str, str]) -> str:
    try:
        arn = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=to_json(trust),
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=to_json(trust))
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName=f"{name}-policy", PolicyDocument=to_json(policy))
    return arn


def build_image(
    settings: Settings,
    *,
    moto_url: str,
    emulator_url: str,
    progress: Callable[[str], None] = print,
) -> BuiltImage:
    """Steps 2-4 of the module docstring; raises :class:`SandboxBuildError` on failure."""
    region = settings.region
    account = settings.account_id or DEFAULT_ACCOUNT_ID
    tags = settings.common_tags
    image_name = settings.image_name

    bucket = artifact_bucket_name(settings.project, settings.stack, account, region)
    bundle = build_zip(REPO / "image")
    key = artifact_key(image_name, bundle.sha256)
    s3 = _client("s3", moto_url, region)
    _ensure_bucket(s3, bucket, region)
    s3.put_object(Bucket=bucket, Key=key, Body=bundle.data, ContentType="application/zip")
    uri = f"s3://{bucket}/{key}"
    progress(f"artifact   {uri} ({bundle.size} bytes, sha256 {bundle.sha256[:12]}…)")

    group = log_group_name(image_name)
    _ensure_log_group(_client("logs", moto_url, region), group, settings.log_retention_days, tags)
    iam = _client("iam", moto_url, region)
    trust = lambda_trust_policy(account)
    build_arn = _ensure_role(
        iam,
        f"{image_name}-{STACK}-build",
        trust,
        build_role_policy(
            bucket_name=bucket,
            image_name=image_name,
            region=region,
            account_id=account,
            ecr_repository_arns=settings.ecr_repository_arns,
            kms_key_arn=settings.artifact_bucket.kms_key_arn,
        ),
        role_tags("build", tags),
    )
    execution_arn = _ensure_role(
        iam,
        f"{image_name}-{STACK}-execution",
        trust,
        execution_role_policy(
            image_name=image_name,
            region=region,
            account_id=account,
            bedrock_model_arns=settings.bedrock_model_arns,
            extra_statements=settings.execution_role_extra_statements,
        ),
        role_tags("execution", tags, log_group_arn(region, account, group)),
    )
    progress(f"roles      {build_arn}, {execution_arn}")

    props = image_props(
        "image",
        MicrovmImageArgs(
            name_prefix=image_name,
            artifact_uri=uri,
            build_role_arn=build_arn,
            region=region,
            memory_mib=settings.memory_mib,
            architecture=settings.architecture,
            base_image_version=settings.base_image_version,
            hooks=settings.hooks,
            environment_variables={"AWS_REGION": region, **settings.environment_variables},
            logging={"cloudWatch": {"logGroup": group}},
            tags=tags,
            endpoint_url=emulator_url,
            keep_versions=settings.keep_versions,
            build_timeout_minutes=settings.build_timeout_minutes,
            # The sandbox is torn down with its MicroVMs still in it.
            terminate_microvms_on_delete=True,
        ),
    )
    # What MicrovmImageResource adds for a program resource named "image-image".
    props["nameSeed"] = f"{PROJECT}/{STACK}/image-image"
    provider = MicrovmImageProvider()
    checked = provider.check({}, props)
    if checked.failures:
        reasons = "; ".join(f"{f.property}: {f.reason}" for f in checked.failures)
        raise SandboxBuildError(f"the image inputs were refused by the provider's check: {reasons}")
    progress(
        f"image      CreateMicrovmImage {image_name}-… on {emulator_url}; waiting for the build"
    )
    try:
        created = provider.create(checked.inputs)
    except MicrovmImageError as exc:
        raise SandboxBuildError(f"the image build failed: {exc}") from None
    outs = created.outs
    return BuiltImage(
        image_arn=created.id,
        image_name=outs["name"],
        image_version=outs["imageVersion"],
        state=outs["state"],
        artifact_uri=uri,
        artifact_sha256=bundle.sha256,
        build_role_arn=build_arn,
        execution_role_arn=execution_arn,
        log_group=group,
    )
