"""devkit.review_summary: an image create whose inputs carry ``adoptArn`` reads "adopt <arn>".

The engine cannot import a Python dynamic resource, so adopting an image previews as a create
of the image resource with ``adoptArn`` among its inputs (the provider's Create takes it over).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit.review_summary import load_preview, render

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "preview"
ARN = "arn:aws:lambda:us-east-1:111111111111:microvm-image:hand-built"


def adopting_create() -> dict:
    doc = json.loads((FIXTURES / "create.json").read_text())
    for step in doc["steps"]:
        if step["urn"].endswith("::image-image"):
            step["newState"]["inputs"]["adoptArn"] = ARN
    return doc


def test_an_adopting_create_is_rendered_as_adopt():
    md = render(load_preview(json.dumps(adopting_create())))
    assert (
        f"| adopt `{ARN}` | `image-image` | `pulumi-python:dynamic/lambda-microvms:MicrovmImage` |"
        in md
    )
    assert "### Adopted MicroVM images (1)" in md
    assert f"- `image-image`: adopt `{ARN}` — the stack takes the existing image over" in md
    assert "### New MicroVM image versions (0)" in md  # not announced as a 2–6 min build


def test_a_plain_create_is_still_a_new_image():
    md = render(load_preview((FIXTURES / "create.json").read_text()))
    assert "Adopted MicroVM images" not in md
    assert "adopt `" not in md
    assert "`image-image` (create; new image)" in md


def test_the_event_stream_form_is_rendered_the_same():
    urn = (
        "urn:pulumi:dev::lambda-microvms::lambda-microvms:image:MicrovmImage"
        "$pulumi-python:dynamic/lambda-microvms:MicrovmImage::image-image"
    )
    event = {
        "sequence": 1,
        "timestamp": 1,
        "resourcePreEvent": {
            "metadata": {
                "op": "create",
                "urn": urn,
                "type": "pulumi-python:dynamic/lambda-microvms:MicrovmImage",
                "old": None,
                "new": {"type": "pulumi-python:dynamic/lambda-microvms:MicrovmImage",
                        "inputs": {"adoptArn": ARN, "name": "hand-built"}},
                "provider": "",
            }
        },
    }  # fmt: skip
    md = render(load_preview(json.dumps(event) + "\n"))
    assert f"| adopt `{ARN}` | `image-image` |" in md
    assert "### Adopted MicroVM images (1)" in md
