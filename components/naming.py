"""Pure naming helpers: S3 bucket names, partitions and common tags.

No Pulumi imports: everything here is a plain function tested without mocks.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

#: S3 general-purpose bucket names are 3..63 characters.
BUCKET_NAME_MAX = 63
BUCKET_NAME_MIN = 3

# Prefixes and suffixes S3 reserves for other features (access points, S3 Express, Object
# Lambda, multi-region access points, S3 Tables); a bucket named like this is rejected.
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

_VALID_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_HASH_LEN = 8


def is_valid_bucket_name(name: str) -> bool:
    """True when ``name`` satisfies the S3 general-purpose bucket naming rules."""
    if not isinstance(name, str) or not _VALID_BUCKET.match(name):
        return False
    if ".." in name or ".-" in name or "-." in name:
        return False
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return False
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return True
    return False


def validate_account_id(account_id: str) -> str:
    """Return ``account_id`` if it is a 12-digit AWS account id, else raise ``ValueError``."""
    if not isinstance(account_id, str) or not _ACCOUNT_ID.match(account_id):
        raise ValueError(
            f"account_id: {account_id!r} is not an AWS account id (allowed: exactly 12 digits)"
        )
    return account_id


def _slug(text: str) -> str:
    """Lowercase, keep ``[a-z0-9]``, turn every other run of characters into one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def artifact_bucket_name(project: str, stack: str, account_id: str, region: str) -> str:
    """Globally unique, valid S3 bucket name for one stack's image artifacts.

    Shape: ``<project>-<stack>-artifacts-<account>-<hash8>``, where the readable part is
    slugged and truncated so the whole name stays within 63 characters. The hash covers the
    *unsanitised* project, stack, account and region, so two stacks whose slugs collide after
    truncation still get different names, and moving a stack to another region makes a new
    name (a create-before-delete replacement would otherwise collide with the old bucket,
    because bucket names are global).
    """
    validate_account_id(account_id)
    if not region:
        raise ValueError("region: must be a non-empty AWS region name")
    digest = hashlib.sha256(f"{project}\0{stack}\0{account_id}\0{region}".encode()).hexdigest()
    suffix = f"-{account_id}-{digest[:_HASH_LEN]}"
    readable = _slug(f"{project}-{stack}-artifacts") or "artifacts"
    readable = readable[: BUCKET_NAME_MAX - len(suffix)].rstrip("-")
    if readable.startswith(_RESERVED_PREFIXES) or not readable:
        readable = ("b-" + readable)[: BUCKET_NAME_MAX - len(suffix)].rstrip("-")
    name = readable + suffix
    if not is_valid_bucket_name(
        name
    ):  # defensive: the construction above should make this impossible
        raise ValueError(f"bucket name {name!r} derived from project/stack is not valid for S3")
    return name


def partition_for_region(region: str) -> str:
    """AWS partition of ``region`` (``aws``, ``aws-cn`` or ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
