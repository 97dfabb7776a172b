"""microvm-regions over the Analyzer protocol: a labelled table of stack graphs."""

from __future__ import annotations

import pytest

from devkit.offline.synthetic import make_resource
from tests.protocol.test_policy_support import (
    MODES,
    SCOPES,
    UNKNOWN,
    PackPool,
    check_case,
    only,
    policy_config,
)

pytestmark = pytest.mark.protocol

POLICY = "microvm-regions"
DYNAMIC = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
AWS_IMAGE = "aws:lambdamicrovms/image:Image"
LEGACY_IMAGE = "aws:lambda/microvmsImage:MicrovmsImage"
MICROVM = "aws:lambdamicrovms/microvm:Microvm"
SUPPORTED = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1"]


def prov(region="us-east-1"):
    return {"region": region} if region else {}


def bucket(name="artifacts", *, region=None, provider_region="us-east-1", logical="bucket"):
    props = {"bucket": name}
    if region:
        props["region"] = region
    return make_resource(
        "aws:s3/bucket:Bucket", logical, props, provider_inputs=prov(provider_region)
    )


def obj(b, *, key="images/img/abc.zip", bucket_ref=None):
    return make_resource(
        "aws:s3/bucketObjectv2:BucketObjectv2",
        "artifact",
        {"bucket": b.inputs["bucket"] if bucket_ref is None else bucket_ref, "key": key},
        provider_inputs=prov(),
        property_dependencies={"bucket": [b.urn]},
    )


def image(
    region="us-east-1",
    uri="s3://artifacts/images/img/abc.zip",
    *,
    type_=DYNAMIC,
    deps=None,
    name="img",
    provider_region=None,
):
    props = {"name": "img", "buildRoleArn": "arn:aws:iam::111111111111:role/build"}
    if region is not None:
        props["region"] = region
    if uri is not None:
        props["codeArtifact"] = {"uri": uri}
    return make_resource(
        type_,
        name,
        props,
        provider_inputs={} if type_ == DYNAMIC else prov(provider_region),
        property_dependencies=deps or {},
    )


def pair(region, type_=DYNAMIC):
    b = bucket(region=region, provider_region=region)
    return [b, image(region, type_=type_, provider_region=region)]


def uri_unknown_via_object():
    b = bucket()
    o = obj(b)
    return [b, o, image(uri=UNKNOWN, deps={"codeArtifact": [o.urn]})]


def uri_unknown_via_bucket():
    b = bucket()
    return [b, image(uri=UNKNOWN, deps={"codeArtifact": [b.urn]})]


def autonamed_bucket_via_object():
    b = make_resource("aws:s3/bucket:Bucket", "bucket", {"bucket": UNKNOWN}, provider_inputs=prov())
    o = obj(b, bucket_ref=UNKNOWN)
    return [b, o, image(uri=UNKNOWN, deps={"codeArtifact": [o.urn]})]


def other(type_, props=None, provider_region="us-east-1", name="thing"):
    return make_resource(type_, name, props or {}, provider_inputs=prov(provider_region))


# (label, graph, expected substring or None)
CASES = [
    *[(f"dynamic-image-{r}", pair(r), None) for r in SUPPORTED],
    *[(f"aws-image-{r}", pair(r, AWS_IMAGE), None) for r in SUPPORTED],
    ("legacy-image-eu-west-1", pair("eu-west-1", LEGACY_IMAGE), None),
    *[(f"microvm-{r}", [other(MICROVM, {"imageArn": "x"}, r)], None) for r in SUPPORTED],
    (
        "uri-bucket-matched-through-dependency",
        (lambda b: [b, image(uri="s3://renamed/k.zip", deps={"codeArtifact": [b.urn]})])(bucket()),
        None,
    ),
    (
        "iam-role-is-global",
        [other("aws:iam/role:Role", {"assumeRolePolicy": "{}"}, provider_region=None)],
        None,
    ),
    (
        "iam-policy-is-global",
        [other("aws:iam/policy:Policy", {"policy": "{}"}, provider_region=None)],
        None,
    ),
    (
        "provider-not-judged",
        [make_resource("pulumi:providers:aws", "eu", {"region": "eu-central-1"})],
        None,
    ),
    (
        "component-not-judged",
        [make_resource("lambda-microvms:storage:ArtifactBucket", "artifacts", {})],
        None,
    ),
    (
        "command-not-judged",
        [make_resource("command:local:Command", "smoke", {"create": "true"})],
        None,
    ),
    (
        "own-region-wins-over-provider",
        [bucket(region="us-east-1", provider_region="eu-central-1")],
        None,
    ),
    (
        "log-group-via-provider",
        [other("aws:cloudwatch/logGroup:LogGroup", {"name": "/aws/lambda-microvms/img"})],
        None,
    ),
    ("preview-uri-via-object", uri_unknown_via_object(), None),
    ("preview-uri-via-bucket", uri_unknown_via_bucket(), None),
    ("preview-autonamed-bucket-via-object", autonamed_bucket_via_object(), None),
    (
        "other-dynamic-resource-not-judged",
        [make_resource("pulumi-python:dynamic:Resource", "other", {"x": 1})],
        None,
    ),
    (
        "non-aws-provider-type-not-judged",
        [make_resource("random:index/randomId:RandomId", "rid", {"byteLength": 4})],
        None,
    ),
    (
        "bucket-v2-matched-by-name",
        [
            make_resource(
                "aws:s3/bucketV2:BucketV2",
                "bucket",
                {"bucket": "artifacts"},
                provider_inputs=prov(),
            ),
            image(),
        ],
        None,
    ),
    # ---- failing ----
    (
        "microvm-no-region-anywhere",
        [other(MICROVM, {"imageArn": "x"}, provider_region=None)],
        "aws:lambdamicrovms/microvm:Microvm 'thing' has no region on itself or its provider",
    ),
    (
        "aws-image-bucket-not-in-stack",
        [image(None, type_=AWS_IMAGE, uri="s3://elsewhere/k.zip", provider_region="us-east-1")],
        "aws:lambdamicrovms/image:Image 'img': artifact bucket 'elsewhere' (codeArtifact.uri) is not defined in this stack, so its region cannot be checked; it fails closed",
    ),
    (
        "legacy-image-bucket-other-region",
        [bucket(region="eu-west-1"), image(None, type_=LEGACY_IMAGE, provider_region="us-east-1")],
        "is in us-east-1 but its artifact bucket aws:s3/bucket:Bucket 'bucket' is in eu-west-1",
    ),
    (
        "bucket-through-dependency-other-region",
        (lambda b: [b, image(uri=UNKNOWN, deps={"codeArtifact": [b.urn]})])(
            bucket(region="us-west-2")
        ),
        "its artifact bucket aws:s3/bucket:Bucket 'bucket' is in us-west-2",
    ),
    *[
        (
            f"dynamic-image-unsupported-{r}",
            [bucket(region=r), image(r, provider_region=r)],
            f"is in {r}, from its own 'region', where Lambda MicroVMs are not available",
        )
        for r in ("eu-central-1", "us-west-1", "sa-east-1")
    ],
    (
        "aws-image-unsupported-via-provider",
        [
            bucket(provider_region="ca-central-1"),
            image(None, type_=AWS_IMAGE, provider_region="ca-central-1"),
        ],
        "is in ca-central-1, from its provider's 'region', pulumi:providers:aws",
    ),
    (
        "legacy-image-unsupported",
        [bucket(region="ap-south-1"), image("ap-south-1", type_=LEGACY_IMAGE)],
        "where Lambda MicroVMs are not available",
    ),
    (
        "microvm-unsupported",
        [other(MICROVM, {"imageArn": "x"}, "eu-central-1")],
        "where Lambda MicroVMs are not available",
    ),
    (
        "bucket-in-other-region",
        [bucket(region="us-west-2"), image("us-east-1")],
        "its artifact bucket aws:s3/bucket:Bucket 'bucket' is in us-west-2; builds fail with S3_CROSS_REGION_ACCESS_DENIED",
    ),
    (
        "bucket-other-region-via-provider",
        [bucket(provider_region="eu-west-1"), image("us-east-1")],
        "is in eu-west-1",
    ),
    (
        "bucket-not-in-stack",
        [image("us-east-1", uri="s3://elsewhere/key.zip")],
        "artifact bucket 'elsewhere' (codeArtifact.uri) is not defined in this stack",
    ),
    (
        "preview-uri-unknown-no-deps",
        [bucket(), image(uri=UNKNOWN)],
        "'codeArtifact.uri' is unknown during preview, so this guardrail cannot be verified until apply",
    ),
    (
        "uri-not-s3",
        [bucket(), image(uri="https://example.com/a.zip")],
        "is not an s3://bucket/key URI",
    ),
    ("no-code-artifact", [bucket(), image(uri=None)], "it has no codeArtifact.uri"),
    (
        "no-region-anywhere",
        [other("aws:s3/bucket:Bucket", {"bucket": "b"}, provider_region=None)],
        "has no region on itself or its provider; it would come from AWS_REGION at run time",
    ),
    (
        "dynamic-image-without-region",
        [bucket(), image(None)],
        "has no region on itself or its provider",
    ),
    (
        "preview-region-derived-unknown",
        (
            lambda b: [
                b,
                make_resource(
                    "aws:sqs/queue:Queue",
                    "q",
                    {"region": UNKNOWN},
                    provider_inputs=prov(),
                    property_dependencies={"region": [b.urn]},
                ),
            ]
        )(bucket()),
        "'region' is unknown during preview",
    ),
    # pulumi-aws v7 computes `region` from the provider: unknown with no dependency in a real preview.
    ("preview-provider-computed-region", [bucket(region=UNKNOWN)], None),
    (
        "preview-provider-region-unknown",
        [bucket(provider_region=UNKNOWN)],
        "'region' is unknown during preview",
    ),
    (
        "regional-resource-unsupported-is-fine-but-env",
        [other("aws:sqs/queue:Queue", {}, "eu-central-1")],
        "which environment 'dev' does not allow",
    ),
]


def test_table_is_big_enough():
    assert len(CASES) >= 40
    assert sum(1 for c in CASES if c[2] is None) >= 20
    assert sum(1 for c in CASES if c[2] is not None) >= 15


@pytest.fixture(scope="module")
def pool():
    p = PackPool()
    yield p
    p.close()


@pytest.mark.parametrize("dry_run", MODES)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(("label", "graph", "expect"), CASES, ids=[c[0] for c in CASES])
def test_regions_table(pool, dry_run, scope, label, graph, expect):
    pack = pool.get(dry_run=dry_run, config=policy_config(POLICY, scope))
    check_case(pack.run(graph), POLICY, expect, label)


RESTRICTED = {"allowedRegionsByEnvironment": {"dev": ["us-east-1"], "prod": ["us-west-2"]}}


@pytest.mark.parametrize("dry_run", MODES)
def test_environment_allow_list(pool, dry_run):
    pack = pool.get(dry_run=dry_run, config=policy_config(POLICY, "alone", RESTRICTED))
    check_case(pack.run(pair("us-east-1")), POLICY, None, "dev in us-east-1")
    check_case(
        pack.run(pair("us-west-2")),
        POLICY,
        "which environment 'dev' does not allow. Fix: deploy to one of us-east-1",
        "dev in us-west-2",
    )
    # IAM stays exempt even when its provider is elsewhere.
    check_case(
        pack.run([other("aws:iam/role:Role", {}, "eu-central-1")]), POLICY, None, "iam exempt"
    )


@pytest.mark.parametrize("dry_run", MODES)
def test_environment_sources(pool, dry_run):
    # Policy config wins over stack config and stack name.
    pack = pool.get(
        dry_run=dry_run,
        config=policy_config(POLICY, "alone", {**RESTRICTED, "environment": "prod"}),
    )
    check_case(pack.run(pair("us-west-2")), POLICY, None, "policy config environment")
    # Stack config lambda-microvms:environment wins over the stack name.
    pack = pool.get(
        dry_run=dry_run,
        config=policy_config(POLICY, "alone", RESTRICTED),
        stack="dev",
        stack_config={"lambda-microvms:environment": "prod"},
    )
    check_case(pack.run(pair("us-west-2")), POLICY, None, "stack config environment")
    check_case(
        pack.run(pair("us-east-1")),
        POLICY,
        "environment 'prod' does not allow",
        "stack config environment",
    )
    # Else the stack name; an environment without an entry fails (not "no restriction").
    pack = pool.get(
        dry_run=dry_run, config=policy_config(POLICY, "alone", RESTRICTED), stack="staging"
    )
    check_case(
        pack.run(pair("us-east-1")),
        POLICY,
        "Environment 'staging' (from the stack name) has no entry in allowedRegionsByEnvironment (dev, prod); a missing entry is not 'no restriction'",
        "staging",
    )


def test_environment_cannot_be_determined(pool):
    from devkit.offline.analyzer import PolicyPack
    from tests.protocol.test_policy_support import PACK_DIR, in_stacks

    # No stack name from the engine or the environment, and URNs of two stacks.
    with PolicyPack(
        PACK_DIR, policy_config=policy_config(POLICY, "alone"), stack="", env={"PULUMI_STACK": ""}
    ) as pack:
        diags = only(pack.run(in_stacks(pair("us-east-1"), "dev", "prod")), POLICY)
    assert len(diags) == 1
    assert diags[0].enforcement_level == "mandatory"
    assert "The stack's environment cannot be determined" in diags[0].message
    assert diags[0].urn == ""


def test_supported_regions_knob(pool):
    pack = pool.get(
        dry_run=False, config=policy_config(POLICY, "alone", {"supportedRegions": ["eu-west-1"]})
    )
    check_case(pack.run(pair("eu-west-1")), POLICY, None, "eu-west-1 supported")
    check_case(
        pack.run(pair("us-east-1")),
        POLICY,
        "Fix: use one of eu-west-1",
        "us-east-1 no longer supported",
    )
