"""AWS-managed policies judged by their documents, the reviewed action-exception table, messages.

Pure functions of the pack (no gRPC): the walk over every AWS-managed policy in the dataset
analyses documents directly; tests/protocol/test_policy_managed.py sends a sample through the
real analyzer.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.unit.test_policy_iam_docs import _PACK, _load_pack_modules

pytestmark = pytest.mark.unit

execution_role = _PACK["execution_role"]
iam_docs = _PACK["iam_docs"]
iam_trust = _PACK["iam_trust"]
managed_policies = _PACK["managed_policies"]
action_exceptions = _PACK["action_exceptions"]

MAX_DIAGNOSTIC_CHARS = 1200  # inlined ReadOnlyAccess used to make one ~6 KB diagnostic


def arn_of(name: str, partition: str = "aws") -> str:
    entry = managed_policies.dataset()[name]
    return f"arn:{partition}:iam::aws:policy{entry['Path']}{name}"


def judge(*statements, ctx=None):
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return execution_role.judge_document(document, "w", ctx or execution_role.Context())


def allow(action, resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def _body(message: str, where: str) -> str:
    """A violation without its 'where' prefix (the ARN, or the inline policy) and its Fix."""
    assert message.startswith(where), (message, where)
    return message[len(where) :].split(" Fix:")[0]


# ---- every AWS-managed policy: verdict by ARN == verdict inlined ------------------------------


@pytest.mark.slow  # the whole managed-policy corpus (1,582 documents); make test runs it
def test_every_managed_policy_gets_the_same_verdict_by_arn_and_inlined(capsys):
    ctx = execution_role.Context()
    data = managed_policies.dataset()
    mismatched, failing = [], 0
    for name, entry in sorted(data.items()):
        by_arn, _ = execution_role.judge_managed_arn(arn_of(name), "w", ctx)
        inline = execution_role.judge_document(entry["Document"], "w", ctx)
        failing += bool(by_arn)
        where = f"w: AWS-managed policy '{arn_of(name)}'"
        if [_body(m, where) for m in by_arn] != [_body(m, "w") for m in inline]:
            mismatched.append(name)
        for message in by_arn:
            assert len(message) <= MAX_DIAGNOSTIC_CHARS, (name, len(message))
    with capsys.disabled():
        print(
            f"\n{len(data)} AWS-managed policies ({managed_policies.dataset_version()}): "
            f"verdict by ARN == inlined for {len(data) - len(mismatched)}; "
            f"{failing} fail, {len(data) - failing} pass"
        )
    assert len(data) > 1000
    assert mismatched == []


@pytest.mark.parametrize(
    "name",
    [
        "ReadOnlyAccess",
        "ViewOnlyAccess",
        "SecurityAudit",
        "CloudWatchLogsReadOnlyAccess",
        "AmazonBedrockReadOnly",
        "CloudWatchReadOnlyAccess",
        "AmazonS3ExpressReadOnlyAccess",
        "AWSDirectoryServiceDataReadOnlyAccess",
        "AWSIoTEventsReadOnlyAccess",
    ],
)
@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
def test_aws_read_only_policies_pass_inline_and_by_arn(name, partition):
    assert execution_role.judge_managed_arn(arn_of(name, partition), "w")[0] == []
    assert (
        execution_role.judge_document(
            managed_policies.dataset()[name]["Document"], "w", execution_role.Context()
        )
        == []
    )


def test_read_only_access_keeps_its_broad_note():
    violations, notes = execution_role.judge_managed_arn(arn_of("ReadOnlyAccess"), "w")
    assert violations == []
    assert len(notes) == 1 and "reads almost every service and data store" in notes[0]
    assert execution_role.judge_managed_arn(arn_of("ViewOnlyAccess"), "w") == ([], [])


def test_managed_arn_path_must_match_the_dataset():
    [message] = execution_role.judge_managed_arn(
        "arn:aws:iam::aws:policy/AWSLambdaBasicExecutionRole", "w"
    )[0]
    assert "has AWSLambdaBasicExecutionRole under path '/service-role/', not '/'" in message
    assert "it fails closed" in message


def test_unknown_managed_arn_fails_naming_it_and_suggests_a_narrow_policy():
    arn = "arn:aws:iam::aws:policy/AmazonSQSPowerUser"
    [message] = execution_role.judge_managed_arn(arn, "w")[0]
    assert f"AWS-managed policy '{arn}' cannot be verified as read-only" in message
    assert "it is not in the managed-policy dataset" in message
    assert "e.g. arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess" in message
    assert "policy/ReadOnlyAccess" not in message


def test_failing_managed_policy_suggests_the_services_own_read_only_policy():
    [message] = execution_role.judge_managed_arn(arn_of("AmazonSQSFullAccess", "aws-cn"), "w")[0]
    assert "allows non-read actions sqs:" in message
    assert "e.g. arn:aws-cn:iam::aws:policy/AmazonSQSReadOnlyAccess" in message
    assert "policy/ReadOnlyAccess" not in message


def test_missing_dataset_fails_closed(monkeypatch):
    modules = _load_pack_modules()
    mp, er = modules["managed_policies"], modules["execution_role"]
    monkeypatch.setattr(mp, "DATASET_PACKAGE", "no_such_dataset_package_xyz")
    mp._load.cache_clear()
    mp._read_only_by_stem.cache_clear()
    [message] = er.judge_managed_arn("arn:aws:iam::aws:policy/ReadOnlyAccess", "w")[0]
    assert "the managed-policy dataset is not available" in message
    assert "'no_such_dataset_package_xyz' package is not installed" in message
    assert "it fails closed" in message


def test_dataset_is_loaded_lazily_once():
    modules = _load_pack_modules()
    mp, er = modules["managed_policies"], modules["execution_role"]
    assert mp._load.cache_info().currsize == 0
    er.judge_document(json.dumps({"Statement": [allow("s3:GetObject")]}), "w", er.Context())
    assert mp._load.cache_info().currsize == 0  # inline documents never touch it
    er.judge_managed_arn("arn:aws:iam::aws:policy/ReadOnlyAccess", "w")
    er.judge_managed_arn("arn:aws:iam::aws:policy/SecurityAudit", "w")
    assert mp._load.cache_info().misses == 1


# ---- the exception table: every entry used by a case -------------------------------------------

TABLE = action_exceptions.ACTION_EXCEPTIONS


def _case_action(key: str) -> str:
    """An action an AWS policy would write for this entry (prefix keys stand for themselves)."""
    return key


@pytest.mark.parametrize("key", sorted(TABLE), ids=sorted(TABLE))
def test_every_exception_entry_decides_its_action(key):
    decision = TABLE[key]
    assert decision.reason.strip(), key
    action = _case_action(key)
    known = iam_docs.expand_action(action)
    if key.endswith("*"):
        assert not known, f"{key}: the access-level data knows it now; drop the entry"
    else:
        # Each entry corrects the data: it classifies the action above Read, or does not know it.
        assert not known or not all(a.read_only for a in known), f"{key}: already Read"
    statement = allow(action)
    if decision.condition is not None:
        operator, condition_key, value = decision.condition
        conditioned = allow(action, Condition={operator: {condition_key: value}})
        assert judge(conditioned) == [], key
        [message] = judge(statement)
        assert f"{key} {decision.reason}" in message
        return
    messages = judge(statement)
    if decision.read_equivalent:
        assert messages == [], (key, messages)
    else:
        [message] = messages
        assert f"the pack's reviewed exception table says: {key} {decision.reason}" in message


def test_exception_prefix_entries_cover_the_specific_actions():
    assert (
        judge(allow(["codestar:ListProjects", "evidently:GetFeature", "iotevents:ListInputs"]))
        == []
    )
    # A prefix entry never covers a broader pattern.
    [message] = judge(allow("codestar:*"))
    assert "action 'codestar:*' is not in the IAM action dataset" in message


def test_unknown_action_outside_the_table_fails_naming_it():
    [message] = judge(allow(["s3:GetObject", "codestar:CreateProject"]))
    assert "action 'codestar:CreateProject' is not in the IAM action dataset" in message
    assert "'actionExceptions'" in message


def test_policy_config_overrides_the_table():
    table = action_exceptions.merged_table(
        {
            "kms:Decrypt": {"readEquivalent": True, "reason": "decrypts the app's config only"},
            "iot:ListSubscriptions": {"readEquivalent": False, "reason": "not reviewed here"},
            "newsvc:Describe*": {"readEquivalent": True, "reason": "a new service's reads"},
        }
    )
    ctx = execution_role.Context(exceptions=table)
    assert judge(allow(["kms:Decrypt", "newsvc:DescribeThing"]), ctx=ctx) == []
    [message] = judge(allow("iot:ListSubscriptions"), ctx=ctx)
    assert "iot:ListSubscriptions not reviewed here" in message
    # The shipped table is untouched.
    assert action_exceptions.ACTION_EXCEPTIONS["kms:Decrypt"].read_equivalent is False


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            {"kms:*:x": {"readEquivalent": True, "reason": "r"}},
            "key 'kms:*:x' must be service:Action",
        ),
        ({"kms:Decrypt": {"reason": "r"}}, "actionExceptions['kms:Decrypt'].readEquivalent"),
        ({"kms:Decrypt": {"readEquivalent": True, "reason": " "}}, "reason must be a non-empty"),
        (["kms:Decrypt"], "actionExceptions must be an object"),
    ],
)
def test_malformed_exception_config_is_refused_naming_the_field(config, problem):
    with pytest.raises(action_exceptions.ConfigError) as err:
        action_exceptions.merged_table(config)
    assert problem in str(err.value)


# ---- messages a developer can act on ----------------------------------------------------------


def test_long_action_lists_are_capped_with_a_count():
    writes = [a.name for s in ("s3", "ec2", "iam") for a in iam_docs.service_actions(s)]
    [message] = judge(allow(writes))
    count = int(re.search(r"and \d+ more, (\d+) in all", message).group(1))
    assert count > 300
    assert message.count("(Write") + message.count("(Tagging") + message.count("(Perm") <= 5
    assert len(message) <= MAX_DIAGNOSTIC_CHARS


def test_star_and_not_action_are_described_not_listed():
    [star] = judge(allow("*"))
    assert 'this statement grants every action: its Action is "*"' in star
    [not_action] = judge({"Effect": "Allow", "NotAction": ["iam:*", "s3:*"], "Resource": "*"})
    assert "NotAction grants every action except 'iam:*', 's3:*', including non-read" in not_action
    assert len(star) <= 400 and len(not_action) <= 500


def test_unknown_actions_get_one_hint_for_the_whole_list():
    unknown = [f"madeup:Action{i}" for i in range(60)]
    [message] = judge(allow(unknown))
    assert message.count("not in the IAM action dataset") == 1
    assert "and 55 more, 60 in all" in message
    assert len(message) <= MAX_DIAGNOSTIC_CHARS


def test_huge_values_are_never_echoed_in_full():
    [message] = judge(allow("madeup:" + "A" * 100_000))
    assert len(message) <= MAX_DIAGNOSTIC_CHARS


def test_failing_statements_beyond_three_are_summed_up():
    messages = judge(*[allow("sqs:SendMessage", Sid=f"S{i}") for i in range(8)])
    assert len(messages) == 4
    assert "statements 3, 4, 5, 6, 7 also grant what an execution role may not" in messages[3]


def _depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        depth += ch == "("
        deepest = max(deepest, depth)
        depth -= ch == ")"
    return deepest


ACCOUNTS = ["111111111111"]
LAMBDA = {"Service": "lambda.amazonaws.com"}


@pytest.mark.parametrize(
    ("condition", "fix"),
    [
        (None, 'add "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}}'),
        (
            {"StringEquals": {"aws:SourceAccount": ["111111111111", "999999999999"]}},
            "remove the foreign account 999999999999 from aws:SourceAccount",
        ),
        (
            {"StringNotEquals": {"aws:SourceAccount": "111111111111"}},
            "use StringEquals instead of StringNotEquals on aws:SourceAccount",
        ),
        (
            {"StringEqualsIfExists": {"aws:SourceAccount": "111111111111"}},
            "use StringEquals instead of StringEqualsIfExists on aws:SourceAccount",
        ),
        (
            {"StringNotEqualsIfExists": {"aws:SourceAccount": "111111111111"}},
            "use StringEquals instead of StringNotEqualsIfExists",
        ),
        (
            {"ForAllValues:StringEquals": {"aws:SourceAccount": "111111111111"}},
            "use StringEquals instead of ForAllValues:StringEquals",
        ),
        (
            {"ArnLike": {"aws:SourceArn": "arn:aws:lambda:us-east-1:999999999999:function:f"}},
            "remove the ARN in the foreign account 999999999999 from aws:SourceArn",
        ),
        (
            {"StringEquals": {"aws:SourceOrgID": "o-1"}},
            'add "Condition": {"StringEquals": {"aws:SourceAccount": "111111111111"}} next to',
        ),
    ],
)
def test_trust_fixes_name_the_edit(condition, fix):
    statement = {"Effect": "Allow", "Principal": LAMBDA, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    [message] = iam_trust.trust_violations({"Statement": [statement]}, ACCOUNTS, "role 'r'")
    assert f"Fix: {fix}" in message
    assert _depth(message) <= 1, message
    if condition:
        assert "Fix: add" not in message or "next to" in message
