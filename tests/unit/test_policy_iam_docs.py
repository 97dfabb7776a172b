"""Pure functions of the policy pack: IAM document parsing, action classification, rule cores."""

from __future__ import annotations

import importlib
import json
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.offline.config import REPO_ROOT

PACK_MODULES = (
    "iam_docs",
    "action_exceptions",
    "managed_policies",
    "policy_metadata",
    "stack_context",
    "sdk_patches",
    "graph",
    "attachments",
    "iam_trust",
    "execution_role",
    "build_role",
    "regions",
    "storage",
    "image",
)


def _load_pack_modules():
    """Import the pack's modules the way the engine does (pack dir on sys.path), then hide them.

    The pack's module names (``image``, ``graph``, ``regions`` ...) are generic; leaving them in
    ``sys.modules``/``sys.path`` would shadow e.g. the repo's ``image/`` package for other tests.
    """
    path = str(REPO_ROOT / "policies")
    saved = {n: sys.modules.pop(n) for n in PACK_MODULES if n in sys.modules}
    sys.path.insert(0, path)
    try:
        return {n: importlib.import_module(n) for n in PACK_MODULES}
    finally:
        sys.path.remove(path)
        for n in PACK_MODULES:
            sys.modules.pop(n, None)
        sys.modules.update(saved)


_PACK = _load_pack_modules()
build_role = _PACK["build_role"]
execution_role = _PACK["execution_role"]
iam_docs = _PACK["iam_docs"]
iam_trust = _PACK["iam_trust"]
regions = _PACK["regions"]
graph = _PACK["graph"]
image = _PACK["image"]
sdk_patches = _PACK["sdk_patches"]
UNKNOWN = iam_docs.UNKNOWN
DocumentError = iam_docs.DocumentError

pytestmark = pytest.mark.unit

ACCOUNT = "111111111111"


# ---- parsing -------------------------------------------------------------------------------


def test_parse_string_and_object_documents_alike():
    doc = {
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
    }
    for given_doc in (doc, json.dumps(doc)):
        [stmt] = iam_docs.parse_document(given_doc)
        assert stmt.index == 0
        assert stmt.actions == ["s3:GetObject"]
        assert stmt.resources == ["*"]
        assert stmt.not_actions is None


def test_parse_conditions_are_flattened_with_lists():
    [stmt] = iam_docs.parse_document(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT, "k": ["a", "b"]}},
                }
            ]
        }
    )
    assert [(c.operator, c.key, c.values) for c in stmt.conditions] == [
        ("StringEquals", "aws:SourceAccount", (ACCOUNT,)),
        ("StringEquals", "k", ("a", "b")),
    ]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{nope", "not valid JSON"),
        ([], "expected a JSON object, got list"),
        ({"Version": "2012-10-17"}, "missing 'Statement'"),
        ({"Statement": "x"}, "'Statement' must be an object or a list"),
        (
            {"Statement": [{"Effect": "Maybe", "Action": "*"}]},
            "statement 0: Effect must be 'Allow' or 'Deny', got 'Maybe'",
        ),
        (
            {"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "s3:*"}]},
            "statement 0: has both Action and NotAction",
        ),
        ({"Statement": [{"Effect": "Allow"}]}, "statement 0: has neither Action nor NotAction"),
        (
            {"Statement": [{"Effect": "Allow", "Action": "*", "Condition": []}]},
            "statement 0: Condition must be an object",
        ),
    ],
)
def test_parse_errors_name_the_problem(document, message):
    with pytest.raises(DocumentError) as err:
        iam_docs.parse_document(document)
    assert message in str(err.value)


def test_unknowns_are_kept_not_raised():
    stmts = iam_docs.parse_document({"Statement": UNKNOWN})
    assert stmts[0].has_unknown
    [stmt] = iam_docs.parse_document({"Statement": [{"Effect": "Allow", "Action": UNKNOWN}]})
    assert stmt.has_unknown
    assert iam_docs.contains_unknown({"a": [1, {"b": UNKNOWN}]})
    assert not iam_docs.contains_unknown({"a": [1, {"b": "x"}]})


# ---- globbing and the dataset ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("sts:AssumeRole", "STS:assumerole", True),
        ("sts:*", "sts:AssumeRole", True),
        ("sts:Assume*", "sts:AssumeRoleWithSAML", True),
        ("sts:AssumeRol?", "sts:AssumeRole", True),
        ("sts:AssumeRol?", "sts:AssumeRoles", False),
        ("*", "anything:At", True),
        ("s3:Get.bject", "s3:GetObject", False),  # regex metacharacters are literal
    ],
)
def test_glob_match(pattern, value, matches):
    assert iam_docs.glob_match(pattern, value) is matches


def test_split_combined_access_levels():
    assert iam_docs.split_levels("Tagging, Write") == {"Tagging", "Write"}
    assert iam_docs.split_levels("Read") == {"Read"}


def test_expand_action_uses_the_dataset_case_insensitively():
    [action] = iam_docs.expand_action("S3:getobject")
    assert action.name == "s3:GetObject"
    assert action.levels == {"Read"}
    assert action.read_only
    [tag] = iam_docs.expand_action("iam:TagRole")
    assert not tag.read_only and "Write" in tag.levels
    assert iam_docs.expand_action("s3:GetObjectt") == []
    assert iam_docs.expand_action("nosuchservice:Get") == []
    assert iam_docs.expand_action("no-colon") == []
    assert all(a.name.startswith("s3:Get") for a in iam_docs.expand_action("s3:Get*"))


def test_service_glob_expands_over_matching_services():
    services = {a.name.split(":")[0] for a in iam_docs.expand_action("s3*:List*")}
    assert "s3" in services and all(s.startswith("s3") for s in services)


def test_complement_is_lazy():
    iam_docs.service_actions.cache_clear()  # cold, whatever ran before in this process
    gen = iam_docs.complement_actions(["a2c:*"])
    first = next(gen)
    assert not first.name.startswith("a2c:")
    # Only the first couple of services were loaded to answer.
    assert iam_docs.service_actions.cache_info().currsize < 50


def test_account_list_forms():
    assert iam_docs.parse_account_list([ACCOUNT]) == [ACCOUNT]
    assert iam_docs.parse_account_list(json.dumps([ACCOUNT, "222222222222"])) == [
        ACCOUNT,
        "222222222222",
    ]
    assert iam_docs.parse_account_list(f"{ACCOUNT}, 222222222222") == [ACCOUNT, "222222222222"]
    assert iam_docs.parse_account_list([float(ACCOUNT)]) == [ACCOUNT]
    for bad in (None, "", [], UNKNOWN, ["123"], "[oops", [True]):
        assert iam_docs.parse_account_list(bad) is None


# ---- trust core ------------------------------------------------------------------------------


def _trust(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


LAMBDA = {
    "Effect": "Allow",
    "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole",
}


def test_trust_violations_pure():
    good = _trust({**LAMBDA, "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}})
    assert iam_trust.trust_violations(good, [ACCOUNT], "role 'r'") == []
    [msg] = iam_trust.trust_violations(_trust(LAMBDA), [ACCOUNT], "role 'r'")
    assert msg.startswith(
        "role 'r': trust policy statement 0 lets lambda.amazonaws.com call sts:AssumeRole"
    )
    [msg] = iam_trust.trust_violations(good, None, "role 'r'")
    assert "deploying account ids cannot be determined" in msg
    [msg] = iam_trust.trust_violations(UNKNOWN, [ACCOUNT], "role 'r'")
    assert "'assumeRolePolicy' is unknown during preview" in msg
    assert iam_trust.trust_violations(None, [ACCOUNT], "role 'r'") == []


def test_deny_protection_requires_only_deploying_accounts():
    deny = {
        "Effect": "Deny",
        "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole",
    }
    ok = iam_docs.parse_document(
        _trust({**deny, "Condition": {"StringNotEquals": {"aws:SourceAccount": [ACCOUNT]}}})
    )[0]
    assert iam_trust.deny_protects(ok, [ACCOUNT])
    foreign = iam_docs.parse_document(
        _trust(
            {
                **deny,
                "Condition": {"StringNotEquals": {"aws:SourceAccount": [ACCOUNT, "999999999999"]}},
            }
        )
    )[0]
    assert not iam_trust.deny_protects(foreign, [ACCOUNT])
    extra = iam_docs.parse_document(
        _trust(
            {
                **deny,
                "Condition": {
                    "StringNotEquals": {"aws:SourceAccount": ACCOUNT},
                    "Bool": {"aws:SecureTransport": "true"},
                },
            }
        )
    )[0]
    assert not iam_trust.deny_protects(extra, [ACCOUNT])


# ---- execution-role core -------------------------------------------------------------------

LG = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda-microvms/img"


def _judge(*statements, **ctx):
    return execution_role.judge_document(
        _trust(*statements), "role 'x'", execution_role.Context(**ctx)
    )


def test_judge_document_read_only_and_exceptions():
    assert (
        _judge({"Effect": "Allow", "Action": ["s3:GetObject", "ec2:Describe*"], "Resource": "*"})
        == []
    )
    assert _judge({"Effect": "Allow", "Action": "bedrock:InvokeModel*", "Resource": "*"}) == []
    logs = {
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [LG, f"{LG}:*"],
    }
    assert _judge(logs, log_group_arn=LG) == []
    [msg] = _judge(logs)
    assert "the role has no lambda-microvms:log-group tag" in msg
    assert (
        _judge(
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"},
            allowed_actions=["s3:Put*"],
        )
        == []
    )


def test_judge_document_lists_a_bounded_number_of_actions():
    [msg] = _judge({"Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    assert re.search(r"and \d+ more, \d+ in all", msg), msg
    assert (
        msg.count("(Write") + msg.count("(Tagging") + msg.count("(Permissions")
        <= execution_role.MAX_LISTED
    )


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:iam::aws:policy/ReadOnlyAccess", "ReadOnlyAccess"),
        ("arn:aws-cn:iam::aws:policy/ReadOnlyAccess", "ReadOnlyAccess"),
        (
            "arn:aws-us-gov:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "AWSLambdaBasicExecutionRole",
        ),
        (f"arn:aws:iam::{ACCOUNT}:policy/mine", None),
        ("ReadOnlyAccess", None),
    ],
)
def test_managed_policy_name_ignores_partition(arn, name):
    assert execution_role.managed_policy_name(arn) == name


def test_managed_table_verdicts():
    assert execution_role.judge_managed_arn("arn:aws:iam::aws:policy/ReadOnlyAccess", "w")[0] == []
    assert execution_role.judge_managed_arn("arn:aws:iam::aws:policy/ReadOnlyAccess", "w")[1]
    assert execution_role.judge_managed_arn("arn:aws:iam::aws:policy/AdministratorAccess", "w")[0]
    [msg] = execution_role.judge_managed_arn("arn:aws:iam::aws:policy/NewPolicy", "w")[0]
    assert "cannot be verified as read-only" in msg


@pytest.mark.parametrize(
    ("arn", "problem"),
    [
        (LG, None),
        (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/other/x", "is not under one of"),
        (
            f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda-microvms/*",
            "contains a wildcard",
        ),
        ("arn:aws:s3:::bucket", "is not a CloudWatch Logs log-group ARN"),
    ],
)
def test_check_log_group_arn(arn, problem):
    result = execution_role.check_log_group_arn(arn, graph.DEFAULT_LOG_GROUP_PREFIXES)
    assert (result is None) if problem is None else (problem in result)


# ---- small helpers -------------------------------------------------------------------------


def test_uri_and_prefix_helpers():
    assert graph.bucket_name_from_uri("s3://b/k/x.zip") == "b"
    assert graph.bucket_name_from_uri("https://b/k") is None
    assert build_role.key_prefix("images/img/x.zip") == "images/img/"
    assert build_role.key_prefix("x.zip") == "x.zip"
    assert build_role.s3_resource_ok("arn:aws:s3:::b/images/img/*", "b", "images/img/")
    assert not build_role.s3_resource_ok("arn:aws:s3:::b/*", "b", "images/img/")


# ---- property-based (pure): read-only passes, one write fails -------------------------------

_ACTIONS = [a for s in ("s3", "dynamodb", "ec2", "sqs", "iam") for a in iam_docs.service_actions(s)]
_READ = sorted(a.name for a in _ACTIONS if a.read_only)
_WRITE = sorted(a.name for a in _ACTIONS if not a.read_only)


@settings(max_examples=100, deadline=None)
@given(
    actions=st.lists(
        st.lists(st.sampled_from(_READ), min_size=1, max_size=8), min_size=1, max_size=5
    ),
    write=st.sampled_from(_WRITE),
    data=st.data(),
)
def test_property_read_only_documents_pass_and_one_write_fails(actions, write, data):
    statements = [{"Effect": "Allow", "Action": a, "Resource": "*"} for a in actions]
    assert _judge(*statements) == []
    index = data.draw(st.integers(min_value=0, max_value=len(statements) - 1))
    statements[index] = {**statements[index], "Action": [*statements[index]["Action"], write]}
    [msg] = _judge(*statements)
    assert f"statement {index}" in msg and write in msg


# ---- fail-closed guard and the SDK adaptations ---------------------------------------------


class _Args:
    name = "r"
    resource_type = "aws:iam/role:Role"


def test_guard_turns_unknown_reads_into_violations():
    from pulumi_policy.proxy import UnknownValueError

    reports = []

    @graph.guarded("p")
    def reads_unknown(args, report):
        raise UnknownValueError(UNKNOWN, ["assumeRolePolicy"])

    reads_unknown(_Args(), lambda msg, urn=None: reports.append(msg))
    [msg] = reports
    assert (
        "'assumeRolePolicy' is unknown during preview, so this guardrail cannot be verified until apply"
        in msg
    )

    @graph.guarded("p")
    def crashes(args, report):
        raise KeyError("x")

    crashes(_Args(), lambda msg, urn=None: reports.append(msg))
    assert "p could not evaluate this input (KeyError" in reports[-1]
    assert "fails closed" in reports[-1]


def test_sdk_sees_secret_marks_and_decodes_once():
    """In-process servicer (no gRPC): secrets stay recognisable, plaintext does not."""
    import pulumi_policy.policy as sdk
    from google.protobuf import struct_pb2
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy import EnforcementLevel

    props = struct_pb2.Struct()
    props.update(
        {
            "environmentVariables": {
                "API_TOKEN": {
                    "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                    "value": "s3cr3t",
                },
                "DB_PASSWORD": "plain",
            }
        }
    )
    request = analyzer_pb2.AnalyzeRequest(
        type="pulumi-python:dynamic/lambda-microvms:MicrovmImage",
        urn="urn:x",
        name="img",
        properties=props,
    )
    servicer = sdk._PolicyAnalyzerServicer(
        "t", "0.0.1", [image.image_env_plaintext_secrets], EnforcementLevel.MANDATORY
    )
    response = servicer.Analyze(request, None)
    messages = [d.message for d in response.diagnostics]
    assert len(messages) == 1
    assert "environmentVariables.DB_PASSWORD is plaintext" in messages[0]
    assert "API_TOKEN" not in messages[0]
    # The decode cache hands back the same dict for the same message object (unless it is
    # switched off with MICROVMS_POLICY_SDK_PATCHES=0: then every call decodes afresh).
    same = sdk.json_format.MessageToDict(request.properties) is sdk.json_format.MessageToDict(
        request.properties
    )
    assert same is sdk_patches.decode_cache_installed() is sdk_patches.sdk_patches_enabled()
