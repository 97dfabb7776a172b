"""``aws:s3/bucket:Bucket`` against S3 (moto) with boto3."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from tests.engine.doubles.aws_provider import wire
from tests.engine.doubles.aws_provider.base import ResourceType, error_code, expect
from tests.engine.doubles.aws_provider.config import Session

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def tag_set(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def bucket_tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        response = s3.get_bucket_tagging(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in ("NoSuchTagSet", "NoSuchTagSetError"):
            return {}
        raise
    return {t["Key"]: t["Value"] for t in response.get("TagSet", [])}


def empty_bucket(s3: Any, bucket: str, key: str | None = None) -> int:
    """Delete every object version and delete marker (of ``key`` only, when given)."""
    deleted = 0
    paginator = s3.get_paginator("list_object_versions")
    params = {"Bucket": bucket, **({"Prefix": key} if key is not None else {})}
    for page in paginator.paginate(**params):
        entries = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            if key is None or v["Key"] == key
        ]
        for start in range(0, len(entries), 1000):
            batch = entries[start : start + 1000]
            response = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise RuntimeError(
                    f"deleting {len(errors)} object version(s) in S3 Bucket ({bucket}): "
                    f"{first.get('Code')}: {first.get('Message')} (key {first.get('Key')!r})"
                )
            deleted += len(batch)
    return deleted


class Bucket(ResourceType):
    token = "aws:s3/bucket:Bucket"
    inputs = frozenset({"bucket", "bucketPrefix", "forceDestroy", "region", "tags"})
    force_new = frozenset({"bucket", "bucketPrefix", "region"})
    name_property = "bucket"
    name_prefix_property = "bucketPrefix"
    name_max_length = 63
    name_lowercase = True
    taggable = True
    output_defaults = {"forceDestroy": False}

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = expect(inputs, "forceDestroy", bool, "a boolean")
        failures += expect(inputs, "tags", dict, "a map of strings")
        name = inputs.get("bucket")
        if isinstance(name, str) and not wire.is_unknown(name) and not _BUCKET_NAME.match(name):
            failures.append(
                ("bucket", f"{name!r}: 3-63 characters of lowercase letters, digits, '.' and '-'")
            )
        return failures

    def create(self, session: Session, inputs: dict[str, Any]) -> str:
        region = self.region(session, inputs)
        s3 = session.client("s3", region)
        name = inputs["bucket"]
        params: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**params)
        tags = self.all_tags(session, inputs)
        if tags:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_set(tags)})
        return name

    def read(self, session: Session, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        s3 = session.client("s3", self.region(session, inputs))
        try:
            s3.head_bucket(Bucket=id_)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return None
            raise
        region = s3.get_bucket_location(Bucket=id_).get("LocationConstraint") or "us-east-1"
        observed = {
            "bucket": id_,
            "arn": f"arn:aws:s3:::{id_}",
            "bucketDomainName": f"{id_}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{id_}.s3.{region}.amazonaws.com",
            "region": region,
        }
        observed.update(self.tag_outputs(session, inputs, bucket_tags(s3, id_)))
        return observed

    def update(
        self, session: Session, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> None:
        # forceDestroy lives in state only; tags are the one thing S3 changes in place.
        s3 = session.client("s3", self.region(session, news))
        tags = self.all_tags(session, news)
        if tags != self.all_tags(session, olds):
            if tags:
                s3.put_bucket_tagging(Bucket=id_, Tagging={"TagSet": tag_set(tags)})
            else:
                s3.delete_bucket_tagging(Bucket=id_)

    def delete(self, session: Session, id_: str, state: dict[str, Any]) -> None:
        s3 = session.client("s3", self.region(session, state))
        if state.get("forceDestroy"):
            empty_bucket(s3, id_)
        try:
            s3.delete_bucket(Bucket=id_)
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                return
            if error_code(exc) == "BucketNotEmpty":
                raise RuntimeError(
                    f"deleting S3 Bucket ({id_}): {exc}; set forceDestroy to delete a bucket "
                    "that still holds objects"
                ) from None
            raise
