"""Trust and permission documents of the build and execution roles: exact JSON for given inputs."""

from __future__ import annotations

import json

import pytest

from components.artifact_bucket import tls_only_bucket_policy
from components.roles import (
    build_role_policy,
    execution_role_policy,
    lambda_trust_policy,
    log_group_arn,
    log_group_name,
    log_stream_arn,
    non_read_only_actions,
    read_only_access_policy_arn,
    role_tags,
    to_json,
    validate_read_only_statement,
)

pytestmark = pytest.mark.unit

ACCOUNT = "111111111111"
REGION = "us-east-1"
BUCKET = "lambda-microvms-dev-artifacts-111111111111-766b879f"
GROUP_ARN = "arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda-microvms/agent-sandbox"
LOGS_STATEMENT = {
    "Sid": "WriteOwnLogGroup",
    "Effect": "Allow",
    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
    "Resource": [GROUP_ARN, GROUP_ARN + ":*"],
}
# The execution role never creates log groups: only writes to its own (existing) group.
EXEC_LOGS_STATEMENT = {**LOGS_STATEMENT, "Action": ["logs:CreateLogStream", "logs:PutLogEvents"]}


def test_log_group_names_and_arns():
    assert log_group_name("agent-sandbox") == "/aws/lambda-microvms/agent-sandbox"
    assert log_group_arn(REGION, ACCOUNT, "/aws/lambda-microvms/agent-sandbox") == GROUP_ARN
    assert log_stream_arn(REGION, ACCOUNT, "/aws/lambda-microvms/agent-sandbox") == GROUP_ARN + ":*"
    assert (
        log_group_arn("cn-north-1", ACCOUNT, "/g")
        == "arn:aws-cn:logs:cn-north-1:111111111111:log-group:/g"
    )
    assert read_only_access_policy_arn() == "arn:aws:iam::aws:policy/ReadOnlyAccess"


def test_log_group_name_rejects_bad_image_name():
    with pytest.raises(ValueError) as err:
        log_group_name("bad name!")
    assert str(err.value) == (
        "imageName: 'bad name!' is not a valid MicroVM image name "
        "(allowed: 1-64 characters of a-z A-Z 0-9 - _)"
    )


def test_trust_policy_exact_json():
    expected = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LambdaMicrovmsAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ],
    }
    assert lambda_trust_policy(ACCOUNT) == expected
    # No SourceArn on microvm-image/*: the service cannot satisfy it before the image exists.
    assert "SourceArn" not in to_json(lambda_trust_policy(ACCOUNT))
    assert "ArnLike" not in to_json(lambda_trust_policy(ACCOUNT))


@pytest.mark.parametrize("bad", ["", "12345", "1111111111111", "abcdefghijkl", None])
def test_trust_policy_rejects_bad_account(bad):
    with pytest.raises(ValueError) as err:
        lambda_trust_policy(bad)
    assert str(err.value) == (
        f"account_id: {bad!r} is not an AWS account id (allowed: exactly 12 digits)"
    )


def test_to_json_is_sorted_and_stable():
    doc = lambda_trust_policy(ACCOUNT)
    text = to_json(doc)
    assert text == json.dumps(doc, sort_keys=True, indent=2)
    assert json.loads(text) == doc
    assert text.index('"Action"') < text.index('"Condition"') < text.index('"Effect"')
    reordered = {"Statement": doc["Statement"], "Version": doc["Version"]}
    assert to_json(reordered) == text


def test_build_role_policy_minimal_exact():
    doc = build_role_policy(
        bucket_name=BUCKET, image_name="agent-sandbox", region=REGION, account_id=ACCOUNT
    )
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadImageArtifacts",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"arn:aws:s3:::{BUCKET}/images/agent-sandbox/*",
            },
            LOGS_STATEMENT,
        ],
    }


def test_build_role_policy_with_kms_and_ecr_exact():
    repo_b = "arn:aws:ecr:us-east-1:111111111111:repository/base-b"
    repo_a = "arn:aws:ecr:us-east-1:111111111111:repository/base-a"
    key = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    doc = build_role_policy(
        bucket_name=BUCKET,
        image_name="agent-sandbox",
        region=REGION,
        account_id=ACCOUNT,
        ecr_repository_arns=[repo_b, repo_a, repo_b],
        kms_key_arn=key,
    )
    assert doc["Statement"][2:] == [
        {
            "Sid": "DecryptArtifactsViaS3",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key,
            "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}},
        },
        {
            "Sid": "EcrAuthorizationToken",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "EcrPullBaseImages",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": [repo_a, repo_b],
        },
    ]


def test_build_role_never_writes_s3_or_reads_other_prefixes():
    doc = build_role_policy(
        bucket_name=BUCKET, image_name="other", region="eu-west-1", account_id=ACCOUNT
    )
    actions = [a for st in doc["Statement"] for a in st["Action"]]
    assert not [a for a in actions if a.startswith("s3:") and not a.startswith("s3:Get")]
    assert doc["Statement"][0]["Resource"] == f"arn:aws:s3:::{BUCKET}/images/other/*"
    assert doc["Statement"][1]["Resource"][0] == (
        "arn:aws:logs:eu-west-1:111111111111:log-group:/aws/lambda-microvms/other"
    )


def test_execution_role_policy_exact():
    models = [
        "arn:aws:bedrock:us-east-1:111111111111:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
    ]
    extra = [
        {
            "Action": ["dynamodb:GetItem", "dynamodb:Query"],
            "Resource": "arn:aws:dynamodb:us-east-1:111111111111:table/t",
        }
    ]
    doc = execution_role_policy(
        image_name="agent-sandbox",
        region=REGION,
        account_id=ACCOUNT,
        bedrock_model_arns=models,
        extra_statements=extra,
    )
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            EXEC_LOGS_STATEMENT,
            {
                "Sid": "InvokeBedrockModels",
                "Effect": "Allow",
                "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
                "Resource": sorted(models),
            },
            {
                "Sid": "ExtraReadOnly0",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                "Resource": "arn:aws:dynamodb:us-east-1:111111111111:table/t",
            },
        ],
    }


def test_execution_role_policy_without_models_has_only_logs():
    doc = execution_role_policy(image_name="agent-sandbox", region=REGION, account_id=ACCOUNT)
    assert doc == {"Version": "2012-10-17", "Statement": [EXEC_LOGS_STATEMENT]}


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (
            {"Action": "s3:PutObject", "Resource": "*"},
            "executionRoleExtraStatements[0].Action: s3:PutObject not read-only "
            "(allowed: actions whose IAM access level is Read or List)",
        ),
        (
            {"Action": ["s3:GetObject", "s3:*", "*"], "Resource": "*"},
            "executionRoleExtraStatements[0].Action: s3:*, * not read-only "
            "(allowed: actions whose IAM access level is Read or List)",
        ),
        (
            {"Action": "notaservice:GetThing", "Resource": "*"},
            "executionRoleExtraStatements[0].Action: notaservice:GetThing not read-only "
            "(allowed: actions whose IAM access level is Read or List)",
        ),
        (
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"},
            "executionRoleExtraStatements[0].Effect: 'Deny'; allowed value: 'Allow'",
        ),
        (
            {"NotAction": "s3:PutObject", "Resource": "*"},
            "executionRoleExtraStatements[0]: unsupported member(s) NotAction; "
            "allowed: Action, Condition, Effect, Resource, Sid",
        ),
        (
            {"Action": "s3:GetObject"},
            "executionRoleExtraStatements[0]: needs Action and Resource",
        ),
    ],
)
def test_extra_statements_must_be_read_only(statement, message):
    with pytest.raises(ValueError) as err:
        validate_read_only_statement(statement, 0)
    assert str(err.value) == message
    with pytest.raises(ValueError):
        execution_role_policy(
            image_name="x", region=REGION, account_id=ACCOUNT, extra_statements=[statement]
        )


def test_read_only_classification_uses_access_levels():
    assert (
        non_read_only_actions(["s3:GetObject", "s3:ListBucket", "s3:Get*", "ec2:Describe*"]) == []
    )
    assert non_read_only_actions(["iam:PassRole", "s3:DeleteObject", "sts:AssumeRole"]) == [
        "iam:PassRole",
        "s3:DeleteObject",
        "sts:AssumeRole",
    ]
    assert non_read_only_actions("s3:GETOBJECT") == []


def test_role_tags():
    assert role_tags("build", {"project": "p"}) == {"lambda-microvms:role": "build", "project": "p"}
    assert role_tags("execution", {"lambda-microvms:role": "spoofed"}, GROUP_ARN) == {
        "lambda-microvms:log-group": GROUP_ARN,
        "lambda-microvms:role": "execution",
    }


def test_tls_only_bucket_policy_exact():
    arn = f"arn:aws:s3:::{BUCKET}"
    assert tls_only_bucket_policy(BUCKET) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, arn + "/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyOutdatedTls",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, arn + "/*"],
                "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
            },
        ],
    }
