"""The artifact bucket holds the code every image is built from: lock it down."""

from __future__ import annotations

from typing import Any

from graph import (
    BUCKET_TYPES,
    IMAGE_TYPES,
    Graph,
    ReportViolation,
    Res,
    artifact_buckets,
    config_of,
    get_path,
    guarded,
    unverifiable,
)
from iam_docs import (
    DocumentError,
    is_unknown,
    parse_document,
    principal_admits_service,
    statement_grants,
)
from policy_metadata import meta
from pulumi_policy import EnforcementLevel, StackValidationArgs, StackValidationPolicy

PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION_TYPES = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONING_TYPES = (
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketVersioningV2:BucketVersioningV2",
)
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")


def _bucket_name(bucket: Res) -> Any:
    name = bucket.get("bucket")
    return name if name is not None else bucket.get("id")


def attached_to(graph: Graph, bucket: Res, *types: str) -> list[Res]:
    """Sub-resources of ``types`` whose ``bucket`` names the bucket or depends on it."""
    name = _bucket_name(bucket)
    out = []
    for res in graph.of_type(*types):
        ref = res.get("bucket")
        known = isinstance(name, str) and not is_unknown(name)
        if (known and ref == name) or bucket.urn in res.deps("bucket"):
            out.append(res)
    return out


def _sse_ok(rules: Any) -> bool | None:
    rules = rules if isinstance(rules, list) else [rules]
    for rule in rules:
        algorithm = get_path(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        if is_unknown(algorithm):
            return None
        if algorithm in SSE_ALGORITHMS:
            return True
    return False


def tls_only(document: Any) -> bool | None:
    """Does the bucket policy deny every request with aws:SecureTransport = false?"""
    if is_unknown(document):
        return None
    try:
        statements = parse_document(document)
    except DocumentError:
        return False
    for st in statements:
        if st.effect != "Deny" or not principal_admits_service(st.principal, "*"):
            continue
        if not statement_grants(st, "s3:GetObject"):
            continue
        for cond in st.conditions:
            if (
                cond.operator == "Bool"
                and cond.key_lower == "aws:securetransport"
                and any(str(v).lower() == "false" for v in cond.values)
            ):
                return True
    return False


def evaluate(graph: Graph) -> list[tuple[str, str | None]]:
    buckets: dict[str, Res] = {}
    for image in graph.of_type(*IMAGE_TYPES):
        found, _ = artifact_buckets(graph, image)
        buckets.update({b.urn: b for b in found})
    if not graph.of_type(*IMAGE_TYPES):
        buckets = {b.urn: b for b in graph.of_type(*BUCKET_TYPES)}
    out: list[tuple[str, str | None]] = []
    for bucket in buckets.values():
        where = f"artifact bucket {bucket.label()}"
        missing = []
        # Public access block: all four flags.
        blocks = attached_to(graph, bucket, PUBLIC_ACCESS_BLOCK)
        flags = [get_path(b.props, f) for b in blocks for f in BLOCK_FLAGS]
        if any(is_unknown(f) for f in flags):
            out.append((unverifiable(where, "BucketPublicAccessBlock flags"), bucket.urn))
        elif not any(all(b.get(f) is True for f in BLOCK_FLAGS) for b in blocks):
            missing.append("a BucketPublicAccessBlock with all four flags true")
        # Default encryption.
        verdicts = [_sse_ok(e.get("rules")) for e in attached_to(graph, bucket, *ENCRYPTION_TYPES)]
        own = bucket.get("serverSideEncryptionConfiguration", "rule")
        if own is not None:
            verdicts.append(_sse_ok(own))
        if None in verdicts and True not in verdicts:
            out.append((unverifiable(where, "sseAlgorithm"), bucket.urn))
        elif True not in verdicts:
            missing.append("default server-side encryption (AES256 or aws:kms)")
        # Versioning.
        states = [
            get_path(v.props, "versioningConfiguration", "status")
            for v in attached_to(graph, bucket, *VERSIONING_TYPES)
        ]
        own_versioning = bucket.get("versioning", "enabled")
        if "Enabled" not in states and own_versioning is not True:
            if any(is_unknown(s) for s in states) or is_unknown(own_versioning):
                out.append((unverifiable(where, "versioningConfiguration.status"), bucket.urn))
            else:
                missing.append("versioning Enabled")
        # TLS-only bucket policy.
        policies = [tls_only(p.get("policy")) for p in attached_to(graph, bucket, BUCKET_POLICY)]
        if True not in policies:
            if None in policies:
                out.append(
                    (
                        unverifiable(
                            where,
                            "BucketPolicy.policy",
                            "build the policy from the bucket name (arn:aws:s3:::<name>) so it is known",
                        ),
                        bucket.urn,
                    )
                )
            else:
                missing.append("a bucket policy denying requests with aws:SecureTransport = false")
        if missing:
            out.append(
                (
                    f"{where} lacks {'; '.join(missing)}. Fix: add the missing resources "
                    "(components.ArtifactBucket creates all of them).",
                    bucket.urn,
                )
            )
    return out


@guarded("artifact-bucket-hardening")
def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config_of(args)
    for message, urn in evaluate(Graph.from_args(args)):
        if urn:
            report_violation(message, urn)
        else:
            report_violation(message)


artifact_bucket_hardening = StackValidationPolicy(
    name="artifact-bucket-hardening",
    description=(
        "The MicroVM artifact bucket blocks public access, encrypts by default, is versioned and "
        "denies non-TLS requests."
    ),
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate,
    **meta("artifact-bucket-hardening"),
)
