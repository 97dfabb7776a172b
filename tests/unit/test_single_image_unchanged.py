"""The single-image config of today registers exactly the resources it did before ``images``.

``snapshots/single_image.json`` was taken from the program before several images per stack
existed (commit 4ffb252, see ``graph_snapshot.py`` for how to regenerate it). An existing stack
must see no diff: the same URNs, inputs, options, parents, providers, dependencies and outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.graph_snapshot import snapshot_cases

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
STORED = Path(__file__).resolve().parent / "snapshots" / "single_image.json"
DYNAMIC_PROVIDER = "pulumi:providers:pulumi-python::default"
#: Keys Pulumi.yaml declares since then; the engine hands every declared key (with its default)
#: to the dynamic provider's configuration, so they are the one expected addition.
NEW_KEYS = {"lambda-microvms:images": "{}", "lambda-microvms:protect": "false"}


@pytest.fixture(scope="module")
def current():
    return snapshot_cases(REPO)


@pytest.fixture(scope="module")
def stored():
    return json.loads(STORED.read_text())


@pytest.mark.parametrize("case", ["dev", "dev-preview", "local"])
def test_same_urns_inputs_options_and_outputs(current, stored, case):
    before, after = stored[case], current[case]
    assert sorted(after["resources"]) == sorted(before["resources"])
    for urn, record in before["resources"].items():
        now = after["resources"][urn]
        if urn.endswith(DYNAMIC_PROVIDER):
            added = {k: v for k, v in now["inputs"].items() if k not in record["inputs"]}
            assert added == NEW_KEYS, urn
            now = {**now, "inputs": {k: v for k, v in now["inputs"].items() if k not in added}}
        assert now == record, urn
    assert after["outputs"] == before["outputs"]
    assert "images" not in after["outputs"]  # exported only when the config lists images


def test_the_snapshot_covers_every_image_resource(stored):
    names = {urn.rsplit("::", 1)[1] for urn in stored["dev"]["resources"]}
    assert {"artifact-object", "logs-log-group", "build-role", "execution-role"} <= names
    assert {"image-image", "smoke-smoke", "artifacts-bucket"} <= names
