"""The README's stack example (two images, a rollback, an adoption, protected prod) is a working
configuration: evaluated as written under the offline engine for the prod stack."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from devkit.offline.evaluate import evaluate_program

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
IMAGE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"


def example_config() -> dict:
    section = README.split("#### Several images, adoption, rollback, protected prod", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, flags=re.S)
    assert block, "the subsection shows a YAML stack example"
    return yaml.safe_load(block.group(1))["config"]


def test_the_example_deploys_two_images_with_a_rollback_and_an_adoption():
    config = example_config()
    graph = evaluate_program("prod", overrides=config)
    images = {r.name: r for r in graph.by_type(IMAGE)}
    assert set(images) == {"image-image", "worker-image-image"}
    default, worker = images["image-image"].plain_inputs, images["worker-image-image"].plain_inputs
    assert default["activeVersion"] == "3.0" and "adoptArn" not in default
    adopted = config["lambda-microvms:images"]["worker"]["adopt"]
    assert worker["adoptArn"] == adopted and worker["name"] == adopted.rsplit(":", 1)[1]
    assert worker["resources"] == [{"minimumMemoryInMiB": 8192}]
    assert set(graph.plain_outputs["images"]) == {"default", "worker"}
    assert all(r.options.get("protect") for r in images.values())
