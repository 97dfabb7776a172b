"""``activeVersion``: its shape, spelling, diff class and stable outputs (pure, no mocks)."""

from __future__ import annotations

import pytest
from pulumi.output import Unknown

from components.microvm_image import spec
from components.microvm_image.diff import DiffPlan, plan_diff, retention_plan, stable_outputs
from components.microvm_image.validation import validate
from microvms import images
from tests.unit.test_image_diff import checked, outputs_of
from tests.unit.test_image_validation import base_props


@pytest.mark.parametrize(("given", "stored"), [("3", "3.0"), ("3.0", "3.0"), (3, "3.0")])
def test_the_service_spelling_is_stored(given, stored):
    props = spec.fill_defaults({**base_props(), "activeVersion": given})
    assert props["activeVersion"] == stored
    assert validate(props) == []


@pytest.mark.parametrize("empty", [None, ""])
def test_unset_means_the_newest_and_is_not_stored(empty):
    props = spec.fill_defaults({**base_props(), "activeVersion": empty})
    assert "activeVersion" not in props and validate(props) == []


@pytest.mark.parametrize("bad", ["latest", "2.5", "0", "0.0", "v2", "-1", True, 2.5, ["2.0"]])
def test_a_malformed_version_is_refused_naming_the_field(bad):
    failures = validate(spec.fill_defaults({**base_props(), "activeVersion": bad}))
    assert [path for path, _ in failures] == ["activeVersion"]
    assert 'give "<n>.0" (e.g. "2.0")' in failures[0][1]


def test_an_unknown_version_in_a_preview_is_not_a_failure():
    assert validate(spec.fill_defaults({**base_props(), "activeVersion": Unknown()})) == []


def test_a_rollback_is_its_own_in_place_class():
    news = checked()
    pinned = {**news, "activeVersion": "2.0"}
    plan = plan_diff(outputs_of(news), pinned)
    assert plan.kind == "activate" and plan.active
    assert not plan.build and not plan.replaces and not plan.tags
    assert plan.changed_keys == ("activeVersion",)
    # back to the newest, another version, and the same version spelt differently
    assert plan_diff(outputs_of(pinned), news).kind == "activate"
    assert plan_diff(outputs_of(pinned), {**news, "activeVersion": "1.0"}).kind == "activate"
    assert plan_diff(outputs_of(pinned), {**news, "activeVersion": 2}).kind == "none"


def test_a_rollback_keeps_the_outputs_a_tags_change_keeps():
    plan = plan_diff(outputs_of(checked()), {**checked(), "activeVersion": "2.0"})
    assert stable_outputs(plan) == stable_outputs(DiffPlan(tags=True))
    assert stable_outputs(plan) == ["imageArn", "imageName", "imageVersion"]


def test_a_rollback_with_a_build_change_is_a_version():
    news = {**checked(), "activeVersion": "1.0", "resources": [{"minimumMemoryInMiB": 4096}]}
    plan = plan_diff(outputs_of(checked()), news)
    assert plan.kind == "version" and plan.active and plan.build == ("resources",)


def test_an_unknown_version_is_a_change():
    plan = plan_diff(outputs_of(checked()), {**checked(), "activeVersion": Unknown()})
    assert plan.changes and "activeVersion" in plan.unknown


def test_retention_never_plans_the_pinned_version():
    versions = [{"imageVersion": f"{n}.0", "state": "SUCCESSFUL"} for n in range(1, 6)]
    assert retention_plan(versions, keep=2, protected={"1.0"}) == ["3.0", "2.0"]


def test_which_versions_can_serve():
    versions = [
        {"imageVersion": "10.0", "state": "IN_PROGRESS"},
        {"imageVersion": "9.0", "state": "FAILED"},
        {"imageVersion": "2.0", "state": "SUCCESSFUL"},
        {"imageVersion": "8.0", "state": "DELETING"},
        {"imageVersion": "3.0", "state": "SUCCESSFUL"},
    ]
    assert images.activatable(versions) == ["3.0", "2.0"]
    assert [images.normalise_version(v) for v in ("2", 2, "2.0")] == ["2.0"] * 3
    err = images.NotRetained("arn:x", "9.0", ["3.0", "2.0"])
    assert str(err) == (
        "version 9.0 is not a retained, successfully built version of image arn:x; "
        "retained versions: 3.0, 2.0"
    )
