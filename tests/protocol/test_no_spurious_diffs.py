"""Reviewers can trust previews: an unchanged program produces no diff.

1. Evaluating a stack twice gives byte-identical inputs for every resource (artifact digest, names,
   policy JSON key order, command lines), in update and in preview mode.
2. The image provider, driven over the SDK's gRPC server, checks the program's own image inputs to
   the same values on a second run (even with a different random seed) and diffs them as DIFF_NONE.
"""

from __future__ import annotations

import json

import pytest

from components.microvm_image.provider import MicrovmImageProvider
from tests.harness.program import evaluate_program
from tests.harness.provider import DynamicProvider, serialize_provider

IMAGE_TYPE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
STACKS = ("dev", "prod", "local")


def _inputs_by_urn(graph) -> dict[str, str]:
    return {r.urn: json.dumps(r.inputs, sort_keys=False) for r in graph.resources}


@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
@pytest.mark.parametrize("stack", STACKS)
def test_two_evaluations_register_identical_inputs(stack, preview):
    first = evaluate_program(stack, preview=preview)
    second = evaluate_program(stack, preview=preview)
    a, b = _inputs_by_urn(first), _inputs_by_urn(second)
    assert a.keys() == b.keys()
    changed = [urn for urn in a if a[urn] != b[urn]]
    assert changed == []
    assert first.outputs.get("artifactDigest") == second.outputs.get("artifactDigest")


@pytest.fixture(scope="module")
def provider():
    with DynamicProvider() as p:
        p.configure({})
        yield p


@pytest.mark.parametrize("stack", STACKS)
def test_provider_check_is_stable_and_no_op_diff_is_empty(provider, stack):
    graph = evaluate_program(stack)
    image = graph.one(IMAGE_TYPE)
    news = dict(image.plain_inputs)
    # The program pickles the provider by reference: small and stable (facts: dill pitfalls).
    assert news["__provider"] == serialize_provider(MicrovmImageProvider())
    assert len(news["__provider"]) <= 1024

    first = provider.check(image.urn, None, news, random_seed=b"\x01" * 32)
    assert first.failures == []
    # A second run: the engine passes the old inputs and a different seed.
    second = provider.check(image.urn, first.inputs, news, random_seed=b"\x02" * 32)
    assert second.failures == []
    assert second.inputs == first.inputs

    diff = provider.diff("arn:aws:lambda:x", image.urn, first.inputs, second.inputs)
    assert diff.changes == "DIFF_NONE", diff
    assert diff.replaces == []
