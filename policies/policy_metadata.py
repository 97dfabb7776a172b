"""Per-policy metadata the SDK reports (pulumi-policy 1.21): severity, tags, remediation, docs link.

Kept in one table so a reviewer sees every policy's severity side by side; each policy module
splats :func:`meta` into its constructor.
"""

from __future__ import annotations

import os
from typing import Any

from pulumi_policy import Severity

#: Where docs/policies.md is published; each policy links to its own section. Override with
#: ``MICROVMS_POLICY_DOCS_URL`` (e.g. the repository's web URL of docs/policies.md).
DOCS_URL_ENV = "MICROVMS_POLICY_DOCS_URL"
DEFAULT_DOCS_URL = "docs/policies.md"

POLICY_METADATA: dict[str, tuple[Severity, list[str], str]] = {
    "lambda-trust-source-account": (
        Severity.HIGH,
        ["iam", "trust", "confused-deputy"],
        'Give every Allow statement that admits lambda.amazonaws.com "Condition": '
        '{"StringEquals": {"aws:SourceAccount": "<deploying account>"}}; replace IfExists, '
        "ForAllValues: and negated operators with StringEquals and remove foreign accounts.",
    ),
    "microvm-execution-role-read-only": (
        Severity.CRITICAL,
        ["iam", "least-privilege", "microvm"],
        "Keep only Read/List actions on the execution role (plus bedrock:InvokeModel* and log "
        "writes to its own log group); move writes to another role, or attach the service's own "
        "*ReadOnlyAccess managed policy.",
    ),
    "microvm-regions": (
        Severity.HIGH,
        ["regions", "microvm"],
        "Deploy to a region Lambda MicroVMs support that the environment allows "
        "(allowedRegionsByEnvironment), with the artifact bucket in the image's region.",
    ),
    "artifact-bucket-hardening": (
        Severity.MEDIUM,
        ["s3", "storage"],
        "Use components.ArtifactBucket, or add a public access block with all four flags, default "
        "encryption, versioning and a TLS-only bucket policy.",
    ),
    "build-role-scope": (
        Severity.MEDIUM,
        ["iam", "least-privilege", "build"],
        "Grant the build role s3:GetObject on the artifact prefix and logs actions on the image's "
        "own log group only.",
    ),
    "source-arn-microvm-image-condition": (
        Severity.MEDIUM,
        ["iam", "trust", "microvm"],
        "Drop the aws:SourceArn condition on the microvm-image ARN and keep aws:SourceAccount.",
    ),
    "image-capabilities-all": (
        Severity.MEDIUM,
        ["microvm", "image"],
        "Remove 'ALL' from additionalOsCapabilities; list only the capabilities the workload needs.",
    ),
    "image-env-plaintext-secrets": (
        Severity.HIGH,
        ["secrets", "microvm", "image"],
        "Move the value to secretEnvironmentVariables (pulumi config set --secret) or reference "
        "Secrets Manager/SSM by ARN.",
    ),
    "run-limits": (
        Severity.LOW,
        ["microvm", "limits"],
        "Keep maximum durations within 1..28800 s and set all three idle-policy members within "
        "the service limits.",
    ),
    "execution-role-broad-read-access": (
        Severity.LOW,
        ["iam", "least-privilege", "microvm"],
        "Replace ReadOnlyAccess with the services' own *ReadOnlyAccess policies or an inline "
        "policy listing the reads the workload needs.",
    ),
}


def docs_url(name: str) -> str:
    """The link to ``name``'s section of docs/policies.md (the heading is the policy name)."""
    base = os.environ.get(DOCS_URL_ENV, "").strip() or DEFAULT_DOCS_URL
    return f"{base.split('#', 1)[0]}#{name}"


def meta(name: str) -> dict[str, Any]:
    """Constructor keyword arguments: severity, tags, remediation_steps, url."""
    severity, tags, remediation = POLICY_METADATA[name]
    return {
        "severity": severity,
        "tags": list(tags),
        "remediation_steps": remediation,
        "url": docs_url(name),
    }
