"""The pack learns the stack from the engine's ConfigureStack, as the real engine sends it.

Under the Pulumi CLI the pack is started through the Python language host's RunPlugin, whose
process environment carries no ``PULUMI_CONFIG``/``PULUMI_STACK``; the stack's config arrives only in
``AnalyzerStackConfigureRequest`` (found by the engine tier: every stack was "environment cannot be
determined"). Here the environment is emptied, so only ConfigureStack can tell the pack.
"""

from __future__ import annotations

import pytest

from devkit.offline.analyzer import PolicyPack
from tests.protocol.test_policy_regions import POLICY, pair
from tests.protocol.test_policy_support import PACK_DIR, only, policy_config

pytestmark = pytest.mark.protocol

NO_ENV = {"PULUMI_CONFIG": "{}", "PULUMI_STACK": "", "PULUMI_PROJECT": ""}


def run(stack: str, config: dict[str, str], region: str):
    with PolicyPack(
        PACK_DIR,
        policy_config=policy_config(POLICY, "alone"),
        stack=stack,
        config=config,
        env=NO_ENV,
    ) as pack:
        return only(pack.run(pair(region)), POLICY)


def test_environment_from_configure_stack_config():
    diags = run("anything", {"lambda-microvms:environment": "dev"}, "us-east-1")
    assert diags == []


def test_environment_from_configure_stack_name_when_config_has_none():
    diags = run("dev", {}, "us-east-1")
    assert diags == []


def test_no_stack_name_and_no_config_still_fails_closed():
    diags = run("", {}, "us-east-1")
    assert len(diags) == 1
    assert diags[0].enforcement_level == "mandatory"
    assert "environment cannot be determined" in diags[0].message
