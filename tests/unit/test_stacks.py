"""Each real stack's config loads through the real ``__main__.py``, and bad config fails fast.

These tests are about config loading and graph shape only; which resources exist is the business
of the component tests.
"""

from __future__ import annotations

import json

import pytest

from devkit.offline.config import REPO_ROOT, load_config
from devkit.offline.evaluate import ProgramError, evaluate_program

pytestmark = pytest.mark.unit

STACKS = ("dev", "prod", "local")
PROJECT = "lambda-microvms"


def stack_region(stack: str) -> str:
    return load_config(stack)[1]["aws:region"]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("preview", [False, True], ids=["update", "preview"])
def test_stack_evaluates_to_a_graph(stack, preview):
    graph = evaluate_program(stack, preview=preview)
    assert (graph.stack, graph.project, graph.preview) == (stack, PROJECT, preview)
    root = graph.stack_resource
    assert root.urn == f"urn:pulumi:{stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{stack}"
    assert graph.config["lambda-microvms:environment"] == stack
    assert graph.plain_outputs["environment"] == stack
    # Every resource is rooted in the Stack and every custom resource has a provider whose
    # region is the stack's region (or the one it was explicitly given).
    urns = {r.urn for r in graph.resources}
    for rec in graph.resources:
        assert rec.urn.startswith(f"urn:pulumi:{stack}::{PROJECT}::")
        if rec is not root and not rec.is_provider:
            assert rec.parent in urns, rec.urn
        for dep in rec.dependencies:
            assert dep in urns, (rec.urn, dep)
    for rec in graph.resources:
        if rec.custom and not rec.is_provider and rec.type.startswith("aws:"):
            assert graph.provider_of(rec).inputs["region"] in (
                stack_region(stack),
                rec.plain_inputs.get("region"),
            )
    if graph.by_type("pulumi:providers:aws"):
        default = graph.one("pulumi:providers:aws", "default_7_51_1")
        assert default.inputs["region"] == stack_region(stack)
        assert json.loads(default.inputs["allowedAccountIds"]) == json.loads(
            load_config(stack)[1]["aws:allowedAccountIds"]
        )


@pytest.mark.parametrize("stack", STACKS)
def test_stacks_pin_their_account(stack):
    _, config, _ = load_config(stack)
    allowed = json.loads(config["aws:allowedAccountIds"])
    assert len(allowed) == 1 and allowed[0].isdigit() and len(allowed[0]) == 12


def test_stacks_differ_where_a_team_would_make_them_differ():
    dev, prod, local = (load_config(s)[1] for s in STACKS)
    assert json.loads(dev["lambda-microvms:artifactBucket"])["forceDestroy"] is True
    assert json.loads(prod["lambda-microvms:artifactBucket"])["forceDestroy"] is False
    assert int(prod["lambda-microvms:logRetentionDays"]) > int(
        dev["lambda-microvms:logRetentionDays"]
    )
    assert dev["aws:allowedAccountIds"] != prod["aws:allowedAccountIds"]
    endpoints = json.loads(local["lambda-microvms:endpoints"])
    assert endpoints and all(url.startswith("http://127.0.0.1:") for url in endpoints.values())


@pytest.mark.parametrize("stack", STACKS)
def test_bad_memory_fails_naming_the_key_value_and_allowed_values(stack):
    with pytest.raises(ProgramError) as info:
        evaluate_program(stack, overrides={"lambda-microvms:memoryMiB": 3000})
    message = str(info.value)
    assert info.value.error_type == "ConfigError"
    assert "lambda-microvms:memoryMiB" in message
    assert "3000" in message
    assert "512, 1024, 2048, 4096, 8192" in message
    # Nothing was registered but the Stack: the program failed before building anything.
    assert [r.type for r in info.value.graph.resources] == ["pulumi:pulumi:Stack"]


@pytest.mark.parametrize("stack", STACKS)
def test_bad_region_fails_naming_the_key_value_and_allowed_values(stack):
    with pytest.raises(ProgramError) as info:
        evaluate_program(stack, preview=True, overrides={"aws:region": "mars-1"})
    message = str(info.value)
    assert info.value.error_type == "ConfigError"
    assert "aws:region" in message and "mars-1" in message
    assert "us-east-1" in message and "eu-west-1" in message


@pytest.mark.parametrize("stack", STACKS)
def test_missing_required_key_fails_naming_the_key(stack):
    with pytest.raises(ProgramError) as info:
        evaluate_program(stack, overrides={"lambda-microvms:environment": None})
    assert info.value.error_type == "ConfigError"
    assert "lambda-microvms:environment" in str(info.value)
    assert "missing" in str(info.value).lower()


def test_a_good_run_after_a_failed_one_is_unaffected():
    with pytest.raises(ProgramError):
        evaluate_program("prod", overrides={"lambda-microvms:memoryMiB": 3000})
    graph = evaluate_program("prod")
    assert graph.plain_outputs["environment"] == "prod"
    assert graph.config["lambda-microvms:memoryMiB"] == "4096"
    assert REPO_ROOT.joinpath("Pulumi.prod.yaml").is_file()
