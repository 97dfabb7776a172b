"""Check and Diff over gRPC: invalid inputs are refused before any API call; previews are honest."""

from __future__ import annotations

import copy

import pytest

from devkit.offline import wire
from tests.protocol import test_image_provider_support as support
from tests.protocol.test_image_provider_support import (
    program_inputs,
)
from tests.unit.test_image_validation import INVALID_CASES

# fixtures shared with the other image-provider modules
rig = support.rig
shared_rig = support.shared_rig

pytestmark = pytest.mark.protocol


def test_at_least_forty_invalid_inputs_are_refused_by_check_with_zero_api_calls(rig):
    assert len(INVALID_CASES) >= 40
    rig.reset_calls()
    for case_id, mutate, prop, text in INVALID_CASES:
        news = copy.deepcopy(program_inputs())
        mutate(news)
        result = rig.check(news)
        reasons = [f["reason"] for f in result.failures if f["property"] == prop]
        assert reasons, f"{case_id}: no failure on {prop!r}: {result.failures}"
        assert any(text in r for r in reasons), f"{case_id}: {reasons}"
    assert rig.calls() == {}, "check must not call the API"


def test_valid_check_fills_defaults_explicitly(rig):
    result = rig.check(program_inputs())
    assert result.failures == []
    inputs = result.inputs
    assert inputs["baseImageArn"] == "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1"
    assert inputs["cpuConfigurations"] == [{"architecture": "ARM_64"}]
    assert inputs["egressNetworkConnectors"] == [
        "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS"
    ]
    assert inputs["hooks"]["microvmHooks"]["runTimeoutInSeconds"] == 1
    assert inputs["buildTimeoutMinutes"] == 30 and inputs["terminateMicrovmsOnDelete"] is False
    assert rig.calls() == {}


def test_secret_input_is_refused_without_echoing_it(rig):
    news = program_inputs(secretEnvironmentVariables=wire.secret({"API_TOKEN": "x" * 5000}))
    result = rig.check(news)
    assert [f["property"] for f in result.failures] == ["secretEnvironmentVariables.API_TOKEN"]
    assert "x" * 50 not in repr(result.failures)


@pytest.mark.parametrize(
    ("override", "replaces"),
    [
        ({"codeArtifact": {"uri": wire.UNKNOWN}}, []),
        ({"buildRoleArn": wire.UNKNOWN}, []),
        ({"secretEnvironmentVariables": wire.UNKNOWN}, []),
        ({"tags": wire.UNKNOWN}, []),
        ({"region": wire.UNKNOWN}, ["region"]),
    ],
)
def test_preview_with_unknown_inputs_is_diff_some(rig, override, replaces):
    _, created = rig.create()
    state = created.outputs
    news = program_inputs(**override)
    checked = rig.check(news, preview=True)
    assert checked.failures == []
    rig.reset_calls()
    diff = rig.provider.diff(state["imageArn"], rig.urn, state, checked.inputs, preview=True)
    assert diff.changes == "DIFF_SOME"
    assert diff.replaces == replaces
    assert rig.calls() == {}


def test_huge_and_control_character_inputs_get_short_answers_and_no_api_call(rig):
    huge = "v" * (1 << 20)
    bad = [
        program_inputs(tags={"team": huge}),
        program_inputs(tags={"te\tam": "x", "ok": "line\nbreak"}),
        program_inputs(resources=[{"minimumMemoryInMiB": 2048, "burstMiB": 4096}]),
        program_inputs(egressNetworkConnectors=["HTTP_INGRESS"]),
        program_inputs(buildRoleArn="arn:aws:iam::" + "\u0661" * 12 + ":role/build"),
        program_inputs(**{huge[:70000]: 1}),
    ]
    rig.reset_calls()
    for news in bad:
        result = rig.check(news)
        assert result.failures, news.keys()
        # the whole answer stays small: values are cut and say how long they were
        assert len(repr(result.failures)) < 2000
    assert rig.calls() == {}, "check must not call the API"
