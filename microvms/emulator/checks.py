"""Optional cross-checks against S3 and IAM endpoints (e.g. a moto server) during a build.

With ``s3_endpoint`` set, a build reads its ``codeArtifact`` object and fails with the documented
``stateReason`` codes (docs/service-facts.md §13): ``S3_NO_SUCH_BUCKET``, ``S3_NO_SUCH_KEY``, ``S3_ACCESS_DENIED``,
``S3_CROSS_REGION_ACCESS_DENIED``, ``S3_INVALID_OBJECT``, ``ARCHIVE_INVALID``,
``ARCHIVE_DOCKERFILE_NOT_FOUND``. With ``iam_endpoint`` set, the build role must exist and trust
``lambda.amazonaws.com`` without an ``aws:SourceArn`` condition (docs/service-facts.md §12.2), or the build fails
with a reason containing ``unable to assume role``.
"""

from __future__ import annotations

import io
import json
import os
import threading
import zipfile
from typing import Any
from urllib.parse import unquote

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=30
)
MAX_ARTIFACT_BYTES = 512 * 1024 * 1024


_clients: dict[tuple[str, str, str, str | None], Any] = {}
_clients_lock = threading.Lock()


# Credentials for the local S3/IAM stand-in when the environment names none: moto and similar
# emulators accept any key, and a build must not fail (or stall on instance-metadata lookups) just
# because the emulator was started from a shell without AWS variables.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _credentials() -> dict[str, str | None]:
    """Explicit keys from the environment if both are set, else :data:`LOCAL_CREDENTIALS`."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        token = os.environ.get("AWS_SESSION_TOKEN")
        return {
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "aws_session_token": token,
        }
    return dict(LOCAL_CREDENTIALS)


def _client(service: str, endpoint: str, region: str) -> Any:
    """Cached clients (creating one costs far more than a build check; clients are thread-safe).

    Plain botocore clients, typed ``Any``: the dev group carries no S3 or IAM stubs.
    """
    credentials = _credentials()
    key = (service, endpoint, region, credentials["aws_access_key_id"])
    with _clients_lock:
        if key not in _clients:
            # Explicit keys: no credential-chain (shared files, instance metadata) lookups.
            _clients[key] = botocore.session.Session().create_client(
                service,
                endpoint_url=endpoint,
                region_name=region,
                config=_CONFIG,
                aws_access_key_id=credentials["aws_access_key_id"],
                aws_secret_access_key=credentials["aws_secret_access_key"],
                aws_session_token=credentials.get("aws_session_token"),
            )
        return _clients[key]


def check_artifact(endpoint: str, region: str, artifact: dict | None) -> str | None:
    uri = (artifact or {}).get("uri") or ""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        return "S3_INVALID_OBJECT"
    bucket, key = uri[5:].split("/", 1)
    s3 = _client("s3", endpoint, region)
    try:
        location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            return "S3_NO_SUCH_BUCKET"
        if code in ("AccessDenied", "403"):
            return "S3_ACCESS_DENIED"
        return "S3_INVALID_OBJECT"
    if location != region:
        return "S3_CROSS_REGION_ACCESS_DENIED"
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return "S3_NO_SUCH_KEY"
        if code in ("AccessDenied", "403"):
            return "S3_ACCESS_DENIED"
        return "S3_INVALID_OBJECT"
    if head.get("ContentLength", 0) > MAX_ARTIFACT_BYTES:
        return "S3_INVALID_OBJECT"
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return "ARCHIVE_INVALID"
    if "Dockerfile" not in names:
        return "ARCHIVE_DOCKERFILE_NOT_FOUND"
    return None


def _allows_lambda(statement: dict) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    if not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
        return False
    principal = statement.get("Principal", {})
    if principal == "*":
        services = ["*"]
    else:
        services = principal.get("Service", []) if isinstance(principal, dict) else []
        services = [services] if isinstance(services, str) else services
    if not any(s in ("lambda.amazonaws.com", "*") for s in services):
        return False
    # The service presents no aws:SourceArn when it assumes the role (docs/service-facts.md §12.2).
    for operator in (statement.get("Condition") or {}).values():
        if any(key.lower() == "aws:sourcearn" for key in operator):
            return False
    return True


def check_build_role(endpoint: str, role_arn: str) -> str | None:
    failure = (
        f"Failed to assume build role {role_arn}: unable to assume role. Make sure the role "
        "exists and its trust policy allows lambda.amazonaws.com to call sts:AssumeRole."
    )
    name = role_arn.rsplit("/", 1)[-1]
    iam = _client("iam", endpoint, "us-east-1")
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError:
        return failure
    document = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(document, str):
        document = json.loads(unquote(document))
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    return None if any(_allows_lambda(s) for s in statements) else failure
