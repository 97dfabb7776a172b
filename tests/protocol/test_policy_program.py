"""The program's own dev/prod/local graphs pass the pack with the shipped per-environment configs.

The graphs come from the real ``__main__.py`` under the offline harness; each (stack, mode)
graph is evaluated once per module and fed to one pack process, configured per test.
"""

from __future__ import annotations

import copy
import json

import pytest

from devkit.offline.analyzer import PackPool
from devkit.offline.evaluate import ProgramError, evaluate_program
from tests.protocol.test_policy_support import CORE, PACK_DIR, only

pytestmark = pytest.mark.protocol

STACK_CONFIG = {"dev": "dev.json", "prod": "prod.json", "local": "dev.json"}
_GRAPHS: dict = {}


@pytest.fixture(scope="module")
def packs():
    """One pack process for the module, re-pointed per test (see test_policy_support)."""
    with PackPool() as pool:
        yield pool


def graph_for(stack: str, preview: bool, overrides=None):
    key = (stack, preview, repr(overrides))
    if key not in _GRAPHS:
        _GRAPHS[key] = evaluate_program(stack, preview=preview, overrides=overrides)
    return _GRAPHS[key]


def _describe(diags) -> str:
    return "\n".join(f"[{d.enforcement_level}] {d.policy_name} {d.urn}: {d.message}" for d in diags)


@pytest.mark.parametrize("config_file", ["shipped", "defaults"])
@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_program_graph_has_no_mandatory_violations(packs, stack, preview, config_file):
    """With the stack's shipped config file, and with no --policy-pack-config at all."""
    graph = graph_for(stack, preview)
    config = PACK_DIR / "config" / STACK_CONFIG[stack] if config_file == "shipped" else None
    diags = packs.for_graph(PACK_DIR, graph, policy_config=config).run(graph)
    mandatory = [d for d in diags if d.enforcement_level == "mandatory"]
    assert not mandatory, _describe(mandatory)
    cant_run = [d for d in diags if "can't run policy" in d.message]
    assert not cant_run, _describe(cant_run)


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_program_graph_is_in_scope_of_the_core_policies(stack):
    """Guard against passing vacuously: the graph has what the core rules judge."""
    graph = graph_for(stack, False)
    roles = graph.by_type("aws:iam/role:Role")
    tags = [r.plain_inputs.get("tags") or {} for r in roles]
    assert any(t.get("lambda-microvms:role") == "execution" for t in tags)
    assert all("lambda.amazonaws.com" in r.plain_inputs["assumeRolePolicy"] for r in roles)
    assert graph.by_type("aws:iam/rolePolicy:RolePolicy")
    [image] = graph.by_type("pulumi-python:dynamic/lambda-microvms:MicrovmImage")
    assert image.plain_inputs["region"] in ("us-east-1", "us-west-2")
    assert image.plain_inputs["codeArtifact"]["uri"].startswith("s3://")
    smoke = [
        c
        for c in graph.by_type("command:local:Command")
        if "MICROVMS_EXECUTION_ROLE_ARN" in (c.plain_inputs.get("environment") or {})
    ]
    assert smoke, "the smoke test passes the execution role"


def test_program_itself_refuses_a_write_extra_statement():
    extra = [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "*"}]
    with pytest.raises(ProgramError) as err:
        evaluate_program("dev", overrides={"executionRoleExtraStatements": extra})
    assert "executionRoleExtraStatements[0].Action: s3:PutObject not read-only" in str(err.value)


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_program_graph_with_a_tampered_execution_policy_fails_mandatory(packs, preview):
    """The program's graph with a Write action slipped into the execution role is blocked."""
    graph = copy.deepcopy(graph_for("dev", preview))
    role = next(
        r
        for r in graph.by_type("aws:iam/role:Role")
        if (r.plain_inputs.get("tags") or {}).get("lambda-microvms:role") == "execution"
    )
    policy = next(
        p
        for p in graph.by_type("aws:iam/rolePolicy:RolePolicy")
        if role.urn in p.property_dependencies.get("role", [])
    )
    document = json.loads(policy.inputs["policy"])
    document["Statement"].append({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"})
    policy.inputs["policy"] = policy.outputs["policy"] = json.dumps(document)
    pack = packs.for_graph(PACK_DIR, graph, policy_config=PACK_DIR / "config" / "dev.json")
    diags = only(pack.run(graph), CORE[1])
    assert len(diags) == 1 and diags[0].enforcement_level == "mandatory", _describe(diags)
    index = len(document["Statement"]) - 1
    assert f"statement {index}: allows non-read actions sqs:SendMessage (Write)" in diags[0].message
    assert diags[0].urn == policy.urn


def _tamper(graph, type_token, mutate):
    graph = copy.deepcopy(graph)
    for rec in graph.by_type(type_token):
        for props in (rec.inputs, rec.outputs):
            mutate(props)
    return graph


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_program_graph_in_an_unsupported_region_fails(packs, preview):
    def move(props):
        props["region"] = "eu-central-1"

    graph = _tamper(
        graph_for("dev", preview), "pulumi-python:dynamic/lambda-microvms:MicrovmImage", move
    )
    pack = packs.for_graph(PACK_DIR, graph, policy_config=PACK_DIR / "config" / "dev.json")
    diags = only(pack.run(graph), CORE[2])
    text = _describe(diags)
    assert diags and all(d.enforcement_level == "mandatory" for d in diags), text
    assert (
        "is in eu-central-1, from its own 'region', where Lambda MicroVMs are not available" in text
    )
    assert "builds fail with S3_CROSS_REGION_ACCESS_DENIED" in text


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "update"])
def test_program_graph_without_source_account_fails(packs, preview):
    def unguard(props):
        document = json.loads(props["assumeRolePolicy"])
        for statement in document["Statement"]:
            statement.pop("Condition", None)
        props["assumeRolePolicy"] = json.dumps(document)

    graph = _tamper(graph_for("prod", preview), "aws:iam/role:Role", unguard)
    pack = packs.for_graph(PACK_DIR, graph, policy_config=PACK_DIR / "config" / "prod.json")
    diags = only(pack.run(graph), CORE[0])
    assert len(diags) == 2, _describe(diags)  # the build role and the execution role
    assert all(
        "without an effective source condition: it has no Condition" in d.message for d in diags
    )
    assert all('"aws:SourceAccount": "222222222222"' in d.message for d in diags)
