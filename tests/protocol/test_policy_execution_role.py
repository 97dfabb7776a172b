"""microvm-execution-role-read-only over the Analyzer protocol: a labelled table of stack graphs."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.offline.synthetic import make_resource
from tests.protocol.test_policy_support import (
    ACCOUNT,
    MODES,
    PROVIDER,
    SCOPES,
    UNKNOWN,
    PackPool,
    check_case,
    lambda_statement,
    only,
    policy_config,
    trust_doc,
)

pytestmark = pytest.mark.protocol

POLICY = "microvm-execution-role-read-only"
LG = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda-microvms/agent-sandbox"
TRUST = trust_doc(lambda_statement({"StringEquals": {"aws:SourceAccount": ACCOUNT}}))
EXEC_TAGS = {"lambda-microvms:role": "execution", "lambda-microvms:log-group": LG}


def arn_of(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def role(name="exec", tags=EXEC_TAGS, **inputs):
    props = {"assumeRolePolicy": TRUST, "name": name, **inputs}
    if tags is not None:
        props["tags"] = tags
    return make_resource(
        "aws:iam/role:Role",
        name,
        props,
        provider_inputs=PROVIDER,
        outputs={**props, "arn": arn_of(name)},
    )


def doc(*statements, as_json=True):
    d = {"Version": "2012-10-17", "Statement": list(statements)}
    return json.dumps(d) if as_json else d


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def role_policy(r, document, *, name="inline", role_ref=None, deps=None):
    ref = r.inputs["name"] if role_ref is None else role_ref
    return make_resource(
        "aws:iam/rolePolicy:RolePolicy",
        name,
        {"role": ref, "policy": document},
        provider_inputs=PROVIDER,
        property_dependencies={"role": [r.urn], **(deps or {})},
    )


def managed(name, document, *, arn=None):
    props = {"name": name, "policy": document}
    return make_resource(
        "aws:iam/policy:Policy",
        name,
        props,
        provider_inputs=PROVIDER,
        outputs={**props, "arn": arn or f"arn:aws:iam::{ACCOUNT}:policy/{name}"},
    )


def attach(r, policy_arn, *, deps=None, name="attach"):
    return make_resource(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        name,
        {"role": r.inputs["name"], "policyArn": policy_arn},
        provider_inputs=PROVIDER,
        property_dependencies={"role": [r.urn], **(deps or {})},
    )


def single(*statements, tags=EXEC_TAGS, as_json=True):
    """An execution role with one RolePolicy holding ``statements``."""
    r = role(tags=tags)
    return [r, role_policy(r, doc(*statements, as_json=as_json))]


def with_managed(arn, via="attachment"):
    r = role()
    if via == "attachment":
        return [r, attach(r, arn)]
    if via == "role":
        return [role(managedPolicyArns=[arn])]
    if via == "exclusive":
        return [
            r,
            make_resource(
                "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
                "exclusive",
                {"roleName": "exec", "policyArns": [arn]},
                provider_inputs=PROVIDER,
            ),
        ]
    raise AssertionError(via)


def customer(document, *, preview_unknown=False, in_stack=True):
    r = role()
    pol = managed("app-read", document)
    arn = pol.outputs["arn"]
    att = attach(r, UNKNOWN, deps={"policyArn": [pol.urn]}) if preview_unknown else attach(r, arn)
    return [r, pol, att] if in_stack else [r, att]


def policy_attachment(document):
    r = role()
    pol = managed("shared", document)
    att = make_resource(
        "aws:iam/policyAttachment:PolicyAttachment",
        "shared-attach",
        {"roles": ["other", "exec"], "policyArn": pol.outputs["arn"]},
        provider_inputs=PROVIDER,
    )
    return [r, pol, att]


def passed_by_microvm(document, *, known=True, role_in_stack=True):
    r = role(name="plain-role", tags={"team": "x"})
    vm = make_resource(
        "aws:lambdamicrovms/microvm:Microvm",
        "vm",
        {
            "imageArn": "arn:aws:lambda:us-east-1:111111111111:microvm-image:img",
            "executionRoleArn": arn_of("plain-role") if known else UNKNOWN,
        },
        provider_inputs=PROVIDER,
        property_dependencies={"executionRoleArn": [r.urn]} if role_in_stack else {},
    )
    recs = [r, role_policy(r, document)] if role_in_stack else []
    return [*recs, vm]


def passed_by_command(document, *, known=True):
    r = role(name="smoke-role", tags=None)
    cmd = make_resource(
        "command:local:Command",
        "smoke",
        {
            "create": "python -m microvms smoke",
            "environment": {
                "MICROVMS_EXECUTION_ROLE_ARN": arn_of("smoke-role") if known else UNKNOWN,
                "AWS_REGION": "us-east-1",
            },
        },
        property_dependencies={"environment": [r.urn]},
    )
    return [r, role_policy(r, document), cmd]


def exclusive_via_deps(document):
    """RolePolicyAttachmentsExclusive whose policyArns are unknown in preview (deps resolve them)."""
    r = role()
    pol = managed("app", document)
    att = make_resource(
        "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
        "exclusive",
        {"roleName": UNKNOWN, "policyArns": UNKNOWN},
        provider_inputs=PROVIDER,
        property_dependencies={"roleName": [r.urn], "policyArns": [pol.urn]},
    )
    return [r, pol, att]


def role_managed_arns_via_deps(document):
    pol = managed("app", document)
    props = {
        "name": "exec",
        "assumeRolePolicy": TRUST,
        "tags": EXEC_TAGS,
        "managedPolicyArns": [UNKNOWN],
    }
    r = make_resource(
        "aws:iam/role:Role",
        "exec",
        props,
        provider_inputs=PROVIDER,
        property_dependencies={"managedPolicyArns": [pol.urn]},
    )
    return [pol, r]


def policy_attachment_roles_unknown(document):
    r = role()
    pol = managed("shared", document)
    att = make_resource(
        "aws:iam/policyAttachment:PolicyAttachment",
        "shared-attach",
        {"roles": UNKNOWN, "policyArn": UNKNOWN},
        provider_inputs=PROVIDER,
        property_dependencies={"roles": [r.urn], "policyArn": [pol.urn]},
    )
    return [r, pol, att]


def log_group_tag_via_dependency(*, resolvable=True):
    group = make_resource(
        "aws:cloudwatch/logGroup:LogGroup",
        "group",
        {"name": "/aws/lambda-microvms/agent-sandbox"},
        provider_inputs=PROVIDER,
        outputs={"name": "/aws/lambda-microvms/agent-sandbox", "arn": LG},
    )
    props = {
        "name": "exec",
        "assumeRolePolicy": TRUST,
        "tags": {"lambda-microvms:role": "execution", "lambda-microvms:log-group": UNKNOWN},
    }
    r = make_resource(
        "aws:iam/role:Role",
        "exec",
        props,
        provider_inputs=PROVIDER,
        property_dependencies={"tags": [group.urn]} if resolvable else {},
    )
    return [group, r, role_policy(r, doc(LOGS))]


READ = allow(["s3:GetObject", "s3:ListBucket", "dynamodb:GetItem", "dynamodb:Query"])
WRITE = allow("s3:PutObject")
LOGS = allow(["logs:CreateLogStream", "logs:PutLogEvents"], [LG, f"{LG}:*"])

# (label, graph, expected substring or None)
CASES = [
    # ---- passing ----
    ("s3-get-object", single(allow("s3:GetObject")), None),
    ("read-and-list-actions", single(READ), None),
    ("glob-get", single(allow("s3:Get*")), None),
    ("glob-list", single(allow("s3:List*")), None),
    ("glob-describe", single(allow("ec2:Describe*")), None),
    (
        "bedrock-invoke",
        single(allow(["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"])),
        None,
    ),
    ("own-log-group", single(LOGS), None),
    ("own-log-group-streams", single(allow("logs:PutLogEvents", f"{LG}:log-stream:*")), None),
    ("deny-ignored", single(READ, {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}), None),
    ("action-case-insensitive", single(allow("S3:GETOBJECT")), None),
    ("action-question-mark", single(allow("s3:GetObjec?")), None),
    ("document-as-object", single(READ, as_json=False), None),
    ("managed-read-only-access", with_managed("arn:aws:iam::aws:policy/ReadOnlyAccess"), None),
    ("managed-read-only-china", with_managed("arn:aws-cn:iam::aws:policy/ReadOnlyAccess"), None),
    (
        "managed-view-only-govcloud",
        with_managed("arn:aws-us-gov:iam::aws:policy/job-function/ViewOnlyAccess"),
        None,
    ),
    (
        "managed-s3-read-only-on-role",
        with_managed("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", via="role"),
        None,
    ),
    (
        "managed-read-only-exclusive",
        with_managed("arn:aws:iam::aws:policy/ReadOnlyAccess", via="exclusive"),
        None,
    ),
    ("customer-policy-read-only", customer(doc(READ)), None),
    ("customer-policy-preview-deps", customer(doc(READ), preview_unknown=True), None),
    (
        "role-ref-unknown-resolved-by-deps",
        (lambda r: [r, role_policy(r, doc(READ), role_ref=UNKNOWN)])(role()),
        None,
    ),
    (
        "untagged-admin-role-out-of-scope",
        [
            role(
                name="ops",
                tags={"team": "ops"},
                managedPolicyArns=["arn:aws:iam::aws:policy/AdministratorAccess"],
            )
        ],
        None,
    ),
    ("build-role-out-of-scope", single(WRITE, tags={"lambda-microvms:role": "build"}), None),
    (
        "inline-policies-read-only",
        [role(inlinePolicies=[{"name": "read", "policy": doc(READ)}])],
        None,
    ),
    ("policy-attachment-read-only", policy_attachment(doc(READ)), None),
    ("microvm-passes-read-only-role", passed_by_microvm(doc(READ)), None),
    ("command-passes-read-only-role", passed_by_command(doc(READ)), None),
    (
        "read-with-conditions",
        single(
            allow(
                "s3:GetObject",
                "arn:aws:s3:::b/*",
                Condition={"StringEquals": {"aws:ResourceAccount": ACCOUNT}},
            )
        ),
        None,
    ),
    # In a real preview the provider computes these outputs of a new role (unknown, no deps).
    (
        "preview-provider-computed-role-outputs",
        (lambda r: [r, role_policy(r, doc(READ))])(
            role(inlinePolicies=UNKNOWN, managedPolicyArns=UNKNOWN)
        ),
        None,
    ),
    (
        "preview-tags-all-computed-untagged",
        [
            make_resource(
                "aws:iam/role:Role",
                "plain",
                {"name": "plain", "assumeRolePolicy": TRUST, "tagsAll": UNKNOWN},
                provider_inputs=PROVIDER,
            )
        ],
        None,
    ),
    ("exclusive-customer-policy-via-deps", exclusive_via_deps(doc(READ)), None),
    ("role-managed-arns-customer-via-deps", role_managed_arns_via_deps(doc(READ)), None),
    ("policy-attachment-roles-unknown-via-deps", policy_attachment_roles_unknown(doc(READ)), None),
    ("preview-log-group-tag-via-log-group-dependency", log_group_tag_via_dependency(), None),
    ("own-log-group-arn-alone", single(allow("logs:CreateLogStream", LG)), None),
    (
        "deny-not-action-ignored",
        single(READ, {"Effect": "Deny", "NotAction": "s3:Get*", "Resource": "*"}),
        None,
    ),
    # ---- failing ----
    (
        "exclusive-customer-write-via-deps",
        exclusive_via_deps(doc(WRITE)),
        "exclusive attachments 'exclusive' → policy 'app', statement 0: allows non-read actions s3:PutObject (Write)",
    ),
    (
        "role-managed-arns-customer-write-via-deps",
        role_managed_arns_via_deps(doc(WRITE)),
        "managedPolicyArns → policy 'app', statement 0: allows non-read actions s3:PutObject (Write)",
    ),
    (
        "policy-attachment-roles-unknown-write",
        policy_attachment_roles_unknown(doc(WRITE)),
        "policy attachment 'shared-attach' → policy 'shared', statement 0",
    ),
    (
        "preview-log-group-tag-unknown-no-deps",
        log_group_tag_via_dependency(resolvable=False),
        "the role's lambda-microvms:log-group tag is unknown during preview and cannot be verified until apply",
    ),
    (
        "logs-specific-stream",
        single(allow("logs:PutLogEvents", f"{LG}:log-stream:abc")),
        f"Resource '{LG}:log-stream:abc' is not the role's own log group",
    ),
    (
        "logs-group-arn-star-suffix",
        single(allow("logs:PutLogEvents", f"{LG}*")),
        f"Resource '{LG}*' is not the role's own log group",
    ),
    (
        "logs-one-resource-of-two-bad",
        single(allow("logs:CreateLogStream", [LG, "*"])),
        "Resource '*' is not the role's own log group",
    ),
    (
        "logs-star-action-on-own-group",
        single(allow("logs:*", [LG, f"{LG}:*"])),
        "allows non-read actions logs:",
    ),
    (
        "permissions-management-level",
        single(allow("s3:PutBucketPolicy")),
        "s3:PutBucketPolicy (Permissions management, Write)",
    ),
    (
        "tagging-only-level",
        single(allow("s3:PutObjectTagging")),
        "s3:PutObjectTagging (Tagging, Write)",
    ),
    (
        "managed-admin-govcloud-exclusive",
        with_managed("arn:aws-us-gov:iam::aws:policy/AdministratorAccess", via="exclusive"),
        "AWS-managed policy 'arn:aws-us-gov:iam::aws:policy/AdministratorAccess', statement 0: "
        "this statement grants every action",
    ),
    (
        "managed-sqs-full-access-on-role-judged-by-document",
        with_managed("arn:aws:iam::aws:policy/AmazonSQSFullAccess", via="role"),
        "AWS-managed policy 'arn:aws:iam::aws:policy/AmazonSQSFullAccess', statement 0: allows "
        "non-read actions sqs:AddPermission",
    ),
    (
        "managed-not-in-dataset-on-role",
        with_managed("arn:aws:iam::aws:policy/AmazonSQSFullAccessV9", via="role"),
        "AWS-managed policy 'arn:aws:iam::aws:policy/AmazonSQSFullAccessV9' cannot be verified as "
        "read-only: it is not in the managed-policy dataset",
    ),
    (
        "customer-not-in-stack-on-role",
        with_managed(f"arn:aws:iam::{ACCOUNT}:policy/elsewhere", via="role"),
        f"customer-managed policy 'arn:aws:iam::{ACCOUNT}:policy/elsewhere' is not defined in this stack",
    ),
    (
        "customer-same-name-other-account",
        (lambda r, pol: [r, pol, attach(r, "arn:aws:iam::999999999999:policy/app-read")])(
            role(), managed("app-read", doc(READ))
        ),
        "customer-managed policy 'arn:aws:iam::999999999999:policy/app-read' is not defined in this stack",
    ),
    (
        "preview-customer-matched-by-name-while-arn-unknown",
        (lambda r, pol: [r, pol, attach(r, f"arn:aws:iam::{ACCOUNT}:policy/app-read")])(
            role(), managed("app-read", doc(WRITE), arn=UNKNOWN)
        ),
        "policy 'app-read', statement 0: allows non-read actions s3:PutObject (Write)",
    ),
    (
        "customer-not-in-stack-exclusive",
        with_managed(f"arn:aws:iam::{ACCOUNT}:policy/elsewhere", via="exclusive"),
        "is not defined in this stack, so it cannot be verified as read-only; it fails closed",
    ),
    (
        "preview-role-tag-value-unknown",
        [role(tags={"lambda-microvms:role": UNKNOWN})],
        "'tags.lambda-microvms:role' is unknown during preview",
    ),
    ("s3-put-object", single(WRITE), "allows non-read actions s3:PutObject (Write)"),
    ("s3-star", single(allow("s3:*")), "allows non-read actions s3:"),
    ("star", single(allow("*")), 'this statement grants every action: its Action is "*"'),
    ("tagging-write", single(allow("iam:TagRole")), "iam:TagRole (Tagging, Write)"),
    ("pass-role", single(allow("iam:PassRole", arn_of("x"))), "iam:PassRole (Write)"),
    ("kms-decrypt-is-write", single(allow("kms:Decrypt")), "kms:Decrypt (Write)"),
    (
        "write-scoped-and-conditioned",
        single(
            allow(
                "s3:PutObject",
                "arn:aws:s3:::b/only/this",
                Condition={"Bool": {"aws:SecureTransport": "true"}},
            )
        ),
        "s3:PutObject (Write)",
    ),
    (
        "not-action",
        single({"Effect": "Allow", "NotAction": ["s3:Get*"], "Resource": "*"}),
        "NotAction grants every action except 's3:Get*', including non-read ones such as",
    ),
    (
        "typo-action",
        single(allow("s3:GetObjectt")),
        "action 's3:GetObjectt' is not in the IAM action dataset",
    ),
    (
        "unknown-service",
        single(allow("foo:Bar")),
        "action 'foo:Bar' is not in the IAM action dataset",
    ),
    (
        "logs-on-star",
        single(allow(["logs:CreateLogStream", "logs:PutLogEvents"])),
        "Resource '*' is not the role's own log group",
    ),
    (
        "logs-other-group",
        single(allow("logs:PutLogEvents", LG.replace("agent-sandbox", "other"))),
        "is not the role's own log group",
    ),
    (
        "logs-not-resource",
        single(
            {
                "Effect": "Allow",
                "Action": "logs:PutLogEvents",
                "NotResource": "arn:aws:logs:*:*:log-group:/secret",
            }
        ),
        "it uses NotResource",
    ),
    (
        "logs-without-tag",
        single(LOGS, tags={"lambda-microvms:role": "execution"}),
        "the role has no lambda-microvms:log-group tag",
    ),
    (
        "logs-tag-wrong-prefix",
        single(
            allow("logs:PutLogEvents", "arn:aws:logs:us-east-1:111111111111:log-group:/app/x"),
            tags={
                "lambda-microvms:role": "execution",
                "lambda-microvms:log-group": "arn:aws:logs:us-east-1:111111111111:log-group:/app/x",
            },
        ),
        "is not under one of /aws/lambda-microvms/, /aws/lambda/microvms/",
    ),
    (
        "logs-tag-wildcard",
        single(
            allow(
                "logs:PutLogEvents",
                "arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda-microvms/*",
            ),
            tags={
                "lambda-microvms:role": "execution",
                "lambda-microvms:log-group": "arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda-microvms/*",
            },
        ),
        "contains a wildcard",
    ),
    (
        "logs-create-log-group",
        single(allow("logs:CreateLogGroup", LG)),
        "logs:CreateLogGroup (Write)",
    ),
    (
        "managed-administrator",
        with_managed("arn:aws:iam::aws:policy/AdministratorAccess"),
        "AdministratorAccess', statement 0: this statement grants every action",
    ),
    (
        "managed-power-user",
        with_managed("arn:aws:iam::aws:policy/PowerUserAccess"),
        "PowerUserAccess",
    ),
    (
        "managed-basic-execution",
        with_managed("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"),
        "logs:CreateLogGroup (Write), logs:CreateLogStream (Write), logs:PutLogEvents (Write); "
        "log writes are only allowed on the role's own log group",
    ),
    (
        "managed-admin-china-on-role",
        with_managed("arn:aws-cn:iam::aws:policy/AdministratorAccess", via="role"),
        "grants every action",
    ),
    (
        "managed-bedrock-full-access-judged-by-document",
        with_managed("arn:aws:iam::aws:policy/AmazonBedrockFullAccess"),
        "attach a read-only policy that fits, e.g. arn:aws:iam::aws:policy/AmazonBedrockReadOnly",
    ),
    (
        "managed-power-user-exclusive",
        with_managed("arn:aws:iam::aws:policy/PowerUserAccess", via="exclusive"),
        "PowerUserAccess",
    ),
    (
        "customer-not-in-stack",
        customer(doc(READ), in_stack=False),
        "customer-managed policy 'arn:aws:iam::111111111111:policy/app-read' is not defined in this stack",
    ),
    ("customer-policy-write", customer(doc(WRITE)), "s3:PutObject (Write)"),
    (
        "customer-policy-preview-write",
        customer(doc(WRITE), preview_unknown=True),
        "s3:PutObject (Write)",
    ),
    (
        "preview-policy-arn-unknown-no-deps",
        (lambda r: [r, attach(r, UNKNOWN)])(role()),
        "'policyArn' is unknown during preview, so this guardrail cannot be verified until apply",
    ),
    (
        "preview-policy-document-unknown",
        (lambda r: [r, role_policy(r, UNKNOWN)])(role()),
        "'policy' is unknown during preview",
    ),
    (
        "preview-action-unknown",
        single(allow(UNKNOWN), as_json=False),
        "its Action is unknown during preview and cannot be verified until apply",
    ),
    (
        "preview-log-resource-unknown",
        single(allow("logs:PutLogEvents", UNKNOWN), as_json=False),
        "its Resource is unknown during preview",
    ),
    (
        "inline-policies-write",
        [role(inlinePolicies=[{"name": "w", "policy": doc(WRITE)}])],
        "inline policy 'w'",
    ),
    ("policy-attachment-write", policy_attachment(doc(WRITE)), "policy attachment 'shared-attach'"),
    (
        "microvm-passes-write-role",
        passed_by_microvm(doc(WRITE)),
        "passed as execution role by aws:lambdamicrovms/microvm:Microvm 'vm'",
    ),
    (
        "microvm-passes-unknown-arn",
        passed_by_microvm(doc(WRITE), known=False),
        "s3:PutObject (Write)",
    ),
    (
        "microvm-passes-role-not-in-stack",
        passed_by_microvm(doc(READ), role_in_stack=False),
        "no such role is defined in this stack",
    ),
    (
        "command-passes-write-role",
        passed_by_command(doc(WRITE)),
        "passed as execution role by command:local:Command 'smoke'",
    ),
    (
        "command-passes-unknown-arn",
        passed_by_command(doc(WRITE), known=False),
        "s3:PutObject (Write)",
    ),
    ("preview-role-tags-unknown", [role(tags=UNKNOWN)], "'tags' is unknown during preview"),
    (
        "preview-inline-policies-derived-unknown",
        (
            lambda p: [
                p,
                make_resource(
                    "aws:iam/role:Role",
                    "exec",
                    {
                        "name": "exec",
                        "assumeRolePolicy": TRUST,
                        "tags": EXEC_TAGS,
                        "inlinePolicies": UNKNOWN,
                    },
                    provider_inputs=PROVIDER,
                    property_dependencies={"inlinePolicies": [p.urn]},
                ),
            ]
        )(managed("src", doc(READ))),
        "'inlinePolicies' is unknown during preview",
    ),
    (
        "bedrock-other-action",
        single(allow("bedrock:CreateModelCustomizationJob")),
        "bedrock:CreateModelCustomizationJob (Write)",
    ),
    (
        "deny-does-not-rescue",
        single(WRITE, {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"}),
        "statement 0",
    ),
    (
        "second-statement-bad",
        single(READ, allow("sqs:SendMessage", Sid="Send")),
        "statement 1 (Sid 'Send'): allows non-read actions sqs:SendMessage (Write)",
    ),
    (
        "invalid-document",
        (lambda r: [r, role_policy(r, "{oops")])(role()),
        "not a valid policy document",
    ),
]


@pytest.fixture(scope="module")
def pool():
    p = PackPool()
    yield p
    p.close()


@pytest.mark.parametrize("dry_run", MODES)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(("label", "graph", "expect"), CASES, ids=[c[0] for c in CASES])
def test_execution_role_table(pool, dry_run, scope, label, graph, expect):
    pack = pool.get(dry_run=dry_run, config=policy_config(POLICY, scope))
    check_case(pack.run(graph), POLICY, expect, label)


@pytest.mark.parametrize("dry_run", MODES)
def test_config_knobs(pool, dry_run):
    pack = pool.get(
        dry_run=dry_run,
        config=policy_config(
            POLICY,
            "alone",
            {
                "allowedActions": ["s3:PutObject", "sqs:Send*"],
                "executionRoleNames": ["legacy-runner"],
                "logGroupPrefixes": ["/app/"],
            },
        ),
    )
    check_case(
        pack.run(single(allow(["s3:PutObject", "sqs:SendMessage"]))), POLICY, None, "allowedActions"
    )
    check_case(
        pack.run(single(allow("s3:DeleteObject"))), POLICY, "s3:DeleteObject (Write)", "not allowed"
    )
    legacy = role(name="legacy-runner", tags=None)
    check_case(
        pack.run([legacy, role_policy(legacy, doc(allow("s3:DeleteObject")))]),
        POLICY,
        "named in executionRoleNames",
        "executionRoleNames",
    )
    check_case(
        pack.run([legacy, role_policy(legacy, doc(READ))]),
        POLICY,
        None,
        "executionRoleNames read-only",
    )
    own = "arn:aws:logs:us-east-1:111111111111:log-group:/app/x"
    tagged = role(tags={"lambda-microvms:role": "execution", "lambda-microvms:log-group": own})
    check_case(
        pack.run([tagged, role_policy(tagged, doc(allow("logs:PutLogEvents", [own, f"{own}:*"])))]),
        POLICY,
        None,
        "prefix /app/",
    )
    check_case(
        pack.run(single(LOGS)),
        POLICY,
        "is not under one of /app/",
        "default prefix no longer allowed",
    )


def test_violation_points_at_the_attaching_resource(pool):
    pack = pool.get(dry_run=False, config=policy_config(POLICY, "alone"))
    graph = single(WRITE)
    diags = only(pack.run(graph), POLICY)
    assert [d.urn for d in diags] == [graph[1].urn]
    assert (
        "role 'exec' (tagged lambda-microvms:role=execution), role policy 'inline', statement 0"
        in diags[0].message
    )
    assert "Fix: remove these from statement 0" in diags[0].message


def test_read_only_access_note_is_advisory(pool):
    pack = pool.get(dry_run=False, config={})
    diags = pack.run(with_managed("arn:aws:iam::aws:policy/ReadOnlyAccess"))
    assert not only(diags, POLICY)
    notes = only(diags, "execution-role-broad-read-access")
    assert len(notes) == 1 and notes[0].enforcement_level == "advisory"
    assert "consider a narrower read-only policy" in notes[0].message


# ---- property-based: Read/List-only statements pass; one Write action fails ---------------


def _dataset():
    """Read/List and Write actions of a few services, from the same dataset the pack uses."""
    import importlib.util
    import sys

    from devkit.offline.config import REPO_ROOT

    # Load iam_docs by path under a private name: the pack's module names must not leak into
    # sys.modules of the test process.
    spec = importlib.util.spec_from_file_location(
        "_policy_iam_docs", REPO_ROOT / "policies" / "iam_docs.py"
    )
    iam_docs = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = iam_docs  # dataclasses look their module up while the class is built
    spec.loader.exec_module(iam_docs)

    services = ["s3", "dynamodb", "ec2", "logs", "sqs", "lambda", "ecr", "kms", "sns", "cloudwatch"]
    actions = [a for s in services for a in iam_docs.service_actions(s)]
    # Actions the pack's reviewed exception table decides (e.g. cloudwatch:CreateOneTimeDeepLinkCode,
    # read-equivalent) are not plain writes: keep them out of the write sample.
    exceptions_spec = importlib.util.spec_from_file_location(
        "_policy_action_exceptions", REPO_ROOT / "policies" / "action_exceptions.py"
    )
    exceptions = importlib.util.module_from_spec(exceptions_spec)
    sys.modules[exceptions_spec.name] = exceptions
    sys.modules["iam_docs"] = iam_docs  # its one sibling import, only while it loads
    try:
        exceptions_spec.loader.exec_module(exceptions)
    finally:
        del sys.modules["iam_docs"]
    decided = set(exceptions.ACTION_EXCEPTIONS)
    read = sorted(a.name for a in actions if a.read_only)
    write = sorted(a.name for a in actions if "Write" in a.levels and a.name not in decided)
    return read, write


READ_ACTIONS, WRITE_ACTIONS = _dataset()
statements = st.lists(
    st.builds(
        lambda actions, resource: allow(actions, resource),
        st.lists(st.sampled_from(READ_ACTIONS), min_size=1, max_size=6, unique=True),
        st.sampled_from(
            ["*", "arn:aws:s3:::bucket/*", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/t"]
        ),
    ),
    min_size=1,
    max_size=4,
)


@pytest.fixture(scope="module")
def hypothesis_pack(pool):
    return pool.get(dry_run=False, config=policy_config(POLICY, "alone"))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stmts=statements,
    write=st.sampled_from(WRITE_ACTIONS),
    where=st.integers(min_value=0, max_value=3),
)
def test_property_read_only_passes_one_write_fails(hypothesis_pack, stmts, write, where):
    check_case(hypothesis_pack.run(single(*stmts)), POLICY, None, f"read-only {stmts}")
    index = where % len(stmts)
    mutated = [dict(s) for s in stmts]
    mutated[index]["Action"] = [*mutated[index]["Action"], write]
    check_case(hypothesis_pack.run(single(*mutated)), POLICY, f"{write} (", f"with {write}")


@pytest.mark.parametrize("dry_run", MODES)
def test_execution_role_names_physical_or_outside_the_stack(pool, dry_run):
    pack = pool.get(
        dry_run=dry_run,
        config=policy_config(POLICY, "alone", {"executionRoleNames": ["external-runner"]}),
    )

    def external_policy(document):
        return make_resource(
            "aws:iam/rolePolicy:RolePolicy",
            "ext",
            {"role": "external-runner", "policy": document},
            provider_inputs=PROVIDER,
        )

    # A role made elsewhere: what this stack attaches to it by name is still judged.
    check_case(
        pack.run([external_policy(doc(WRITE))]),
        POLICY,
        "role 'external-runner' (named in executionRoleNames), role policy 'ext', statement 0: "
        "allows non-read actions s3:PutObject (Write)",
        "outside the stack",
    )
    check_case(pack.run([external_policy(doc(READ))]), POLICY, None, "outside, read-only")
    # A role in the stack whose physical name (not its Pulumi name) is listed.
    r = make_resource(
        "aws:iam/role:Role",
        "runner",
        {"name": "external-runner", "assumeRolePolicy": TRUST},
        provider_inputs=PROVIDER,
    )
    check_case(
        pack.run([r, external_policy(doc(allow("sqs:SendMessage")))]),
        POLICY,
        "role 'runner' (named in executionRoleNames), role policy 'ext', statement 0: "
        "allows non-read actions sqs:SendMessage (Write)",
        "physical name",
    )
