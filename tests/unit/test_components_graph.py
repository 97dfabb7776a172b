"""Security properties and structure of the storage, artifact, log and role components, asserted
on the graph the real ``__main__.py`` registers for the ``dev`` and ``prod`` stacks (under mocks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.artifact import build_zip
from devkit.offline import wire
from devkit.offline.evaluate import ProgramError, evaluate_program

pytestmark = pytest.mark.unit

IMAGE_DIR = Path(__file__).resolve().parents[2] / "image"

BUCKET = "aws:s3/bucket:Bucket"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

ARTIFACT_BUCKET = "lambda-microvms:storage:ArtifactBucket"
IMAGE_ARTIFACT = "lambda-microvms:artifact:ImageArtifact"
IMAGE_LOG_GROUP = "lambda-microvms:logs:ImageLogGroup"
BUILD_ROLE = "lambda-microvms:iam:BuildRole"
EXECUTION_ROLE = "lambda-microvms:iam:ExecutionRole"

# What Pulumi.<stack>.yaml says (the harness's STS mock answers the first allowed account id).
EXPECTED = {
    "dev": {
        "account": "111111111111",
        "region": "us-east-1",
        "force_destroy": True,
        "noncurrent_days": 7,
        "retention": 14,
        "models": [
            "arn:aws:bedrock:us-east-1:111111111111:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-east-2::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
        ],
    },
    "prod": {
        "account": "222222222222",
        "region": "us-west-2",
        "force_destroy": False,
        "noncurrent_days": 90,
        "retention": 365,
        "models": [
            "arn:aws:bedrock:us-west-2:222222222222:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-east-2::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
            "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
        ],
    },
}
# The role lists resources sorted, so previews are stable.
for _exp in EXPECTED.values():
    _exp["models"] = sorted(set(_exp["models"]))
IMAGE = "agent-sandbox"
GROUP = f"/aws/lambda-microvms/{IMAGE}"


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request):
    return request.param


_GRAPHS: dict = {}


def graph_for(stack: str, preview: bool = False):
    if (stack, preview) not in _GRAPHS:
        _GRAPHS[(stack, preview)] = evaluate_program(stack, preview=preview)
    return _GRAPHS[(stack, preview)]


@pytest.fixture
def graph(stack):
    return graph_for(stack)


@pytest.fixture
def exp(stack):
    e = dict(EXPECTED[stack])
    e["group_arn"] = f"arn:aws:logs:{e['region']}:{e['account']}:log-group:{GROUP}"
    return e


def bucket_name(graph) -> str:
    return graph.one(BUCKET, "artifacts-bucket").plain_inputs["bucket"]


def doc(record, prop: str) -> dict:
    value = record.plain_inputs[prop]
    assert isinstance(value, str) and value != wire.UNKNOWN, f"{record.name}.{prop} is not known"
    assert value == json.dumps(json.loads(value), sort_keys=True, indent=2), "not canonical JSON"
    return json.loads(value)


def depends_on(record, prop: str, target) -> bool:
    return target.urn in record.property_dependencies.get(prop, [])


# --------------------------------------------------------------------------- structure


def test_component_tree(graph):
    stack_urn = graph.stack_resource.urn
    expected_children = {
        ARTIFACT_BUCKET: (
            "artifacts",
            {
                (BUCKET, "artifacts-bucket"),
                (VERSIONING, "artifacts-versioning"),
                (ENCRYPTION, "artifacts-encryption"),
                (PUBLIC_ACCESS_BLOCK, "artifacts-public-access-block"),
                (OWNERSHIP, "artifacts-ownership"),
                (BUCKET_POLICY, "artifacts-tls-only-policy"),
                (LIFECYCLE, "artifacts-lifecycle"),
            },
        ),
        IMAGE_ARTIFACT: ("artifact", {(OBJECT, "artifact-object")}),
        IMAGE_LOG_GROUP: ("logs", {(LOG_GROUP, "logs-log-group")}),
        BUILD_ROLE: ("build", {(ROLE, "build-role"), (ROLE_POLICY, "build-policy")}),
        EXECUTION_ROLE: (
            "execution",
            {(ROLE, "execution-role"), (ROLE_POLICY, "execution-policy")},
        ),
    }
    for token, (name, children) in expected_children.items():
        component = graph.one(token, name)
        assert not component.custom
        assert component.parent == stack_urn
        assert {(c.type, c.name) for c in graph.children_of(component.urn)} == children
        for child in graph.children_of(component.urn):
            assert child.custom and child.name.startswith(f"{name}-")


def test_build_and_execution_roles_are_distinct(graph):
    build = graph.one(ROLE, "build-role")
    execution = graph.one(ROLE, "execution-role")
    assert build.urn != execution.urn
    assert build.outputs["arn"] != execution.outputs["arn"]
    assert graph.plain_outputs["buildRoleArn"] == build.outputs["arn"]
    assert graph.plain_outputs["executionRoleArn"] == execution.outputs["arn"]


def test_everything_regional_is_in_the_stack_region(graph, exp):
    for token in (BUCKET, VERSIONING, ENCRYPTION, PUBLIC_ACCESS_BLOCK, OWNERSHIP, BUCKET_POLICY,
                  LIFECYCLE, OBJECT, LOG_GROUP):  # fmt: skip
        for record in graph.by_type(token):
            assert record.plain_inputs["region"] == exp["region"], record.name
            assert graph.provider_of(record).inputs["region"] == exp["region"]


# --------------------------------------------------------------------------- bucket


def test_bucket_name_tags_and_force_destroy(graph, exp, stack):
    bucket = graph.one(BUCKET, "artifacts-bucket")
    inputs = bucket.plain_inputs
    name = inputs["bucket"]
    assert name.startswith(f"lambda-microvms-{stack}-artifacts-{exp['account']}-")
    assert len(name) <= 63 and name == name.lower()
    assert inputs["forceDestroy"] is exp["force_destroy"]
    assert {"project": "lambda-microvms", "stack": stack, "environment": stack}.items() <= inputs[
        "tags"
    ].items()
    assert graph.plain_outputs["artifactBucketName"] == name


def test_bucket_names_differ_between_stacks():
    assert bucket_name(graph_for("dev")) != bucket_name(graph_for("prod"))


def test_versioning_enabled(graph):
    bucket = graph.one(BUCKET, "artifacts-bucket")
    versioning = graph.one(VERSIONING, "artifacts-versioning")
    assert versioning.plain_inputs["versioningConfiguration"] == {"status": "Enabled"}
    assert depends_on(versioning, "bucket", bucket)


def test_default_encryption_sse_s3(graph):
    enc = graph.one(ENCRYPTION, "artifacts-encryption")
    assert enc.plain_inputs["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
            "bucketKeyEnabled": False,
        }
    ]
    assert depends_on(enc, "bucket", graph.one(BUCKET, "artifacts-bucket"))


def test_all_four_public_access_blocks(graph):
    pab = graph.one(PUBLIC_ACCESS_BLOCK, "artifacts-public-access-block").plain_inputs
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert pab[flag] is True, flag


def test_object_ownership_enforced(graph):
    own = graph.one(OWNERSHIP, "artifacts-ownership").plain_inputs
    assert own["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_bucket_policy_denies_non_tls(graph):
    policy = graph.one(BUCKET_POLICY, "artifacts-tls-only-policy")
    arn = f"arn:aws:s3:::{bucket_name(graph)}"
    # The whole document: it only denies (no statement grants anything to anyone).
    assert doc(policy, "policy") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOutdatedTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
            },
        ],
    }
    assert depends_on(policy, "bucket", graph.one(BUCKET, "artifacts-bucket"))
    pab = graph.one(PUBLIC_ACCESS_BLOCK, "artifacts-public-access-block")
    assert pab.urn in policy.dependencies


def test_lifecycle_expires_noncurrent_versions(graph, exp):
    lifecycle = graph.one(LIFECYCLE, "artifacts-lifecycle")
    (rule,) = lifecycle.plain_inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == {}
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": exp["noncurrent_days"]}
    assert graph.one(VERSIONING, "artifacts-versioning").urn in lifecycle.dependencies


# --------------------------------------------------------------------------- artifact


def test_artifact_object_is_content_addressed(graph, exp):
    digest = build_zip(IMAGE_DIR).sha256
    obj = graph.one(OBJECT, "artifact-object")
    inputs = obj.plain_inputs
    key = f"images/{IMAGE}/{digest}.zip"
    assert inputs["key"] == key
    assert inputs["bucket"] == bucket_name(graph)
    assert depends_on(obj, "bucket", graph.one(BUCKET, "artifacts-bucket"))
    assert inputs["contentType"] == "application/zip"
    assert inputs["checksumAlgorithm"] == "SHA256"
    assert inputs["source"]["path"] == f"build/artifacts/{IMAGE}/{digest}.zip"
    assert graph.plain_outputs["artifactDigest"] == digest
    assert graph.plain_outputs["artifactUri"] == f"s3://{bucket_name(graph)}/{key}"


def test_artifact_digest_identical_across_stacks():
    assert (
        graph_for("dev").plain_outputs["artifactDigest"]
        == graph_for("prod").plain_outputs["artifactDigest"]
    )


# --------------------------------------------------------------------------- log group


def test_log_group(graph, exp):
    group = graph.one(LOG_GROUP, "logs-log-group")
    assert group.plain_inputs["name"] == GROUP
    assert group.plain_inputs["retentionInDays"] == exp["retention"]
    assert group.outputs["arn"] == exp["group_arn"]
    assert graph.plain_outputs["logGroupName"] == GROUP


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize("role_name", ["build-role", "execution-role"])
def test_trust_policy_admits_only_lambda_from_this_account(graph, exp, role_name):
    role = graph.one(ROLE, role_name)
    assert doc(role, "assumeRolePolicy") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LambdaMicrovmsAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": exp["account"]}},
            }
        ],
    }


@pytest.mark.parametrize("role_name", ["build-role", "execution-role"])
def test_roles_carry_no_other_permissions(graph, role_name):
    """The RolePolicy is the role's only document: no inline or managed policies on the Role
    itself, and (without attachReadOnlyAccess) no attachment or other RolePolicy anywhere."""
    role = graph.one(ROLE, role_name)
    inputs = role.plain_inputs
    assert not inputs.get("inlinePolicies"), inputs.get("inlinePolicies")
    assert not inputs.get("managedPolicyArns"), inputs.get("managedPolicyArns")
    assert graph.by_type(ATTACHMENT) == []
    policies = [p for p in graph.by_type(ROLE_POLICY) if depends_on(p, "role", role)]
    assert [p.name for p in policies] == [role_name.replace("-role", "-policy")]


def test_build_role_least_privilege(graph, exp):
    role = graph.one(ROLE, "build-role")
    policy = graph.one(ROLE_POLICY, "build-policy")
    assert depends_on(policy, "role", role)
    assert doc(policy, "policy") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadImageArtifacts",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"arn:aws:s3:::{bucket_name(graph)}/images/{IMAGE}/*",
            },
            {
                "Sid": "WriteOwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [exp["group_arn"], exp["group_arn"] + ":*"],
            },
        ],
    }
    assert role.plain_inputs["tags"]["lambda-microvms:role"] == "build"
    assert "lambda-microvms:log-group" not in role.plain_inputs["tags"]
    assert [c for c in graph.children_of(graph.one(BUILD_ROLE).urn) if c.type == ATTACHMENT] == []


def test_execution_role_read_only(graph, exp, stack):
    role = graph.one(ROLE, "execution-role")
    policy = graph.one(ROLE_POLICY, "execution-policy")
    assert depends_on(policy, "role", role)
    assert doc(policy, "policy") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [exp["group_arn"], exp["group_arn"] + ":*"],
            },
            {
                "Sid": "InvokeBedrockModels",
                "Effect": "Allow",
                "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                "Resource": exp["models"],
            },
        ],
    }
    tags = role.plain_inputs["tags"]
    assert tags["lambda-microvms:role"] == "execution"
    assert tags["lambda-microvms:log-group"] == exp["group_arn"]
    assert (
        tags["lambda-microvms:log-group"] == graph.one(LOG_GROUP, "logs-log-group").outputs["arn"]
    )
    assert {
        "project": "lambda-microvms",
        "stack": stack,
        "environment": stack,
    }.items() <= tags.items()
    assert graph.by_type(ATTACHMENT) == []


def test_documents_are_known_at_preview(stack):
    graph = graph_for(stack, preview=True)
    for token, name, prop in [
        (ROLE, "build-role", "assumeRolePolicy"),
        (ROLE, "execution-role", "assumeRolePolicy"),
        (ROLE_POLICY, "build-policy", "policy"),
        (ROLE_POLICY, "execution-policy", "policy"),
        (BUCKET_POLICY, "artifacts-tls-only-policy", "policy"),
    ]:
        assert doc(graph.one(token, name), prop)["Statement"]
    role = graph.one(ROLE, "execution-role")
    assert role.plain_inputs["tags"]["lambda-microvms:log-group"].startswith("arn:aws:logs:")
    assert graph.plain_outputs["artifactUri"].startswith("s3://")


# --------------------------------------------------------------------------- config variants


def test_kms_bucket_and_ecr_pull():
    key = "arn:aws:kms:us-west-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    repo = "arn:aws:ecr:us-west-2:222222222222:repository/base"
    graph = evaluate_program(
        "prod",
        overrides={
            "lambda-microvms:artifactBucket": {"forceDestroy": False, "kmsKeyArn": key},
            "lambda-microvms:ecrRepositoryArns": [repo],
        },
    )
    enc = graph.one(ENCRYPTION, "artifacts-encryption")
    assert enc.plain_inputs["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {
                "sseAlgorithm": "aws:kms",
                "kmsMasterKeyId": key,
            },
            "bucketKeyEnabled": True,
        }
    ]
    statements = {
        s["Sid"]: s for s in doc(graph.one(ROLE_POLICY, "build-policy"), "policy")["Statement"]
    }
    assert statements["DecryptArtifactsViaS3"] == {
        "Sid": "DecryptArtifactsViaS3",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": key,
        "Condition": {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"}},
    }
    assert statements["EcrPullBaseImages"]["Resource"] == [repo]
    assert statements["EcrAuthorizationToken"]["Action"] == "ecr:GetAuthorizationToken"


def test_read_only_access_attachment_and_extra_statements():
    extra = [{"Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::shared-data/*"}]
    graph = evaluate_program(
        "dev",
        overrides={
            "lambda-microvms:attachReadOnlyAccess": True,
            "lambda-microvms:executionRoleExtraStatements": extra,
        },
    )
    attachment = graph.one(ATTACHMENT, "execution-read-only-access")
    assert attachment.parent == graph.one(EXECUTION_ROLE).urn
    assert attachment.plain_inputs["policyArn"] == "arn:aws:iam::aws:policy/ReadOnlyAccess"
    assert depends_on(attachment, "role", graph.one(ROLE, "execution-role"))
    statements = doc(graph.one(ROLE_POLICY, "execution-policy"), "policy")["Statement"]
    assert statements[-1] == {
        "Sid": "ExtraReadOnly0",
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": "arn:aws:s3:::shared-data/*",
    }


def test_write_extra_statement_fails_the_program_before_any_role():
    with pytest.raises(ProgramError) as err:
        evaluate_program(
            "dev",
            overrides={
                "lambda-microvms:executionRoleExtraStatements": [
                    {"Action": ["s3:GetObject", "s3:PutObject"], "Resource": "*"}
                ]
            },
        )
    assert str(err.value) == (
        "ExecutionRole 'execution': executionRoleExtraStatements[0].Action: s3:PutObject not "
        "read-only (allowed: actions whose IAM access level is Read or List)"
    )
    assert err.value.graph is None or not [
        r for r in err.value.graph.by_type(ROLE) if r.name == "execution-role"
    ]


def test_account_comes_from_sts_except_on_the_local_stack():
    dev = graph_for("dev")
    sts = "aws:index/getCallerIdentity:getCallerIdentity"
    assert sts in [i["token"] for i in dev.invokes]
    local = evaluate_program("local")
    assert sts not in [i["token"] for i in local.invokes]  # no STS locally: accountId is used
    trust = doc(local.one(ROLE, "build-role"), "assumeRolePolicy")
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"}
    }
    assert local.one(BUCKET, "artifacts-bucket").plain_inputs["forceDestroy"] is True


def test_agent_calls_bedrock_in_the_stack_region(graph, exp):
    (img,) = graph.by_type("pulumi-python:dynamic/lambda-microvms:MicrovmImage")
    assert img.plain_inputs["environmentVariables"]["AWS_REGION"] == exp["region"]
