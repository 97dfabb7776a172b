"""The bucket configuration resources (one S3 sub-resource each; their id is the bucket name)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from tests.engine.doubles.aws_provider import wire
from tests.engine.doubles.aws_provider.base import (
    ResourceType,
    as_int,
    equivalent,
    error_code,
    expect,
    json_equivalent,
    require,
)
from tests.engine.doubles.aws_provider.config import Session


class BucketConfig(ResourceType):
    """Shared shape: ``bucket`` + ``region`` (both ForceNew), id = bucket, put/get/delete."""

    force_new = frozenset({"bucket", "region"})
    #: Error codes meaning "this configuration is not set" on read.
    missing_codes: ClassVar[tuple[str, ...]] = ()

    def s3(self, session: Session, inputs: dict[str, Any]) -> Any:
        return session.client("s3", self.region(session, inputs))

    def create(self, session: Session, inputs: dict[str, Any]) -> str:
        self.put(self.s3(session, inputs), inputs["bucket"], inputs)
        return inputs["bucket"]

    def update(
        self, session: Session, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> None:
        self.put(self.s3(session, news), id_, news)

    def read(self, session: Session, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        try:
            observed = self.get(self.s3(session, inputs), id_, inputs)
        except ClientError as exc:
            if error_code(exc) in (*self.missing_codes, "NoSuchBucket", "404"):
                return None
            raise
        if observed is None:
            return None
        return {"bucket": id_, **observed}

    def delete(self, session: Session, id_: str, state: dict[str, Any]) -> None:
        try:
            self.remove(self.s3(session, state), id_, state)
        except ClientError as exc:
            if error_code(exc) not in (*self.missing_codes, "NoSuchBucket"):
                raise

    def put(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
        raise NotImplementedError

    def get(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        raise NotImplementedError

    def remove(self, s3: Any, bucket: str, state: dict[str, Any]) -> None:
        raise NotImplementedError


class BucketVersioning(BucketConfig):
    token = "aws:s3/bucketVersioning:BucketVersioning"
    inputs = frozenset({"bucket", "region", "versioningConfiguration"})
    STATUSES = ("Enabled", "Suspended", "Disabled")

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = require(inputs, "bucket", "versioningConfiguration")
        config = inputs.get("versioningConfiguration")
        if isinstance(config, dict):
            extra = set(config) - {"status"}
            if extra:
                failures.append(
                    (
                        f"versioningConfiguration.{sorted(extra)[0]}",
                        "the aws test double implements only versioningConfiguration.status",
                    )
                )
            status = config.get("status")
            if not wire.is_unknown(status) and status not in self.STATUSES:
                failures.append(
                    (
                        "versioningConfiguration.status",
                        f"{status!r}; allowed: Enabled, Suspended, Disabled",
                    )
                )
        return failures

    def put(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
        status = inputs["versioningConfiguration"]["status"]
        if status == "Disabled":
            return  # upstream: "Disabled" only records that versioning was never enabled
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})

    def get(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        if not status:
            wanted = (inputs.get("versioningConfiguration") or {}).get("status")
            if wanted != "Disabled":
                return None
            status = "Disabled"
        return {"versioningConfiguration": {"status": status}}

    def remove(self, s3: Any, bucket: str, state: dict[str, Any]) -> None:
        # Versioning cannot be turned off once enabled; upstream suspends it.
        if (state.get("versioningConfiguration") or {}).get("status") == "Enabled":
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


class BucketServerSideEncryptionConfiguration(BucketConfig):
    token = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    inputs = frozenset({"bucket", "region", "rules"})
    missing_codes = ("ServerSideEncryptionConfigurationNotFoundError",)

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = require(inputs, "bucket", "rules")
        for index, rule in enumerate(inputs.get("rules") or []):
            if not isinstance(rule, dict):
                continue
            extra = set(rule) - {"applyServerSideEncryptionByDefault", "bucketKeyEnabled"}
            if extra:
                failures.append(
                    (f"rules[{index}].{sorted(extra)[0]}", "not implemented by the aws test double")
                )
            default = rule.get("applyServerSideEncryptionByDefault") or {}
            algorithm = default.get("sseAlgorithm") if isinstance(default, dict) else None
            if (
                algorithm
                and not wire.is_unknown(algorithm)
                and algorithm
                not in (
                    "AES256",
                    "aws:kms",
                    "aws:kms:dsse",
                )
            ):
                failures.append(
                    (
                        f"rules[{index}].applyServerSideEncryptionByDefault.sseAlgorithm",
                        f"{algorithm!r}; allowed: AES256, aws:kms, aws:kms:dsse",
                    )
                )
        return failures

    def put(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
        rules = []
        for rule in inputs["rules"]:
            default = rule.get("applyServerSideEncryptionByDefault") or {}
            aws_rule: dict[str, Any] = {"BucketKeyEnabled": bool(rule.get("bucketKeyEnabled"))}
            if default:
                aws_rule["ApplyServerSideEncryptionByDefault"] = {
                    "SSEAlgorithm": default["sseAlgorithm"],
                    **(
                        {"KMSMasterKeyID": default["kmsMasterKeyId"]}
                        if default.get("kmsMasterKeyId")
                        else {}
                    ),
                }
            rules.append(aws_rule)
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})

    def get(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        response = s3.get_bucket_encryption(Bucket=bucket)
        rules = []
        for rule in response["ServerSideEncryptionConfiguration"].get("Rules", []):
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            out: dict[str, Any] = {}
            if default:
                out["applyServerSideEncryptionByDefault"] = {
                    "sseAlgorithm": default["SSEAlgorithm"]
                }
                if default.get("KMSMasterKeyID"):
                    out["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] = default[
                        "KMSMasterKeyID"
                    ]
            out["bucketKeyEnabled"] = bool(rule.get("BucketKeyEnabled", False))
            rules.append(out)
        wanted = inputs.get("rules")
        return {"rules": wanted if wanted is not None and equivalent(wanted, rules) else rules}

    def remove(self, s3: Any, bucket: str, state: dict[str, Any]) -> None:
        s3.delete_bucket_encryption(Bucket=bucket)


class BucketPublicAccessBlock(BucketConfig):
    token = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    FLAGS = {
        "blockPublicAcls": "BlockPublicAcls",
        "blockPublicPolicy": "BlockPublicPolicy",
        "ignorePublicAcls": "IgnorePublicAcls",
        "restrictPublicBuckets": "RestrictPublicBuckets",
    }
    inputs = frozenset({"bucket", "region", *FLAGS})
    missing_codes = ("NoSuchPublicAccessBlockConfiguration",)
    output_defaults = dict.fromkeys(FLAGS, False)

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = require(inputs, "bucket")
        for flag in self.FLAGS:
            failures += expect(inputs, flag, bool, "a boolean")
        return failures

    def put(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
        s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                aws: bool(inputs.get(flag)) for flag, aws in self.FLAGS.items()
            },
        )

    def get(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        config = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        return {flag: bool(config.get(aws, False)) for flag, aws in self.FLAGS.items()}

    def remove(self, s3: Any, bucket: str, state: dict[str, Any]) -> None:
        s3.delete_public_access_block(Bucket=bucket)


class BucketOwnershipControls(BucketConfig):
    token = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
    inputs = frozenset({"bucket", "region", "rule"})
    missing_codes = ("OwnershipControlsNotFoundError",)
    OWNERSHIPS = ("BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter")

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = require(inputs, "bucket", "rule")
        rule = inputs.get("rule")
        if isinstance(rule, dict):
            if set(rule) - {"objectOwnership"}:
                failures.append(
                    ("rule", "the aws test double implements only rule.objectOwnership")
                )
            value = rule.get("objectOwnership")
            if not wire.is_unknown(value) and value not in self.OWNERSHIPS:
                failures.append(
                    ("rule.objectOwnership", f"{value!r}; allowed: {', '.join(self.OWNERSHIPS)}")
                )
        return failures

    def put(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
        s3.put_bucket_ownership_controls(
            Bucket=bucket,
            OwnershipControls={"Rules": [{"ObjectOwnership": inputs["rule"]["objectOwnership"]}]},
        )

    def get(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        return {"rule": {"objectOwnership": rules[0]["ObjectOwnership"]}} if rules else None

    def remove(self, s3: Any, bucket: str, state: dict[str, Any]) -> None:
        s3.delete_bucket_ownership_controls(Bucket=bucket)


class BucketPolicy(BucketConfig):
    token = "aws:s3/bucketPolicy:BucketPolicy"
    inputs = frozenset({"bucket", "region", "policy"})
    missing_codes = ("NoSuchBucketPolicy",)

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = require(inputs, "bucket", "policy")
        policy = inputs.get("policy")
        if isinstance(policy, str) and not wire.contains_unknown(policy):
            try:
                json.loads(policy)
            except json.JSONDecodeError as exc:
                failures.append(("policy", f"not a JSON document: {exc}"))
        return failures

    def put(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
        s3.put_bucket_policy(Bucket=bucket, Policy=inputs["policy"])

    def get(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        actual = s3.get_bucket_policy(Bucket=bucket)["Policy"]
        wanted = inputs.get("policy")
        # Upstream keeps the configured text while AWS holds an equivalent document.
        return {"policy": wanted if json_equivalent(wanted, actual) else actual}

    def remove(self, s3: Any, bucket: str, state: dict[str, Any]) -> None:
        s3.delete_bucket_policy(Bucket=bucket)


#: Lifecycle rule shape the double implements: camelCase → (AWS name, nested shape or scalar type).
_LIFECYCLE_RULE: dict[str, tuple[str, Any]] = {
    "id": ("ID", str),
    "status": ("Status", str),
    "prefix": ("Prefix", str),
    "filter": (
        "Filter",
        {
            "prefix": ("Prefix", str),
            "objectSizeGreaterThan": ("ObjectSizeGreaterThan", int),
            "objectSizeLessThan": ("ObjectSizeLessThan", int),
        },
    ),
    "expiration": (
        "Expiration",
        {
            "days": ("Days", int),
            "date": ("Date", str),
            "expiredObjectDeleteMarker": ("ExpiredObjectDeleteMarker", bool),
        },
    ),
    "noncurrentVersionExpiration": (
        "NoncurrentVersionExpiration",
        {
            "noncurrentDays": ("NoncurrentDays", int),
            "newerNoncurrentVersions": ("NewerNoncurrentVersions", int),
        },
    ),
    "abortIncompleteMultipartUpload": (
        "AbortIncompleteMultipartUpload",
        {"daysAfterInitiation": ("DaysAfterInitiation", int)},
    ),
}


def _shape_failures(value: Any, shape: dict[str, Any], path: str) -> list[tuple[str, str]]:
    failures = []
    if not isinstance(value, dict) or wire.contains_unknown(value):
        return failures
    for key, item in value.items():
        if key not in shape:
            failures.append(
                (
                    f"{path}.{key}",
                    f"not implemented by the aws test double; implemented: {', '.join(shape)}",
                )
            )
        elif isinstance(shape[key][1], dict):
            failures += _shape_failures(item, shape[key][1], f"{path}.{key}")
    return failures


def _to_aws(value: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        aws, kind = shape[key]
        if isinstance(kind, dict):
            result[aws] = _to_aws(item, kind)
        elif kind is int:
            result[aws] = as_int(item)
        else:
            result[aws] = kind(item)
    return result


def _from_aws(value: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, (aws, kind) in shape.items():
        if aws not in value:
            continue
        item = value[aws]
        if isinstance(kind, dict):
            result[key] = _from_aws(item, kind)
        elif item in ("", None):
            continue
        else:
            result[key] = item.isoformat() if hasattr(item, "isoformat") else item
    return result


class BucketLifecycleConfiguration(BucketConfig):
    token = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    inputs = frozenset({"bucket", "region", "rules"})
    missing_codes = ("NoSuchLifecycleConfiguration",)

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = require(inputs, "bucket", "rules")
        for index, rule in enumerate(inputs.get("rules") or []):
            failures += _shape_failures(rule, _LIFECYCLE_RULE, f"rules[{index}]")
            if isinstance(rule, dict):
                failures += [
                    (f"rules[{index}].{k}", "is required")
                    for k in ("id", "status")
                    if k not in rule
                ]
                status = rule.get("status")
                if (
                    status is not None
                    and not wire.is_unknown(status)
                    and status
                    not in (
                        "Enabled",
                        "Disabled",
                    )
                ):
                    failures.append(
                        (f"rules[{index}].status", f"{status!r}; allowed: Enabled, Disabled")
                    )
        return failures

    def put(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> None:
        rules = [_to_aws(rule, _LIFECYCLE_RULE) for rule in inputs["rules"]]
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules}
        )

    def get(self, s3: Any, bucket: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        response = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
        rules = [_from_aws(rule, _LIFECYCLE_RULE) for rule in response.get("Rules", [])]
        wanted = inputs.get("rules")
        if wanted is not None and equivalent(wanted, rules):
            rules = wanted
        return {"rules": rules}

    def remove(self, s3: Any, bucket: str, state: dict[str, Any]) -> None:
        s3.delete_bucket_lifecycle(Bucket=bucket)
