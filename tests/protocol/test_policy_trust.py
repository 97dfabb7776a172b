"""lambda-trust-source-account (and source-arn-microvm-image-condition) over the Analyzer protocol."""

from __future__ import annotations

import json

import pytest

from tests.protocol.test_policy_support import (
    ACCOUNT,
    MODES,
    OTHER_ACCOUNT,
    PROVIDER,
    SCOPES,
    UNKNOWN,
    PackPool,
    check_case,
    lambda_statement,
    only,
    policy_config,
    role,
    trust_doc,
)

pytestmark = pytest.mark.protocol

POLICY = "lambda-trust-source-account"
SA = "aws:SourceAccount"
ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:microvm-image:img"


def cond(operator: str, key: str, value) -> dict:
    return {operator: {key: value}}


# (label, trust document, expected message substring or None for "passes")
CASES = [
    # ---- passing ----
    (
        "source-account-string-equals",
        trust_doc(lambda_statement(cond("StringEquals", SA, ACCOUNT))),
        None,
    ),
    (
        "document-as-object",
        trust_doc(lambda_statement(cond("StringEquals", SA, ACCOUNT)), as_json=False),
        None,
    ),
    ("source-account-list", trust_doc(lambda_statement(cond("StringEquals", SA, [ACCOUNT]))), None),
    (
        "source-account-string-like",
        trust_doc(lambda_statement(cond("StringLike", SA, ACCOUNT))),
        None,
    ),
    (
        "for-any-value-string-equals",
        trust_doc(lambda_statement(cond("ForAnyValue:StringEquals", SA, ACCOUNT))),
        None,
    ),
    (
        "key-case-insensitive",
        trust_doc(lambda_statement(cond("StringEquals", "AWS:SOURCEACCOUNT", ACCOUNT))),
        None,
    ),
    (
        "source-arn-arn-like",
        trust_doc(
            lambda_statement(
                cond("ArnLike", "aws:SourceArn", f"arn:aws:lambda:us-east-1:{ACCOUNT}:*")
            )
        ),
        None,
    ),
    (
        "source-arn-arn-equals",
        trust_doc(
            lambda_statement(
                cond("ArnEquals", "aws:SourceArn", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f")
            )
        ),
        None,
    ),
    (
        "source-arn-string-equals",
        trust_doc(
            lambda_statement(
                cond(
                    "StringEquals",
                    "aws:SourceArn",
                    f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f",
                )
            )
        ),
        None,
    ),
    (
        "source-arn-other-partition",
        trust_doc(
            lambda_statement(
                cond("StringLike", "aws:SourceArn", f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:*")
            )
        ),
        None,
    ),
    (
        "two-statements-both-conditioned",
        trust_doc(
            lambda_statement(cond("StringEquals", SA, ACCOUNT)),
            lambda_statement(
                cond("ArnLike", "aws:SourceArn", f"arn:aws:lambda:*:{ACCOUNT}:*"),
                Action="sts:TagSession",
            ),
        ),
        None,
    ),
    (
        "not-lambda-ec2-out-of-scope",
        trust_doc(lambda_statement(Principal={"Service": "ec2.amazonaws.com"})),
        None,
    ),
    (
        "lambda-tag-session-only-out-of-scope",
        trust_doc(lambda_statement(Action="sts:TagSession")),
        None,
    ),
    (
        "not-action-excludes-assume-role",
        trust_doc(lambda_statement(NotAction="sts:AssumeRole", Action=None)),
        None,
    ),
    (
        "deny-protects-whole-role",
        trust_doc(
            lambda_statement(),
            {
                "Effect": "Deny",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": cond("StringNotEquals", SA, ACCOUNT),
            },
        ),
        None,
    ),
    (
        "source-account-and-other-conditions",
        trust_doc(
            lambda_statement(
                {"StringEquals": {SA: ACCOUNT}, "StringEqualsIfExists": {"aws:SourceOrgID": "o-1"}}
            )
        ),
        None,
    ),
    (
        "service-list-conditioned",
        trust_doc(
            lambda_statement(
                cond("StringEquals", SA, ACCOUNT),
                Principal={"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]},
            )
        ),
        None,
    ),
    (
        "unrelated-deny-plus-conditioned-allow",
        trust_doc(
            lambda_statement(cond("StringEquals", SA, ACCOUNT)),
            {"Effect": "Deny", "Principal": "*", "Action": "sts:TagSession"},
        ),
        None,
    ),
    (
        "sts-star-conditioned",
        trust_doc(lambda_statement(cond("StringEquals", SA, ACCOUNT), Action="sts:*")),
        None,
    ),
    (
        "single-statement-object",
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": lambda_statement(cond("StringEquals", SA, ACCOUNT)),
            }
        ),
        None,
    ),
    (
        "account-as-number",
        trust_doc(lambda_statement(cond("StringEquals", SA, int(ACCOUNT))), as_json=False),
        None,
    ),
    (
        "federated-out-of-scope",
        trust_doc(
            lambda_statement(
                Principal={"Federated": "cognito-identity.amazonaws.com"},
                Action="sts:AssumeRoleWithWebIdentity",
            )
        ),
        None,
    ),
    (
        "account-principal-out-of-scope",
        trust_doc(lambda_statement(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})),
        None,
    ),
    (
        "preview-unknown-action-not-lambda-out-of-scope",
        trust_doc(
            lambda_statement(Principal={"Service": "ec2.amazonaws.com"}, Action=UNKNOWN),
            as_json=False,
        ),
        None,
    ),
    (
        "preview-unknown-principal-tag-session-out-of-scope",
        trust_doc(lambda_statement(Principal=UNKNOWN, Action="sts:TagSession"), as_json=False),
        None,
    ),
    (
        "deny-protects-unknown-allow",
        trust_doc(
            lambda_statement(Principal=UNKNOWN),
            {
                "Effect": "Deny",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": cond("StringNotEquals", SA, ACCOUNT),
            },
            as_json=False,
        ),
        None,
    ),
    (
        "deny-star-principal-sts-star-protects-not-principal-allow",
        trust_doc(
            lambda_statement(Principal=None, NotPrincipal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sts:*",
                "Condition": cond("StringNotEquals", "AWS:SourceAccount", [ACCOUNT]),
            },
        ),
        None,
    ),
    # ---- failing ----
    (
        "service-principal-case-insensitive",
        trust_doc(lambda_statement(Principal={"Service": "Lambda.AmazonAWS.com"})),
        "statement 0 lets",
    ),
    (
        "action-list-contains-assume-role",
        trust_doc(lambda_statement(Action=["sts:TagSession", "sts:AssumeRole"])),
        "statement 0 lets",
    ),
    (
        "document-as-object-unconditioned",
        trust_doc(lambda_statement(), as_json=False),
        "statement 0 lets lambda.amazonaws.com call sts:AssumeRole without an effective source condition: it has no Condition",
    ),
    (
        "source-account-empty-list",
        trust_doc(lambda_statement(cond("StringEquals", SA, []))),
        "'StringEquals' on 'aws:SourceAccount': no values",
    ),
    (
        "source-account-question-mark",
        trust_doc(lambda_statement(cond("StringLike", SA, "11111111111?"))),
        "value '11111111111?' is not a 12-digit account id",
    ),
    (
        "source-arn-partial-wildcard-account",
        trust_doc(
            lambda_statement(cond("ArnLike", "aws:SourceArn", "arn:aws:lambda:us-east-1:1111*:*"))
        ),
        "has no account in its account field",
    ),
    (
        "source-arn-if-exists",
        trust_doc(lambda_statement(cond("ArnLikeIfExists", "aws:SourceArn", ARN))),
        "'ArnLikeIfExists' on 'aws:SourceArn': an ...IfExists operator passes when the key is absent",
    ),
    (
        "source-arn-negated-on-allow",
        trust_doc(lambda_statement(cond("ArnNotLike", "aws:SourceArn", ARN))),
        "'ArnNotLike' on 'aws:SourceArn': a negated operator on an Allow admits every other account",
    ),
    (
        "string-not-like-on-allow",
        trust_doc(lambda_statement(cond("StringNotLike", SA, OTHER_ACCOUNT))),
        "a negated operator on an Allow",
    ),
    (
        "for-any-value-string-like-not-accepted",
        trust_doc(lambda_statement(cond("ForAnyValue:StringLike", SA, ACCOUNT))),
        "use one of StringEquals, StringLike, ForAnyValue:StringEquals",
    ),
    (
        "for-all-values-source-arn",
        trust_doc(lambda_statement(cond("ForAllValues:ArnLike", "aws:SourceArn", ARN))),
        "ForAllValues: passes when the key is absent",
    ),
    (
        "deny-with-a-foreign-account-no-protection",
        trust_doc(
            lambda_statement(),
            {
                "Effect": "Deny",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": cond("StringNotEquals", SA, [ACCOUNT, OTHER_ACCOUNT]),
            },
        ),
        "statement 0 lets",
    ),
    (
        "deny-for-other-principal-no-protection",
        trust_doc(
            lambda_statement(),
            {
                "Effect": "Deny",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": cond("StringNotEquals", SA, ACCOUNT),
            },
        ),
        "statement 0 lets",
    ),
    (
        "preview-unknown-action-for-lambda",
        trust_doc(lambda_statement(Action=UNKNOWN), as_json=False),
        "trust policy statement 0: 'Principal/Action' is unknown during preview",
    ),
    (
        "preview-unknown-statement",
        {"Version": "2012-10-17", "Statement": [UNKNOWN]},
        "'Principal/Action' is unknown during preview, so this guardrail cannot be verified until apply; it fails closed",
    ),
    (
        "no-condition",
        trust_doc(lambda_statement()),
        "statement 0 lets lambda.amazonaws.com call sts:AssumeRole without an effective source condition: it has no Condition",
    ),
    (
        "if-exists",
        trust_doc(lambda_statement(cond("StringEqualsIfExists", SA, ACCOUNT))),
        "IfExists operator passes when the key is absent",
    ),
    (
        "for-all-values",
        trust_doc(lambda_statement(cond("ForAllValues:StringEquals", SA, ACCOUNT))),
        "ForAllValues: passes when the key is absent",
    ),
    (
        "negated-on-allow",
        trust_doc(lambda_statement(cond("StringNotEquals", SA, OTHER_ACCOUNT))),
        "negated operator on an Allow",
    ),
    (
        "null-operator",
        trust_doc(lambda_statement(cond("Null", SA, "false"))),
        "Null only tests whether the key is present",
    ),
    (
        "principal-account-key",
        trust_doc(lambda_statement(cond("StringEquals", "aws:PrincipalAccount", ACCOUNT))),
        "'aws:PrincipalAccount': only aws:SourceAccount or aws:SourceArn",
    ),
    (
        "source-org-id-key",
        trust_doc(lambda_statement(cond("StringEquals", "aws:SourceOrgID", "o-abc"))),
        "'aws:SourceOrgID'",
    ),
    (
        "source-org-paths-key",
        trust_doc(lambda_statement(cond("ForAnyValue:StringLike", "aws:SourceOrgPaths", "o-a/*"))),
        "'aws:SourceOrgPaths'",
    ),
    (
        "requested-region-key",
        trust_doc(lambda_statement(cond("StringEquals", "aws:RequestedRegion", "us-east-1"))),
        "'aws:RequestedRegion'",
    ),
    (
        "source-account-wildcard",
        trust_doc(lambda_statement(cond("StringLike", SA, "*"))),
        "value '*' is not a 12-digit account id",
    ),
    (
        "source-account-other",
        trust_doc(lambda_statement(cond("StringEquals", SA, OTHER_ACCOUNT))),
        f"account {OTHER_ACCOUNT} is not a deploying account; deploying: {ACCOUNT}",
    ),
    (
        "source-account-one-of-two-foreign",
        trust_doc(lambda_statement(cond("StringEquals", SA, [ACCOUNT, OTHER_ACCOUNT]))),
        f"account {OTHER_ACCOUNT} is not a deploying account",
    ),
    (
        "source-account-short",
        trust_doc(lambda_statement(cond("StringEquals", SA, "12345"))),
        "value '12345' is not a 12-digit account id",
    ),
    (
        "source-arn-wildcard-account",
        trust_doc(lambda_statement(cond("ArnLike", "aws:SourceArn", "arn:aws:lambda:*:*:*"))),
        "has no account in its account field",
    ),
    (
        "source-arn-account-less",
        trust_doc(lambda_statement(cond("ArnLike", "aws:SourceArn", "arn:aws:s3:::bucket"))),
        "has no account in its account field",
    ),
    (
        "source-arn-other-account",
        trust_doc(
            lambda_statement(
                cond("ArnLike", "aws:SourceArn", f"arn:aws:lambda:us-east-1:{OTHER_ACCOUNT}:*")
            )
        ),
        f"account {OTHER_ACCOUNT} in",
    ),
    (
        "source-arn-not-an-arn",
        trust_doc(lambda_statement(cond("StringLike", "aws:SourceArn", "*"))),
        "value '*' is not an ARN",
    ),
    (
        "source-arn-for-any-value",
        trust_doc(lambda_statement(cond("ForAnyValue:ArnLike", "aws:SourceArn", ARN))),
        "use one of ArnEquals, ArnLike, StringEquals, StringLike",
    ),
    (
        "source-account-arn-operator",
        trust_doc(lambda_statement(cond("ArnLike", SA, ACCOUNT))),
        "use one of StringEquals, StringLike, ForAnyValue:StringEquals",
    ),
    ("principal-star", trust_doc(lambda_statement(Principal="*")), "statement 0 lets"),
    ("principal-aws-star", trust_doc(lambda_statement(Principal={"AWS": "*"})), "statement 0 lets"),
    (
        "not-principal",
        trust_doc(
            lambda_statement(
                Principal=None, NotPrincipal={"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}
            )
        ),
        "statement 0 lets",
    ),
    ("action-star", trust_doc(lambda_statement(Action="*")), "statement 0 lets"),
    ("action-glob", trust_doc(lambda_statement(Action="sts:Assume*")), "statement 0 lets"),
    ("action-case", trust_doc(lambda_statement(Action="STS:ASSUMEROLE")), "statement 0 lets"),
    (
        "action-question-mark",
        trust_doc(lambda_statement(Action="sts:AssumeRol?")),
        "statement 0 lets",
    ),
    (
        "not-action-keeps-assume-role",
        trust_doc(lambda_statement(NotAction="sts:TagSession", Action=None)),
        "statement 0 lets",
    ),
    (
        "service-list-unconditioned",
        trust_doc(
            lambda_statement(Principal={"Service": ["ec2.amazonaws.com", "lambda.amazonaws.com"]})
        ),
        "statement 0 lets",
    ),
    (
        "second-statement-unconditioned",
        trust_doc(
            lambda_statement(cond("StringEquals", SA, ACCOUNT), Sid="Good"),
            lambda_statement(Sid="Bad"),
        ),
        "statement 1 (Sid 'Bad')",
    ),
    (
        "deny-other-account-no-protection",
        trust_doc(
            lambda_statement(),
            {
                "Effect": "Deny",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": cond("StringNotEquals", SA, OTHER_ACCOUNT),
            },
        ),
        "statement 0 lets",
    ),
    (
        "deny-if-exists-no-protection",
        trust_doc(
            lambda_statement(),
            {
                "Effect": "Deny",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": cond("StringNotEqualsIfExists", SA, ACCOUNT),
            },
        ),
        "statement 0 lets",
    ),
    ("invalid-json", "{not json", "assumeRolePolicy is not a valid policy document"),
    (
        "preview-unknown-document",
        UNKNOWN,
        "'assumeRolePolicy' is unknown during preview, so this guardrail cannot be verified until apply",
    ),
    (
        "preview-unknown-condition-value",
        trust_doc(lambda_statement(cond("StringEquals", SA, UNKNOWN)), as_json=False),
        "cannot be verified until apply",
    ),
    (
        "preview-unknown-principal",
        trust_doc(lambda_statement(Principal=UNKNOWN), as_json=False),
        "'Principal/Action' is unknown during preview",
    ),
]


def _clean(doc):
    """Drop keys the table set to None (e.g. Action replaced by NotAction)."""
    if isinstance(doc, str):
        try:
            data = json.loads(doc)
        except json.JSONDecodeError:
            return doc
        return json.dumps(_clean(data))
    if isinstance(doc, dict):
        return {k: _clean(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [_clean(v) for v in doc]
    return doc


@pytest.fixture(scope="module")
def pool():
    p = PackPool()
    yield p
    p.close()


@pytest.mark.parametrize("dry_run", MODES)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize(("label", "document", "expect"), CASES, ids=[c[0] for c in CASES])
def test_trust_table(pool, dry_run, scope, label, document, expect):
    pack = pool.get(dry_run=dry_run, config=policy_config(POLICY, scope))
    diags = pack.run([role(f"r-{label}", _clean(document))])
    check_case(diags, POLICY, expect, label)


@pytest.mark.parametrize("dry_run", MODES)
def test_fails_closed_without_deploying_accounts(pool, dry_run):
    pack = pool.get(dry_run=dry_run, config=policy_config(POLICY, "alone"))
    for provider in (
        {"region": "us-east-1"},
        {"region": "us-east-1", "allowedAccountIds": UNKNOWN},
    ):
        diags = pack.run(
            [
                role(
                    "r",
                    trust_doc(lambda_statement(cond("StringEquals", SA, ACCOUNT))),
                    provider=provider,
                )
            ]
        )
        check_case(diags, POLICY, "deploying account ids cannot be determined", str(provider))
    # Out of scope roles are not affected by the missing accounts.
    diags = pack.run(
        [
            role(
                "ec2",
                trust_doc(lambda_statement(Principal={"Service": "ec2.amazonaws.com"})),
                provider={"region": "us-east-1"},
            )
        ]
    )
    check_case(diags, POLICY, None, "ec2 role")


@pytest.mark.parametrize("dry_run", MODES)
def test_account_ids_from_policy_config_win_over_provider(pool, dry_run):
    pack = pool.get(
        dry_run=dry_run, config=policy_config(POLICY, "alone", {"accountIds": [OTHER_ACCOUNT]})
    )
    ok = pack.run([role("r", trust_doc(lambda_statement(cond("StringEquals", SA, OTHER_ACCOUNT))))])
    check_case(ok, POLICY, None, "config account")
    bad = pack.run([role("r", trust_doc(lambda_statement(cond("StringEquals", SA, ACCOUNT))))])
    check_case(
        bad,
        POLICY,
        f"account {ACCOUNT} is not a deploying account; deploying: {OTHER_ACCOUNT}",
        "provider account",
    )


def test_message_names_resource_and_fix(pool):
    pack = pool.get(dry_run=False, config=policy_config(POLICY, "alone"))
    diags = only(pack.run([role("exec-role", trust_doc(lambda_statement()))]), POLICY)
    assert len(diags) == 1
    msg = diags[0].message
    assert "role 'exec-role'" in msg
    assert (
        f'Fix: add "Condition": {{"StringEquals": {{"aws:SourceAccount": "{ACCOUNT}"}}}} to statement 0'
        in msg
    )
    assert diags[0].urn.endswith("::exec-role")


def test_provider_account_list_forms(pool):
    pack = pool.get(dry_run=False, config=policy_config(POLICY, "alone"))
    doc = trust_doc(lambda_statement(cond("StringEquals", SA, ACCOUNT)))
    for value in ([ACCOUNT], json.dumps([ACCOUNT]), ACCOUNT):
        diags = pack.run([role("r", doc, provider={**PROVIDER, "allowedAccountIds": value})])
        check_case(diags, POLICY, None, repr(value))


# ---- source-arn-microvm-image-condition (advisory) ----------------------------------------

ARN_POLICY = "source-arn-microvm-image-condition"


@pytest.mark.parametrize(
    ("label", "document", "warns"),
    [
        (
            "arn-like-image-star",
            trust_doc(
                lambda_statement(
                    {
                        "StringEquals": {SA: ACCOUNT},
                        "ArnLike": {
                            "aws:SourceArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:microvm-image:*"
                        },
                    }
                )
            ),
            True,
        ),
        (
            "slash-form",
            trust_doc(
                lambda_statement(
                    {
                        "ArnLike": {
                            "aws:SourceArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:microvm-image/*"
                        }
                    }
                )
            ),
            True,
        ),
        (
            "source-account-only",
            trust_doc(lambda_statement(cond("StringEquals", SA, ACCOUNT))),
            False,
        ),
        (
            "function-arn",
            trust_doc(
                lambda_statement(
                    cond(
                        "ArnLike", "aws:SourceArn", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:*"
                    )
                )
            ),
            False,
        ),
        (
            "not-lambda",
            trust_doc(
                lambda_statement(
                    cond("ArnLike", "aws:SourceArn", ARN),
                    Principal={"Service": "ec2.amazonaws.com"},
                )
            ),
            False,
        ),
    ],
)
def test_source_arn_image_condition(pool, label, document, warns):
    pack = pool.get(dry_run=False, config={})
    diags = only(pack.run([role("r", document)]), ARN_POLICY)
    if warns:
        assert len(diags) == 1, label
        assert diags[0].enforcement_level == "advisory"
        assert "unable to assume role" in diags[0].message
        assert "keep aws:SourceAccount only" in diags[0].message
    else:
        assert not diags, label
