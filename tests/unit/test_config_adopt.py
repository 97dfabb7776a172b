"""``lambda-microvms:adopt``: an existing image the stack takes over (ARN or exact name)."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_settings
from devkit.offline.evaluate import evaluate_program

pytestmark = pytest.mark.unit

ARN = "arn:aws:lambda:us-east-1:123456789012:microvm-image:hand-built"
BASE = {"lambda-microvms:environment": "local", "aws:region": "us-east-1"}


def settings(**raw):
    return parse_settings({**BASE, **{f"lambda-microvms:{k}": v for k, v in raw.items()}})


def test_unset_or_empty_adopts_nothing():
    assert settings().adopted_image_arn is None
    assert settings(adopt="").adopted_image_arn is None


def test_an_arn_is_imported_as_given():
    assert settings(adopt=ARN).adopted_image_arn == ARN


def test_a_name_resolves_in_the_stacks_region_and_account():
    s = settings(adopt="hand-built", accountId="123456789012")
    assert s.adopted_image_arn == ARN


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("has space", "must be a MicroVM image ARN"),
        ("arn:aws:lambda:us-east-1:12345678901٢:microvm-image:x", "must be a MicroVM image ARN"),
        ("x" * 65, "1-64 characters"),
        ("arn:aws:lambda:us-west-2:123456789012:microvm-image:x", "the stack deploys to us-east-1"),
    ],
)
def test_bad_values_name_the_key_and_the_allowed_forms(value, message):
    with pytest.raises(ConfigError, match="lambda-microvms:adopt") as err:
        settings(adopt=value)
    assert message in str(err.value)


def test_a_name_without_a_known_account_asks_for_the_arn():
    s = parse_settings(
        {**BASE, "lambda-microvms:environment": "dev", "aws:allowedAccountIds": '["111111111111", "222222222222"]',
         "lambda-microvms:adopt": "hand-built"}
    )  # fmt: skip
    with pytest.raises(ConfigError, match="give the image ARN instead"):
        _ = s.adopted_image_arn


def test_the_program_adopts_the_image_under_its_own_name():
    graph = evaluate_program("local", overrides={"adopt": "hand-built"})
    image = graph.one("pulumi-python:dynamic/lambda-microvms:MicrovmImage")
    assert image.plain_inputs["adoptArn"] == ARN
    assert image.plain_inputs["name"] == "hand-built"
    assert "namePrefix" not in image.plain_inputs
    assert not image.options.get("importId")  # the engine cannot import a dynamic resource


def test_without_adopt_nothing_is_adopted():
    image = evaluate_program("local").one("pulumi-python:dynamic/lambda-microvms:MicrovmImage")
    assert "adoptArn" not in image.plain_inputs
