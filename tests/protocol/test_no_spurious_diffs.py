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
from devkit.offline.evaluate import evaluate_program
from devkit.offline.provider import DynamicProvider, serialize_provider

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


_DUMP = """
import json, sys
from devkit.offline.evaluate import evaluate_program
g = evaluate_program(sys.argv[1], preview=sys.argv[2] == "preview")
print(json.dumps({r.urn: r.inputs for r in g.resources}))
"""


@pytest.mark.slow  # a fresh interpreter per hash seed
@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_separate_processes_with_different_hash_seeds_register_identical_inputs(preview):
    """What a reviewer sees: the CI machine and a laptop evaluate in different processes (different
    set/dict-of-str iteration seeds, different working directories). Inputs must not change."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    runs = []
    for seed in ("1", "4242"):
        proc = subprocess.run(
            [sys.executable, "-c", _DUMP, "dev", "preview" if preview else "update"],
            cwd=repo, env=dict(os.environ, PYTHONHASHSEED=seed),
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout.strip().splitlines()[-1])
    a, b = (json.loads(r) for r in runs)
    assert a.keys() == b.keys() and len(a) > 10
    assert [urn for urn in a if json.dumps(a[urn]) != json.dumps(b[urn])] == []
