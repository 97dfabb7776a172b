"""``aws:s3/bucketObjectv2:BucketObjectv2`` against S3 (moto) with boto3.

``source`` is a Pulumi asset; a relative ``path`` is read relative to the plugin's working
directory, which the engine sets to the program directory (``plugin.Context.Pwd``).
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

from botocore.exceptions import ClientError

from tests.engine.doubles.aws_provider import wire
from tests.engine.doubles.aws_provider.base import ResourceType, error_code, expect
from tests.engine.doubles.aws_provider.config import Session
from tests.engine.doubles.aws_provider.s3_bucket import empty_bucket

CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
#: Properties whose change means uploading the object again.
_CONTENT = ("source", "content", "contentBase64", "contentType", "checksumAlgorithm")


class BucketObjectv2(ResourceType):
    token = "aws:s3/bucketObjectv2:BucketObjectv2"
    inputs = frozenset(
        {
            "bucket",
            "key",
            "source",
            "content",
            "contentBase64",
            "contentType",
            "checksumAlgorithm",
            "forceDestroy",
            "region",
            "tags",
        }
    )
    force_new = frozenset({"bucket", "key", "region"})
    taggable = True
    output_defaults = {"forceDestroy": False}

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = [(k, "is required") for k in ("bucket", "key") if inputs.get(k) in (None, "")]
        bodies = [k for k in ("source", "content", "contentBase64") if inputs.get(k) is not None]
        if len(bodies) > 1:
            failures.append((bodies[1], f"conflicts with {bodies[0]}"))
        source = inputs.get("source")
        if source is not None and not wire.is_unknown(source) and not wire.is_asset(source):
            failures.append(("source", "expected an asset (FileAsset / StringAsset)"))
        algorithm = inputs.get("checksumAlgorithm")
        if (
            algorithm is not None
            and not wire.is_unknown(algorithm)
            and algorithm not in CHECKSUM_ALGORITHMS
        ):
            failures.append(
                ("checksumAlgorithm", f"{algorithm!r}; allowed: {', '.join(CHECKSUM_ALGORITHMS)}")
            )
        failures += expect(inputs, "tags", dict, "a map of strings")
        return failures

    @staticmethod
    def _locate(id_: str, inputs: dict[str, Any]) -> tuple[str, str]:
        if inputs.get("bucket") and inputs.get("key"):
            return inputs["bucket"], inputs["key"]
        # Import form ``bucket/key`` (the state id is the key alone, as upstream).
        bucket, _, key = id_.partition("/")
        return bucket, key

    def _body(self, inputs: dict[str, Any]) -> bytes:
        if inputs.get("source") is not None:
            return wire.asset_bytes(inputs["source"])
        if inputs.get("contentBase64") is not None:
            return base64.b64decode(inputs["contentBase64"])
        return str(inputs.get("content") or "").encode()

    def _upload(self, session: Session, inputs: dict[str, Any]) -> None:
        s3 = session.client("s3", self.region(session, inputs))
        params: dict[str, Any] = {
            "Bucket": inputs["bucket"],
            "Key": inputs["key"],
            "Body": self._body(inputs),
            "ContentType": inputs.get("contentType") or "application/octet-stream",
        }
        if inputs.get("checksumAlgorithm"):
            params["ChecksumAlgorithm"] = inputs["checksumAlgorithm"]
        tags = self.all_tags(session, inputs)
        if tags:
            params["Tagging"] = urllib.parse.urlencode(tags)
        s3.put_object(**params)

    def create(self, session: Session, inputs: dict[str, Any]) -> str:
        self._upload(session, inputs)
        return inputs["key"]

    def read(self, session: Session, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        bucket, key = self._locate(id_, inputs)
        s3 = session.client("s3", self.region(session, inputs))
        try:
            head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
                return None
            raise
        tags = {
            t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        }
        observed = {
            "bucket": bucket,
            "key": key,
            "arn": f"arn:aws:s3:::{bucket}/{key}",
            "etag": head.get("ETag", "").strip('"'),
            "versionId": head.get("VersionId") or "",
            "contentType": head.get("ContentType", ""),
            "storageClass": head.get("StorageClass") or "STANDARD",
            "serverSideEncryption": head.get("ServerSideEncryption") or "",
            "bucketKeyEnabled": bool(head.get("BucketKeyEnabled", False)),
        }
        for algorithm in CHECKSUM_ALGORITHMS:
            field = "Checksum" + algorithm
            observed["checksum" + algorithm.capitalize()] = head.get(field) or ""
        observed.update(self.tag_outputs(session, inputs, tags))
        return observed

    def update(
        self, session: Session, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> None:
        if any(wire.normalize(olds.get(k)) != wire.normalize(news.get(k)) for k in _CONTENT):
            self._upload(session, news)  # a new version; tags travel with it
            return
        tags = self.all_tags(session, news)
        if tags != self.all_tags(session, olds):
            s3 = session.client("s3", self.region(session, news))
            s3.put_object_tagging(
                Bucket=news["bucket"],
                Key=news["key"],
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())]},
            )

    def delete(self, session: Session, id_: str, state: dict[str, Any]) -> None:
        # Upstream deletes every version of the key, not just the current one.
        bucket, key = self._locate(id_, state)
        s3 = session.client("s3", self.region(session, state))
        try:
            if not empty_bucket(s3, bucket, key):
                s3.delete_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) not in ("NoSuchBucket", "NoSuchKey", "404"):
                raise
