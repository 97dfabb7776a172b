"""Issue 14 and 13.9 over the real Analyzer gRPC path: managed policies by ARN vs inlined, the
exception table and its config override, fail-closed unknowns, shipped configs, metadata, and
the shape of every message the labelled tables produce."""

from __future__ import annotations

import json
import re

import pytest

from devkit.offline.config import REPO_ROOT
from devkit.offline.synthetic import make_resource
from tests.protocol import test_policy_execution_role as er_cases
from tests.protocol import test_policy_regions as region_cases
from tests.protocol import test_policy_trust as trust_cases
from tests.protocol.test_policy_execution_role import allow, doc, role, role_policy, single
from tests.protocol.test_policy_support import (
    ALL_POLICIES,
    MODES,
    PACK_DIR,
    PROVIDER,
    UNKNOWN,
    PackPool,
    check_case,
    only,
    policy_config,
)
from tests.unit.test_policy_managed import _depth, managed_policies

pytestmark = pytest.mark.protocol

POLICY = "microvm-execution-role-read-only"
REGIONS = "microvm-regions"
MAX_DIAGNOSTIC_CHARS = 1500  # the SDK prepends the policy description to each message

# ---- a sample of AWS-managed policies through the analyzer: by ARN == inlined ----------------

NAMED = [
    "ReadOnlyAccess",
    "ViewOnlyAccess",
    "SecurityAudit",
    "CloudWatchLogsReadOnlyAccess",
    "AmazonBedrockReadOnly",
    "CloudWatchReadOnlyAccess",
    "AmazonS3ExpressReadOnlyAccess",
    "AmazonCognitoReadOnly",
    "AdministratorAccess",
    "PowerUserAccess",
    "AWSLambdaBasicExecutionRole",
    "AmazonSQSFullAccess",
    "AmazonS3ReadOnlyAccess",
    "AmazonEC2ReadOnlyAccess",
    "AmazonDynamoDBReadOnlyAccess",
    "IAMReadOnlyAccess",
    "AWSLambda_ReadOnlyAccess",
    "AmazonSQSReadOnlyAccess",
    "AmazonSSMReadOnlyAccess",
]


def _sample() -> list[str]:
    names = sorted(managed_policies.dataset())
    every = names[:: max(1, len(names) // 28)]
    return sorted(set(NAMED) | set(every))


SAMPLE = _sample()


def _arn(name: str) -> str:
    return f"arn:aws:iam::aws:policy{managed_policies.dataset()[name]['Path']}{name}"


@pytest.fixture(scope="module")
def pool():
    p = PackPool()
    yield p
    p.close()


def _tail(message: str) -> str:
    """The verdict part of a message: from the statement label to the rule (not where, not Fix)."""
    found = re.search(r"(statements? \d.*?)\. An execution role", message, re.S)
    return found.group(1) if found else message


def test_sample_is_big_enough():
    assert len(SAMPLE) >= 30
    assert {"ReadOnlyAccess", "ViewOnlyAccess", "SecurityAudit"} <= set(SAMPLE)


@pytest.mark.parametrize("dry_run", MODES)
def test_sampled_managed_policies_same_verdict_by_arn_and_inlined(pool, dry_run):
    pack = pool.get(dry_run=dry_run, config=policy_config(POLICY, "alone"))
    verdicts = {}
    for name in SAMPLE:
        by_arn = only(pack.run([role(managedPolicyArns=[_arn(name)])]), POLICY)
        document = json.dumps(managed_policies.dataset()[name]["Document"])
        inline = only(pack.run(single_doc(document)), POLICY)
        assert [_tail(d.message) for d in by_arn] == [_tail(d.message) for d in inline], name
        assert all(d.enforcement_level == "mandatory" for d in by_arn + inline), name
        verdicts[name] = bool(by_arn)
    assert not any(verdicts[n] for n in ("ReadOnlyAccess", "ViewOnlyAccess", "SecurityAudit"))
    assert verdicts["AdministratorAccess"] and verdicts["PowerUserAccess"]
    assert sum(verdicts.values()) >= 5 and sum(not v for v in verdicts.values()) >= 10


def single_doc(document):
    r = role()
    return [r, role_policy(r, document)]


def test_read_only_access_by_arn_passes_with_its_advisory_note(pool):
    pack = pool.get(dry_run=False, config={})
    diags = pack.run([role(managedPolicyArns=[_arn("ReadOnlyAccess")])])
    assert not only(diags, POLICY)
    [note] = only(diags, "execution-role-broad-read-access")
    assert note.enforcement_level == "advisory"
    assert "reads almost every service and data store" in note.message


# ---- the exception table through the analyzer, and its override in the policy config --------


@pytest.mark.parametrize("dry_run", MODES)
def test_exception_table_applies_inline_and_by_arn(pool, dry_run):
    pack = pool.get(dry_run=dry_run, config=policy_config(POLICY, "alone"))
    session = "s3express:CreateSession"
    read_only_session = allow(
        session, Condition={"StringEquals": {"s3express:SessionMode": "ReadOnly"}}
    )
    check_case(pack.run(single(read_only_session)), POLICY, None, "read-only session")
    check_case(
        pack.run(single(allow(session))),
        POLICY,
        "the pack's reviewed exception table says: s3express:CreateSession read-equivalent only "
        "for read-only sessions",
        "any session",
    )
    check_case(pack.run(single(allow("codestar:List*"))), POLICY, None, "retired, read verb")
    check_case(
        pack.run(single(allow("codestar:DeleteProject"))),
        POLICY,
        "action 'codestar:DeleteProject' is not in the IAM action dataset",
        "retired, write verb",
    )
    check_case(
        pack.run([role(managedPolicyArns=[_arn("AmazonCognitoReadOnly")])]),
        POLICY,
        "cognito-identity:GetId creates an identity in the identity pool on first call",
        "not read-equivalent, by ARN",
    )


def test_exception_override_in_policy_config(pool):
    config = policy_config(
        POLICY,
        "alone",
        {
            "actionExceptions": {
                "cognito-identity:GetId": {
                    "readEquivalent": True,
                    "reason": "our pool only serves existing identities",
                }
            }
        },
    )
    pack = pool.get(dry_run=False, config=config)
    check_case(
        pack.run([role(managedPolicyArns=[_arn("AmazonCognitoReadOnly")])]),
        POLICY,
        None,
        "override by ARN",
    )
    check_case(pack.run(single(allow("cognito-identity:GetId"))), POLICY, None, "override inline")


def test_malformed_exception_override_is_rejected_before_analyze():
    from devkit.offline.analyzer import PolicyConfigError, PolicyPack

    with pytest.raises(PolicyConfigError) as err:
        PolicyPack(
            PACK_DIR,
            policy_config={POLICY: {"actionExceptions": {"kms:Decrypt": {"readEquivalent": True}}}},
        ).start()
    assert POLICY in str(err.value) and "reason" in str(err.value)


# ---- 13.9: an unknown that decides a mandatory verdict fails as mandatory --------------------


def command(env, *, deps=None, name="smoke"):
    return make_resource(
        "command:local:Command",
        name,
        {"create": "python -m microvms smoke", "environment": env},
        property_dependencies=deps or {},
    )


def _read_role():
    r = role(name="smoke-role", tags=None)
    return r, role_policy(r, doc(allow("s3:GetObject")))


UNKNOWN_CASES = [
    (
        "command-environment-unknown-no-deps",
        lambda: [command(UNKNOWN)],
        {POLICY: "'environment' is unknown during preview", REGIONS: "'environment' is unknown"},
    ),
    (
        "command-environment-unknown-with-read-only-role-dep",
        lambda: (lambda r, p: [r, p, command(UNKNOWN, deps={"environment": [r.urn]})])(
            *_read_role()
        ),
        {POLICY: "command:local:Command 'smoke': 'environment' is unknown during preview"},
    ),
    (
        "command-region-unknown",
        lambda: [command({"MICROVMS_REGION": UNKNOWN, "MICROVMS_OUTPUT": "json"})],
        {REGIONS: "'environment.MICROVMS_REGION' is unknown during preview"},
    ),
    (
        "role-managed-policy-arns-whole-unknown-with-deps",
        lambda: (
            lambda p: [
                p,
                make_resource(
                    "aws:iam/role:Role",
                    "exec",
                    {
                        "name": "exec",
                        "assumeRolePolicy": er_cases.TRUST,
                        "tags": er_cases.EXEC_TAGS,
                        "managedPolicyArns": UNKNOWN,
                    },
                    provider_inputs=PROVIDER,
                    property_dependencies={"managedPolicyArns": [p.urn]},
                ),
            ]
        )(er_cases.managed("app", doc(allow("s3:GetObject")))),
        {POLICY: "'managedPolicyArns' is unknown during preview"},
    ),
    (
        "role-inline-policies-whole-unknown-with-deps",
        lambda: (
            lambda p: [
                p,
                make_resource(
                    "aws:iam/role:Role",
                    "exec",
                    {
                        "name": "exec",
                        "assumeRolePolicy": er_cases.TRUST,
                        "tags": er_cases.EXEC_TAGS,
                        "inlinePolicies": UNKNOWN,
                    },
                    provider_inputs=PROVIDER,
                    property_dependencies={"inlinePolicies": [p.urn]},
                ),
            ]
        )(er_cases.managed("app", doc(allow("s3:GetObject")))),
        {POLICY: "'inlinePolicies' is unknown during preview"},
    ),
]


@pytest.mark.parametrize(
    ("label", "build", "expect"), UNKNOWN_CASES, ids=[c[0] for c in UNKNOWN_CASES]
)
def test_preview_unknowns_fail_closed_naming_the_property(pool, label, build, expect):
    pack = pool.get(dry_run=True, config={})
    diags = pack.run(build())
    for policy, text in expect.items():
        check_case(diags, policy, text, f"{label}/{policy}")


@pytest.mark.parametrize("dry_run", MODES)
def test_known_command_region_is_judged_once(pool, dry_run):
    pack = pool.get(dry_run=dry_run, config=policy_config(REGIONS, "alone"))
    ok = command({"MICROVMS_REGION": "us-east-1", "MICROVMS_OUTPUT": "json"})
    check_case(pack.run([ok]), REGIONS, None, "supported")
    bad = command({"MICROVMS_REGION": "eu-central-1", "MICROVMS_OUTPUT": "json"})
    diags = only(pack.run([bad]), REGIONS)
    assert len(diags) == 1, [d.message for d in diags]  # one cause, one diagnostic
    assert (
        "is in eu-central-1, from its environment's MICROVMS_REGION, where Lambda MicroVMs are "
        "not available" in diags[0].message
    )
    # A command that does not run MicroVMs is not judged.
    check_case(pack.run([command({"FOO": "1"})]), REGIONS, None, "not a MicroVM command")


@pytest.mark.parametrize("dry_run", MODES)
def test_unsupported_image_region_is_one_diagnostic(pool, dry_run):
    pack = pool.get(dry_run=dry_run, config=policy_config(REGIONS, "alone"))
    graph = region_cases.pair("eu-central-1")
    image_urn = graph[1].urn
    diags = [d for d in only(pack.run(graph), REGIONS) if d.urn == image_urn]
    assert len(diags) == 1, [d.message for d in diags]
    assert "where Lambda MicroVMs are not available" in diags[0].message


# ---- shipped configs restrict each environment to its stack's region --------------------------

SHIPPED = [
    ("dev", "dev", "us-east-1", "us-west-2"),
    ("dev", "local", "us-east-1", "us-east-2"),
    ("prod", "prod", "us-west-2", "us-east-1"),
]


@pytest.mark.parametrize(("file", "stack", "inside", "outside"), SHIPPED)
def test_shipped_config_rejects_a_region_outside_its_environment(
    pool, file, stack, inside, outside
):
    pack = pool.get(dry_run=False, config=str(PACK_DIR / "config" / f"{file}.json"), stack=stack)
    ok = region_cases.other("aws:sqs/queue:Queue", {}, inside)
    check_case(pack.run([ok]), REGIONS, None, f"{stack} in {inside}")
    bad = region_cases.other("aws:sqs/queue:Queue", {}, outside)
    check_case(
        pack.run([bad]),
        REGIONS,
        f"is in {outside}, from its provider's 'region', pulumi:providers:aws, which environment "
        f"'{stack}' does not allow. Fix: deploy to one of {inside}",
        f"{stack} in {outside}",
    )


def test_shipped_configs_restrict_to_the_stacks_region():
    import yaml

    for file, stack, inside, _ in SHIPPED:
        config = json.loads((PACK_DIR / "config" / f"{file}.json").read_text())
        allowed = config[REGIONS]["allowedRegionsByEnvironment"][stack]
        region = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"][
            "aws:region"
        ]
        assert allowed == [region] == [inside], (file, stack)


# ---- metadata the SDK supports -----------------------------------------------------------------


def _anchors() -> set[str]:
    text = (REPO_ROOT / "docs" / "policies.md").read_text()
    return {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", text, re.M)
    }


def test_every_policy_has_severity_tags_remediation_and_a_docs_link(pool):
    info = pool.get(dry_run=False, config={}).info
    anchors = _anchors()
    assert [p["name"] for p in info["policies"]] == ALL_POLICIES
    for policy in info["policies"]:
        name = policy["name"]
        assert policy["severity"] in ("low", "medium", "high", "critical"), name
        assert policy["tags"], name
        assert len(policy["remediationSteps"]) > 20, name
        assert policy["url"] == f"docs/policies.md#{name}", name
        assert name in anchors, f"docs/policies.md has no section for {name}"


def test_offline_gate_report_prints_severity_and_remediation():
    from devkit.policy_check import Finding, render_plain

    finding = Finding(
        POLICY,
        "mandatory",
        "urn:pulumi:dev::lambda-microvms::aws:iam/rolePolicy:RolePolicy::p",
        "aws:iam/rolePolicy:RolePolicy",
        "statement 0: allows non-read actions s3:PutObject (Write).",
        ["update"],
        severity="critical",
        remediation="Keep only Read/List actions.",
    )
    out = render_plain([finding], {"stack": "dev", "modes": ["update"], "config_file": "c"})
    assert "MANDATORY  microvm-execution-role-read-only  p (aws:iam/rolePolicy:RolePolicy)" in out
    assert "[update] severity critical" in out
    assert "Remediation: Keep only Read/List actions." in out


# ---- every message the labelled tables produce: bounded, no nested parentheses -------------


def _all_table_graphs():
    yield from ((f"exec/{c[0]}", c[1]) for c in er_cases.CASES)
    yield from ((f"regions/{c[0]}", c[1]) for c in region_cases.CASES)
    yield from (
        (f"trust/{c[0]}", [trust_cases.role(f"r-{c[0]}", trust_cases._clean(c[1]))])
        for c in trust_cases.CASES
    )
    yield from ((f"unknown/{c[0]}", c[1]()) for c in UNKNOWN_CASES)


def test_every_table_message_is_bounded_and_flat(pool):
    pack = pool.get(dry_run=True, config={})
    seen = 0
    for label, graph in _all_table_graphs():
        for d in pack.run(graph):
            seen += 1
            assert len(d.message) <= MAX_DIAGNOSTIC_CHARS, (label, len(d.message), d.message)
            assert _depth(d.message) <= 1, (label, d.message)
    assert seen > 100
