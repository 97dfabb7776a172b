"""The pack learns the stack from the engine's ConfigureStack, as the real engine sends it.

Under the Pulumi CLI the pack is started through the Python language host's RunPlugin, whose
process environment carries no ``PULUMI_CONFIG``/``PULUMI_STACK``; the stack's config arrives only in
``AnalyzerStackConfigureRequest`` (found by the engine tier: every stack was "environment cannot be
determined"). Here the environment is emptied, so only ConfigureStack can tell the pack.
"""

from __future__ import annotations

import pytest

from devkit.offline.analyzer import PolicyPack
from tests.protocol.test_policy_regions import POLICY, RESTRICTED, pair
from tests.protocol.test_policy_support import PACK_DIR, in_stacks, only, policy_config

pytestmark = pytest.mark.protocol

NO_ENV = {"PULUMI_CONFIG": "{}", "PULUMI_STACK": "", "PULUMI_PROJECT": ""}


def run(stack: str, config: dict[str, str], region: str, records=None, props=None):
    with PolicyPack(
        PACK_DIR,
        policy_config=policy_config(POLICY, "alone", props),
        stack=stack,
        config=config,
        env=NO_ENV,
    ) as pack:
        return only(pack.run(records if records is not None else pair(region)), POLICY)


def test_environment_from_configure_stack_config():
    diags = run("anything", {"lambda-microvms:environment": "dev"}, "us-east-1")
    assert diags == []


def test_environment_from_configure_stack_name_when_config_has_none():
    diags = run("dev", {}, "us-east-1")
    assert diags == []


def test_environment_from_the_urns_when_the_engine_sends_no_stack():
    """``pulumi policy analyze`` over a stack's state sends the pack neither config nor stack name
    (found by running drift.yml's scripts under the real CLI); the URNs still name the stack."""
    records = in_stacks(pair("us-east-1"), "prod")
    diags = run("", {}, "us-east-1", records, RESTRICTED)  # prod allows us-west-2 only
    assert len(diags) == 2 and all(d.enforcement_level == "mandatory" for d in diags)
    assert all(
        "is in us-east-1, from its own 'region', which environment 'prod' does not allow"
        in d.message
        for d in diags
    )
    assert run("", {}, "us-west-2", in_stacks(pair("us-west-2"), "prod"), RESTRICTED) == []


def test_no_stack_name_no_config_and_urns_of_two_stacks_still_fail_closed():
    diags = run("", {}, "us-east-1", in_stacks(pair("us-east-1"), "dev", "prod"))
    assert len(diags) == 1
    assert diags[0].enforcement_level == "mandatory"
    assert "environment cannot be determined" in diags[0].message
