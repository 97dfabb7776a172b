"""The advisory-by-default policies over the Analyzer protocol (mandatory under prod.json)."""

from __future__ import annotations

import json

import pytest

from devkit.offline.synthetic import make_resource
from tests.protocol.test_policy_support import (
    MODES,
    PACK_DIR,
    PROVIDER,
    UNKNOWN,
    PackPool,
    check_case,
    only,
    secret,
)

pytestmark = pytest.mark.protocol

DYNAMIC = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
BUCKET = "arts"
PROD = str(PACK_DIR / "config" / "prod.json")


@pytest.fixture(scope="module")
def pool():
    p = PackPool()
    yield p
    p.close()


def res(type_, name, props, deps=None, provider=PROVIDER):
    return make_resource(
        type_, name, props, provider_inputs=provider, property_dependencies=deps or {}
    )


def tls_policy(bucket=BUCKET):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def bucket_graph(
    *, pab=True, flags=None, sse=True, versioning="Enabled", policy="tls", own_sse=False
):
    b = res("aws:s3/bucket:Bucket", "bucket", {"bucket": BUCKET, "region": "us-east-1"})
    if own_sse:
        b.inputs["serverSideEncryptionConfiguration"] = {
            "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}
        }
        b.outputs = dict(b.inputs)
    dep = {"bucket": [b.urn]}
    out = [b]
    if pab:
        values = {
            "blockPublicAcls": True,
            "blockPublicPolicy": True,
            "ignorePublicAcls": True,
            "restrictPublicBuckets": True,
            **(flags or {}),
        }
        out.append(
            res(
                "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                "pab",
                {"bucket": UNKNOWN, **values},
                dep,
            )
        )
    if sse:
        out.append(
            res(
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                "sse",
                {
                    "bucket": UNKNOWN,
                    "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
                },
                dep,
            )
        )
    if versioning:
        out.append(
            res(
                "aws:s3/bucketVersioning:BucketVersioning",
                "ver",
                {"bucket": BUCKET, "versioningConfiguration": {"status": versioning}},
            )
        )
    if policy == "tls":
        out.append(
            res(
                "aws:s3/bucketPolicy:BucketPolicy",
                "tls",
                {"bucket": UNKNOWN, "policy": tls_policy()},
                dep,
            )
        )
    elif policy == "unknown":
        out.append(
            res(
                "aws:s3/bucketPolicy:BucketPolicy",
                "tls",
                {"bucket": UNKNOWN, "policy": UNKNOWN},
                dep,
            )
        )
    return out


BUCKET_CASES = [
    ("hardened", bucket_graph(), None),
    ("own-sse-block", bucket_graph(sse=False, own_sse=True), None),
    (
        "no-public-access-block",
        bucket_graph(pab=False),
        "a BucketPublicAccessBlock with all four flags true",
    ),
    (
        "one-flag-false",
        bucket_graph(flags={"restrictPublicBuckets": False}),
        "a BucketPublicAccessBlock with all four flags true",
    ),
    ("no-encryption", bucket_graph(sse=False), "default server-side encryption"),
    ("no-versioning", bucket_graph(versioning=None), "versioning Enabled"),
    ("versioning-suspended", bucket_graph(versioning="Suspended"), "versioning Enabled"),
    (
        "no-tls-policy",
        bucket_graph(policy=None),
        "denying requests with aws:SecureTransport = false",
    ),
    (
        "preview-policy-unknown",
        bucket_graph(policy="unknown"),
        "'BucketPolicy.policy' is unknown during preview",
    ),
]


@pytest.mark.parametrize("dry_run", MODES)
@pytest.mark.parametrize(
    ("label", "graph", "expect"), BUCKET_CASES, ids=[c[0] for c in BUCKET_CASES]
)
def test_artifact_bucket_hardening(pool, dry_run, label, graph, expect):
    check_case(
        pool.get(dry_run=dry_run, config=PROD).run(graph),
        "artifact-bucket-hardening",
        expect,
        label,
    )


def image(**props):
    base = {
        "name": "img",
        "region": "us-east-1",
        "codeArtifact": {"uri": f"s3://{BUCKET}/images/img/abc.zip"},
        "buildRoleArn": "arn:aws:iam::111111111111:role/build",
    }
    return make_resource(DYNAMIC, "img", {**base, **props}, provider_inputs={})


def build_graph(*statements, with_image=True):
    b = res("aws:s3/bucket:Bucket", "bucket", {"bucket": BUCKET})
    role = make_resource(
        "aws:iam/role:Role",
        "build",
        {"name": "build", "assumeRolePolicy": "{}", "tags": {"lambda-microvms:role": "build"}},
        provider_inputs=PROVIDER,
        outputs={
            "name": "build",
            "arn": "arn:aws:iam::111111111111:role/build",
            "tags": {"lambda-microvms:role": "build"},
        },
    )
    rp = res(
        "aws:iam/rolePolicy:RolePolicy",
        "build-policy",
        {
            "role": "build",
            "policy": json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        },
        {"role": [role.urn]},
    )
    return [b, role, rp, *([image()] if with_image else [])]


LG = "arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda-microvms/img"
GOOD_S3 = {
    "Effect": "Allow",
    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
    "Resource": f"arn:aws:s3:::{BUCKET}/images/img/*",
}
GOOD_LOGS = {
    "Effect": "Allow",
    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    "Resource": [LG, f"{LG}:*"],
}
BUILD_CASES = [
    ("scoped", build_graph(GOOD_S3, GOOD_LOGS), None),
    ("scoped-without-image", build_graph(GOOD_S3, GOOD_LOGS, with_image=False), None),
    (
        "ecr-pull-allowed",
        build_graph(GOOD_S3, {"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"}),
        None,
    ),
    (
        "s3-write",
        build_graph({**GOOD_S3, "Action": ["s3:GetObject", "s3:PutObject"]}),
        "S3 write actions s3:PutObject",
    ),
    (
        "whole-bucket",
        build_graph({**GOOD_S3, "Resource": f"arn:aws:s3:::{BUCKET}/*"}),
        f"is neither the artifact prefix, arn:aws:s3:::{BUCKET}/images/img/*,",
    ),
    ("logs-star", build_graph(GOOD_S3, {**GOOD_LOGS, "Resource": "*"}), "Resource '*' is neither"),
    (
        "other-log-group",
        build_graph(GOOD_S3, {**GOOD_LOGS, "Resource": LG.replace("/img", "/other")}),
        "image's log group, /aws/lambda-microvms/img, /aws/lambda/microvms/img",
    ),
    (
        "explicit-log-group",
        [
            *build_graph(GOOD_S3, GOOD_LOGS, with_image=False),
            image(name="img-x1", logging={"cloudWatch": {"logGroup": "/aws/lambda-microvms/img"}}),
        ],
        None,
    ),
    (
        "suffixed-name-default-group",
        [*build_graph(GOOD_S3, GOOD_LOGS, with_image=False), image(name="img-x1")],
        "image's log group, /aws/lambda-microvms/img-x1, /aws/lambda/microvms/img-x1",
    ),
    (
        "not-action",
        build_graph({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
        "uses NotAction/NotResource",
    ),
]


@pytest.mark.parametrize("dry_run", MODES)
@pytest.mark.parametrize(("label", "graph", "expect"), BUILD_CASES, ids=[c[0] for c in BUILD_CASES])
def test_build_role_scope(pool, dry_run, label, graph, expect):
    check_case(pool.get(dry_run=dry_run, config=PROD).run(graph), "build-role-scope", expect, label)


IMAGE_CASES = [
    ("capabilities-none", "image-capabilities-all", image(), None),
    ("capabilities-empty", "image-capabilities-all", image(additionalOsCapabilities=[]), None),
    (
        "capabilities-all",
        "image-capabilities-all",
        image(additionalOsCapabilities=["ALL"]),
        "additionalOsCapabilities ['ALL'] grants the guest every Linux capability",
    ),
    (
        "env-plain",
        "image-env-plaintext-secrets",
        image(environmentVariables={"LOG_LEVEL": "info", "PORT": "8080"}),
        None,
    ),
    (
        "env-secret-value",
        "image-env-plaintext-secrets",
        image(environmentVariables={"API_TOKEN": secret("abc123")}),
        None,
    ),
    (
        "env-secret-map",
        "image-env-plaintext-secrets",
        image(environmentVariables=secret({"API_TOKEN": "abc123", "DB_PASSWORD": "x"})),
        None,
    ),
    (
        "env-reference",
        "image-env-plaintext-secrets",
        image(
            environmentVariables={
                "DB_PASSWORD": "arn:aws:secretsmanager:us-east-1:111111111111:secret:db"
            }
        ),
        None,
    ),
    (
        "env-secret-name-plaintext",
        "image-env-plaintext-secrets",
        image(environmentVariables={"API_TOKEN": "abc123"}),
        "environmentVariables.API_TOKEN is plaintext and its name looks like a secret",
    ),
    (
        "env-access-key-value",
        "image-env-plaintext-secrets",
        image(environmentVariables={"SETTING": "AKIAABCDEFGHIJKLMNOP"}),
        "its value looks like an AWS access key id",
    ),
    (
        "env-private-key",
        "image-env-plaintext-secrets",
        image(environmentVariables={"CERT": "-----BEGIN RSA PRIVATE KEY-----\nMII"}),
        "looks like a private key",
    ),
]


@pytest.mark.parametrize("dry_run", MODES)
@pytest.mark.parametrize(
    ("label", "policy", "record", "expect"), IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES]
)
def test_image_policies(pool, dry_run, label, policy, record, expect):
    check_case(pool.get(dry_run=dry_run, config=PROD).run([record]), policy, expect, label)


def vm(**props):
    return res(
        "aws:lambdamicrovms/microvm:Microvm",
        "vm",
        {"imageArn": "arn:aws:lambda:us-east-1:111111111111:microvm-image:img", **props},
    )


IDLE = {"maxIdleDurationSeconds": 600, "suspendedDurationSeconds": 3600, "autoResumeEnabled": True}
RUN_CASES = [
    ("valid", vm(idlePolicy=IDLE, maximumDurationInSeconds=900), None),
    ("no-limits", vm(), None),
    ("max-duration-8h", vm(maximumDurationInSeconds=28800), None),
    ("max-duration-too-long", vm(maximumDurationInSeconds=28801), "maximumDurationInSeconds=28801"),
    ("max-duration-zero", vm(maximumDurationInSeconds=0), "is outside 1..28800 seconds"),
    (
        "idle-missing-auto-resume",
        vm(idlePolicy={"maxIdleDurationSeconds": 600, "suspendedDurationSeconds": 0}),
        "idlePolicy lacks autoResumeEnabled",
    ),
    (
        "idle-too-short",
        vm(idlePolicy={**IDLE, "maxIdleDurationSeconds": 30}),
        "idlePolicy.maxIdleDurationSeconds=30",
    ),
    (
        "idle-negative-suspended",
        vm(idlePolicy={**IDLE, "suspendedDurationSeconds": -1}),
        "suspendedDurationSeconds=-1 must be >= 0",
    ),
    (
        "preview-duration-unknown",
        vm(maximumDurationInSeconds=UNKNOWN),
        "'maximumDurationInSeconds' is unknown during preview",
    ),
    (
        "command-env-limits",
        make_resource(
            "command:local:Command",
            "session",
            {"create": "x", "environment": {"MICROVMS_MAX_DURATION_SECONDS": "99999"}},
        ),
        "MICROVMS_MAX_DURATION_SECONDS=99999 is outside 1..28800 seconds",
    ),
    (
        "command-env-idle-ok",
        make_resource(
            "command:local:Command",
            "session",
            {
                "create": "x",
                "environment": {
                    "MICROVMS_MAX_DURATION_SECONDS": "900",
                    "MICROVMS_MAX_IDLE_SECONDS": "600",
                    "MICROVMS_SUSPENDED_SECONDS": "0",
                    "MICROVMS_AUTO_RESUME": "true",
                },
            },
        ),
        None,
    ),
    (
        "command-env-idle-too-short",
        make_resource(
            "command:local:Command",
            "session",
            {
                "create": "x",
                "environment": {
                    "MICROVMS_MAX_IDLE_SECONDS": "10",
                    "MICROVMS_SUSPENDED_SECONDS": "0",
                    "MICROVMS_AUTO_RESUME": "false",
                },
            },
        ),
        "idlePolicy.maxIdleDurationSeconds=10",
    ),
    (
        "command-env-idle-incomplete",
        make_resource(
            "command:local:Command",
            "session",
            {"create": "x", "environment": {"MICROVMS_MAX_IDLE_SECONDS": "600"}},
        ),
        "idlePolicy lacks suspendedDurationSeconds, autoResumeEnabled",
    ),
]


@pytest.mark.parametrize("dry_run", MODES)
@pytest.mark.parametrize(("label", "record", "expect"), RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_run_limits(pool, dry_run, label, record, expect):
    check_case(pool.get(dry_run=dry_run, config=PROD).run([record]), "run-limits", expect, label)


def test_advisory_by_default(pool):
    pack = pool.get(dry_run=False, config={})
    diags = pack.run(
        [
            image(additionalOsCapabilities=["ALL"], environmentVariables={"API_TOKEN": "x"}),
            vm(maximumDurationInSeconds=0),
            *bucket_graph(pab=False),
        ]
    )
    for policy in (
        "image-capabilities-all",
        "image-env-plaintext-secrets",
        "run-limits",
        "artifact-bucket-hardening",
    ):
        found = only(diags, policy)
        assert found and all(d.enforcement_level == "advisory" for d in found), policy
