"""The resource types and invokes the double implements — exactly what the program uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.engine.doubles.aws_provider import wire
from tests.engine.doubles.aws_provider.base import NotImplementedByDouble, ResourceType
from tests.engine.doubles.aws_provider.config import Session
from tests.engine.doubles.aws_provider.iam import Role, RolePolicy, RolePolicyAttachment
from tests.engine.doubles.aws_provider.logs import LogGroup
from tests.engine.doubles.aws_provider.s3_bucket import Bucket
from tests.engine.doubles.aws_provider.s3_bucket_config import (
    BucketLifecycleConfiguration,
    BucketOwnershipControls,
    BucketPolicy,
    BucketPublicAccessBlock,
    BucketServerSideEncryptionConfiguration,
    BucketVersioning,
)
from tests.engine.doubles.aws_provider.s3_object import BucketObjectv2

RESOURCE_TYPES: dict[str, ResourceType] = {
    cls.token: cls()
    for cls in (
        Bucket,
        BucketVersioning,
        BucketServerSideEncryptionConfiguration,
        BucketPublicAccessBlock,
        BucketOwnershipControls,
        BucketPolicy,
        BucketLifecycleConfiguration,
        BucketObjectv2,
        Role,
        RolePolicy,
        RolePolicyAttachment,
        LogGroup,
    )
}


def resource_type(token: str) -> ResourceType:
    try:
        return RESOURCE_TYPES[token]
    except KeyError:
        raise NotImplementedByDouble(
            f"the aws test double does not implement resource type {token}; "
            f"implemented: {', '.join(sorted(RESOURCE_TYPES))}"
        ) from None


def get_caller_identity(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    """``aws.get_caller_identity()``: STS ``GetCallerIdentity`` against the configured endpoint."""
    unknown = sorted(set(args) - {"id"})
    if unknown:
        raise NotImplementedByDouble(
            f"aws:index/getCallerIdentity:getCallerIdentity: unknown argument {unknown[0]!r}"
        )
    identity = session.caller_identity()
    return {
        "accountId": identity["Account"],
        "arn": identity["Arn"],
        "id": identity["Account"],
        "userId": identity["UserId"],
    }


INVOKES: dict[str, Callable[[Session, dict[str, Any]], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": get_caller_identity,
}


def invoke(session: Session, token: str, args: dict[str, Any]) -> dict[str, Any]:
    function = INVOKES.get(token)
    if function is None:
        raise NotImplementedByDouble(
            f"the aws test double does not implement invoke {token}; "
            f"implemented: {', '.join(sorted(INVOKES))}"
        )
    return function(session, wire.unwrap(args))
