"""Self-tests of the policy-pack driver (devkit/offline/analyzer.py) over real gRPC.

The toy pack (``tests/fixtures/toy/pack``) has one resource policy (``toy-owner-tag``, mandatory,
reads the provider's region) and one stack policy (``toy-stack-shape``, advisory, with a config
schema; reads outputs, parents, dependencies and property dependencies). Resources come from the
toy program's graph, in update and preview mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.offline import wire
from devkit.offline.analyzer import (
    PolicyConfigError,
    PolicyPack,
    parse_policy_config,
    reconcile_policy_config,
)
from devkit.offline.evaluate import evaluate_program
from devkit.offline.synthetic import make_resource

pytestmark = pytest.mark.protocol

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "toy"
TOY, PACK = HERE / "program", HERE / "pack"
OWNER, SHAPE = "toy-owner-tag", "toy-stack-shape"
FILE_URN = "urn:pulumi:dev::toyproj::toyproj:site:Site$pulumi-python:dynamic/toy:File::site-file"


def owner_message(name: str, region: str) -> str:
    return f"Buckets and roles carry an owner tag.\n{name} (region {region}) has no 'owner' tag; tags: ['env']"


@pytest.fixture(scope="module")
def update_graph():
    return evaluate_program("dev", program_dir=TOY)


@pytest.fixture(scope="module")
def preview_graph():
    return evaluate_program("dev", program_dir=TOY, preview=True)


def by_policy(diags, name):
    return [d for d in diags if d.policy_name == name]


def test_analyzer_info_and_reconciled_config(update_graph):
    with PolicyPack.for_graph(PACK, update_graph) as pack:
        info = pack.info
        assert pack.plugin_info == {"version": "1.21.0"}
    assert info["name"] == "toy-pack" and info["supportsConfig"] is True
    assert info["version"] == "0.0.1"  # what pulumi_policy always answers ...
    assert pack.pack_version == "0.1.0"  # ... and what the engine uses instead (PulumiPolicy.yaml)
    policies = {p["name"]: p for p in info["policies"]}
    assert policies[OWNER]["enforcementLevel"] == "mandatory"
    assert policies[OWNER]["policyType"] == "resource"
    assert policies[SHAPE]["policyType"] == "stack"
    assert policies[SHAPE]["configSchema"]["properties"]["maxResources"] == {
        "type": "integer",
        "minimum": 1,
        "default": 50,
    }
    # Schema defaults are filled in by the engine before Configure.
    assert pack.policy_config == {
        OWNER: {"enforcementLevel": "mandatory", "properties": None},
        SHAPE: {
            "enforcementLevel": "advisory",
            "properties": {"maxResources": 50, "requireRoleDependency": True},
        },
    }


def test_update_mode_reports_with_provider_region_and_stack_links(update_graph):
    with PolicyPack.for_graph(PACK, update_graph) as pack:
        diags = pack.run(update_graph)
    owner = sorted(
        (d.urn.rsplit("::", 1)[1], d.enforcement_level, d.message) for d in by_policy(diags, OWNER)
    )
    assert owner == [
        ("site-bucket", "mandatory", owner_message("site-bucket", "eu-west-1")),  # default provider
        ("site-role", "mandatory", owner_message("site-role", "eu-west-1")),
        ("west-logs", "mandatory", owner_message("west-logs", "us-west-2")),  # explicit provider
    ]
    assert all(
        d.source == "analyze" and d.policy_pack_version == "0.1.0" for d in by_policy(diags, OWNER)
    )
    shape = by_policy(diags, SHAPE)
    assert [(d.enforcement_level, d.urn, d.source) for d in shape] == [
        ("advisory", FILE_URN, "analyzeStack")
    ]
    # Outputs, property dependencies and the parent reached StackValidationArgs intact.
    assert shape[0].message.endswith("\nok: content from ['site-bucket'] under toyproj:site:Site")


def test_preview_mode_unknowns_abort_the_stack_policy(preview_graph):
    with PolicyPack.for_graph(PACK, preview_graph) as pack:
        assert pack.dry_run is True
        diags = pack.run(preview_graph)
    assert len(by_policy(diags, OWNER)) == 3  # tags are known during preview
    shape = by_policy(diags, SHAPE)
    assert [(d.enforcement_level, d.urn) for d in shape] == [("advisory", "")]
    assert shape[0].message == (
        "can't run policy 'toy-stack-shape' from policy pack 'toy-pack@v0.0.1' during preview: "
        "string value at .content can't be known during preview"
    )


def test_fixing_the_program_clears_the_resource_policy():
    graph = evaluate_program("dev", program_dir=TOY, overrides={"owner": "alice"})
    with PolicyPack.for_graph(PACK, graph) as pack:
        diags = pack.run(graph)
    assert by_policy(diags, OWNER) == []


def test_enforcement_levels_from_policy_config(update_graph):
    config = {"all": "advisory", SHAPE: {"enforcementLevel": "mandatory", "maxResources": 3}}
    with PolicyPack.for_graph(PACK, update_graph, policy_config=config) as pack:
        assert pack.policy_config[SHAPE]["properties"] == {
            "maxResources": 3,
            "requireRoleDependency": True,
        }
        diags = pack.run(update_graph)
    assert {d.enforcement_level for d in by_policy(diags, OWNER)} == {"advisory"}
    shape = sorted(
        (d.enforcement_level, d.message.split("\n", 1)[1]) for d in by_policy(diags, SHAPE)
    )
    assert shape == [
        ("mandatory", "9 resources exceed maxResources=3.0"),  # Struct numbers are doubles
        ("mandatory", "ok: content from ['site-bucket'] under toyproj:site:Site"),
    ]

    # "disabled" switches a policy off; a "remediate" policy without remediation is not applicable
    # to Remediate and its Analyze violations are reported as mandatory.
    config = {OWNER: "remediate", SHAPE: "disabled"}
    with PolicyPack.for_graph(PACK, update_graph, policy_config=config) as pack:
        diags = pack.run(update_graph)
    assert by_policy(diags, SHAPE) == []
    assert [d.enforcement_level for d in by_policy(diags, OWNER)] == ["mandatory"] * 3
    assert {(n["policy"], n["reason"], n["source"]) for n in pack.not_applicable} == {
        (OWNER, "Policy does not implement remediate", "remediate")
    }


def test_invalid_policy_config_is_rejected_before_any_analyze(tmp_path):
    pack = PolicyPack(
        PACK, policy_config={SHAPE: {"maxResources": "many", "requireRoleDependency": 1}}
    )
    with pytest.raises(PolicyConfigError) as info:
        pack.start()
    assert info.value.errors == [
        "toy-stack-shape: maxResources: 'many' is not of type 'integer'",
        "toy-stack-shape: requireRoleDependency: 1 is not of type 'boolean'",
    ]
    # The engine stops there: the pack got GetAnalyzerInfo but no Configure/Analyze, and is gone.
    assert pack.info["name"] == "toy-pack" and pack.policy_config == {}
    assert pack._plugin.proc.poll() is not None
    config_file = tmp_path / "policy.json"
    config_file.write_text('{"toy-stack-shape": {"maxResources": 0}}')
    with (
        pytest.raises(
            PolicyConfigError,
            match=r"toy-stack-shape: maxResources: 0 is less than the minimum of 1",
        ),
        PolicyPack(PACK, policy_config=config_file),
    ):
        pass


def test_policy_config_parsing_errors_name_the_policy():
    with pytest.raises(PolicyConfigError) as info:
        parse_policy_config({SHAPE: "blocking", OWNER: 3})
    assert info.value.errors == [
        "parsing enforcement level for 'toy-stack-shape': 'blocking' is not a valid enforcement level",
        "parsing 'toy-owner-tag': 3 is not a valid value; must be a string or object",
    ]
    assert parse_policy_config('{"x": {}}') == {}  # empty configs are dropped, as the engine does
    policies = [
        {
            "name": "p",
            "enforcementLevel": "advisory",
            "configSchema": {"properties": {}, "required": ["k"]},
        }
    ]
    with pytest.raises(
        PolicyConfigError, match=r"^invalid policy pack config: p: 'k' is a required property$"
    ):
        reconcile_policy_config(policies, None, None)


def test_synthetic_records_carry_their_provider():
    bucket = make_resource(
        "aws:s3/bucket:Bucket",
        "b",
        {"tags": {"env": "x"}, "secretThing": wire.secret("s3cr3t")},
        provider_inputs={"region": "ap-northeast-1"},
    )
    role = make_resource("aws:iam/role:Role", "r", {"tags": {"env": "x", "owner": "me"}})
    with PolicyPack(PACK) as pack:
        diags = pack.analyze(bucket)
        assert pack.analyze(role) == []
        stack = pack.analyze_stack([bucket, role])
    assert [(d.policy_name, d.urn, d.enforcement_level) for d in diags] == [
        (OWNER, bucket.urn, "mandatory")
    ]
    assert "(region ap-northeast-1)" in diags[0].message
    assert stack == []  # no toy file: nothing for the stack policy to check


def test_pack_pool_reuses_one_process_and_refuses_per_process_settings_in_reconfigure():
    from devkit.offline.analyzer import PackPool
    from devkit.offline.config import REPO_ROOT

    policies = REPO_ROOT / "policies"  # the real pack: its config schemas

    with PackPool() as pool:
        first = pool.get(policies, stack="dev", dry_run=True)
        pid = first._plugin.proc.pid
        again = pool.get(
            policies, stack="prod", dry_run=False, policy_config={"microvm-regions": "disabled"}
        )
        assert again is first and again._plugin.proc.pid == pid
        assert (again.stack, again.dry_run) == ("prod", False)
        assert again.policy_config["microvm-regions"]["enforcementLevel"] == "disabled"
        other = pool.get(policies, env={"MICROVMS_POLICY_SDK_PATCHES": "0"})  # another process
        assert other is not first
        with pytest.raises(TypeError, match="not a per-run setting"):
            first.reconfigure(env={"X": "1"})
        with pytest.raises(PolicyConfigError):
            pool.get(policies, policy_config={"lambda-trust-source-account": {"accountIds": ["1"]}})
    assert first._plugin.proc.poll() is not None and other._plugin.proc.poll() is not None
