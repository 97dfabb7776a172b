"""``ArtifactBucket``: the hardened S3 bucket holding MicroVM image artifacts (zips).

The bucket policy document is a pure function (``tls_only_bucket_policy``) tested without mocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.protection import protection
from components.roles import POLICY_VERSION, bucket_arn, to_json

#: Requests below this TLS version are denied (S3 still accepts TLS 1.0/1.1 otherwise).
MIN_TLS_VERSION = "1.2"
#: Incomplete multipart uploads are invisible but billed; abort them after this many days.
ABORT_INCOMPLETE_UPLOAD_DAYS = 7


def tls_only_bucket_policy(
    bucket_name: str, partition: str = "aws", min_tls_version: str = MIN_TLS_VERSION
) -> dict[str, Any]:
    """Deny every request made without TLS, or with TLS older than ``min_tls_version``."""
    arn = bucket_arn(bucket_name, partition)
    resources = [arn, f"{arn}/*"]
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOutdatedTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"NumericLessThan": {"s3:TlsVersion": min_tls_version}},
            },
        ],
    }


@dataclass
class ArtifactBucketArgs:
    """Inputs of ``ArtifactBucket``."""

    bucket_name: str
    """Exact bucket name (``components.naming.artifact_bucket_name``: valid and globally unique)."""
    force_destroy: bool = False
    """Let ``pulumi destroy`` delete a non-empty bucket (dev/local yes, prod no)."""
    noncurrent_version_expiration_days: int = 30
    """Days after which overwritten/deleted object versions are expired."""
    kms_key_arn: pulumi.Input[str] | None = None
    """SSE-KMS with this key; None = SSE-S3 (AES256)."""
    region: str | None = None
    """Region of the bucket (must be the image's); None = the provider's."""
    partition: str = "aws"
    """AWS partition, for the ARNs in the bucket policy."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the bucket (project, stack, environment, …)."""
    protect: bool = False
    """Protect the bucket (``pulumi destroy`` refuses) and retain it if it leaves the program."""


class ArtifactBucket(pulumi.ComponentResource):
    """Versioned, encrypted, private, TLS-only bucket whose old object versions expire.

    Children (all ``parent=self``): ``-bucket``, ``-versioning``, ``-encryption``,
    ``-public-access-block``, ``-ownership``, ``-tls-only-policy``, ``-lifecycle``.
    Outputs: ``bucket_name``, ``arn``.
    """

    def __init__(
        self, name: str, args: ArtifactBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-microvms:storage:ArtifactBucket", name, None, opts)
        self._name = name
        self._args = args

        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            force_destroy=args.force_destroy,
            region=args.region,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(self._child(), protection(args.protect)),
        )
        self.versioning = self._create_versioning()
        self.encryption = self._create_encryption()
        self.public_access_block = self._create_public_access_block()
        self.ownership = self._create_ownership()
        self.policy = self._create_tls_only_policy()
        self.lifecycle = self._create_lifecycle()

        self.bucket_name: pulumi.Output[str] = self.bucket.bucket
        self.arn: pulumi.Output[str] = self.bucket.arn
        self.register_outputs({"bucketName": self.bucket_name, "arn": self.arn})

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _create_versioning(self) -> aws.s3.BucketVersioning:
        # Versioning keeps an overwritten or deleted artifact recoverable; content-addressed
        # keys mean overwrites should not happen, so this mostly guards against deletes.
        return aws.s3.BucketVersioning(
            f"{self._name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"},
            region=self._args.region,
            opts=self._child(),
        )

    def _create_encryption(self) -> aws.s3.BucketServerSideEncryptionConfiguration:
        default: aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgsDict
        if self._args.kms_key_arn is not None:
            default = {"sse_algorithm": "aws:kms", "kms_master_key_id": self._args.kms_key_arn}
            # S3 Bucket Keys cut KMS requests (and cost) by caching a bucket-level data key.
            bucket_key_enabled = True
        else:
            default = {"sse_algorithm": "AES256"}
            bucket_key_enabled = False
        return aws.s3.BucketServerSideEncryptionConfiguration(
            f"{self._name}-encryption",
            bucket=self.bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": default,
                    "bucket_key_enabled": bucket_key_enabled,
                }
            ],
            region=self._args.region,
            opts=self._child(),
        )

    def _create_public_access_block(self) -> aws.s3.BucketPublicAccessBlock:
        return aws.s3.BucketPublicAccessBlock(
            f"{self._name}-public-access-block",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            region=self._args.region,
            opts=self._child(),
        )

    def _create_ownership(self) -> aws.s3.BucketOwnershipControls:
        # BucketOwnerEnforced disables ACLs altogether: access is decided by policies only.
        return aws.s3.BucketOwnershipControls(
            f"{self._name}-ownership",
            bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            region=self._args.region,
            opts=self._child(),
        )

    def _create_tls_only_policy(self) -> aws.s3.BucketPolicy:
        # Built from the plain name (not the bucket's output), so the document is known at preview.
        policy = to_json(tls_only_bucket_policy(self._args.bucket_name, self._args.partition))
        # S3 rejects concurrent configuration calls on one bucket with OperationAborted (409);
        # ordering the policy after the public access block avoids that race.
        return aws.s3.BucketPolicy(
            f"{self._name}-tls-only-policy",
            bucket=self.bucket.id,
            policy=policy,
            region=self._args.region,
            opts=self._child(depends_on=[self.public_access_block]),
        )

    def _create_lifecycle(self) -> aws.s3.BucketLifecycleConfiguration:
        # A lifecycle rule on noncurrent versions needs versioning in place first.
        return aws.s3.BucketLifecycleConfiguration(
            f"{self._name}-lifecycle",
            bucket=self.bucket.id,
            rules=[
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": self._args.noncurrent_version_expiration_days
                    },
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABORT_INCOMPLETE_UPLOAD_DAYS
                    },
                }
            ],
            region=self._args.region,
            opts=self._child(depends_on=[self.versioning]),
        )
