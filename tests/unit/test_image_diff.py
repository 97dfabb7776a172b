"""Diff classification, normalisation, retention and naming: pure functions, no mocks."""

from __future__ import annotations

import copy

import pytest
from pulumi.output import Unknown

from components.microvm_image import spec
from components.microvm_image.diff import plan_diff, retention_plan, tag_delta
from tests.unit.test_image_validation import base_props


def checked() -> dict:
    return spec.fill_defaults(base_props())


def outputs_of(p: dict, **extra) -> dict:
    """What the provider stores as outputs: the inputs plus computed members."""
    outs = copy.deepcopy(p)
    outs.update(
        {
            "name": "app-1a2b3c4d",
            "imageArn": "arn:aws:lambda:us-east-1:123456789012:microvm-image:app-1a2b3c4d",
            "imageVersion": "1.0",
            "state": "CREATED",
            "builds": [],
        }
    )
    outs.update(extra)
    return outs


def test_unchanged_program_has_no_diff():
    news = checked()
    plan = plan_diff(outputs_of(news), news)
    assert plan.kind == "none" and not plan.changes


def test_struct_doubles_are_not_a_change():
    news = checked()
    olds = outputs_of(news)
    olds["resources"] = [{"minimumMemoryInMiB": 2048.0}]
    olds["keepVersions"] = 3.0
    olds["hooks"]["port"] = 9000.0
    assert plan_diff(olds, news).kind == "none"


@pytest.mark.parametrize(("old", "new"), [("1", "1.0"), ("1.0", "1"), ("2", "2.00"), ("1", "1")])
def test_base_image_version_spellings_are_equal(old, new):
    news = {**checked(), "baseImageVersion": new}
    olds = outputs_of({**checked(), "baseImageVersion": old})
    assert plan_diff(olds, news).kind == "none"


def test_unset_base_image_version_accepts_what_the_service_resolved():
    news = checked()
    assert "baseImageVersion" not in news
    assert plan_diff(outputs_of({**news, "baseImageVersion": "1.0"}), news).kind == "none"


def test_pinning_the_resolved_base_version_is_not_a_change():
    news = checked()
    olds = outputs_of(news, resolvedBaseImageVersion="1.0")
    assert plan_diff(olds, {**news, "baseImageVersion": "1"}).kind == "none"
    assert plan_diff(olds, {**news, "baseImageVersion": "2"}).kind == "version"


def test_base_image_version_major_change_is_a_new_version():
    news = {**checked(), "baseImageVersion": "2"}
    plan = plan_diff(outputs_of({**checked(), "baseImageVersion": "1.0"}), news)
    assert plan.kind == "version" and plan.build == ("baseImageVersion",)


def test_tags_only_change_is_in_place():
    news = checked()
    olds = outputs_of(news)
    news = {**news, "tags": {"team": "platform", "cost-center": "42"}}
    plan = plan_diff(olds, news)
    assert plan.kind == "tags" and plan.tags and not plan.build and not plan.replaces


def test_creation_tag_is_not_a_user_tag_change():
    news = checked()
    olds = outputs_of(news, tags={**news["tags"], spec.CREATION_TAG: "pulumi-create-abc"})
    assert plan_diff(olds, news).kind == "none"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("codeArtifact", {"uri": "s3://artifact-bucket-1/images/app-def456.zip"}),
        ("resources", [{"minimumMemoryInMiB": 4096}]),
        ("hooks", None),
        ("environmentVariables", {"LOG_LEVEL": "debug"}),
        ("secretEnvironmentVariables", {"API_TOKEN": "rotated"}),
        ("logging", {"disabled": {}}),
        ("description", "new text"),
        ("buildRoleArn", "arn:aws:iam::123456789012:role/other"),
        ("additionalOsCapabilities", ["ALL"]),
    ],
)
def test_build_config_change_mints_a_version(key, value):
    news = checked()
    olds = outputs_of(news)
    news = {**news, key: value}
    plan = plan_diff(olds, news)
    assert plan.kind == "version", plan
    assert plan.replaces == ()


def test_state_more_secret_than_the_program_is_not_a_change():
    news = checked()
    olds = outputs_of(news)
    olds["secretEnvironmentVariables"] = {"API_TOKEN": "s3cr3t-value", "LOG_LEVEL": "info"}
    olds["environmentVariables"] = {}
    assert plan_diff(olds, news).kind == "none"


def test_moving_a_variable_between_plain_and_secret_does_not_rebuild():
    news = checked()
    olds = outputs_of(news)
    news = {
        **news,
        "environmentVariables": {},
        "secretEnvironmentVariables": {"API_TOKEN": "s3cr3t-value", "LOG_LEVEL": "info"},
    }
    plan = plan_diff(olds, news)
    assert plan.kind == "settings" and plan.settings == ("secretEnvironmentVariables",)


@pytest.mark.parametrize("key", ["region", "name"])
def test_name_and_region_replace(key):
    base = {**checked(), "name": "explicit-name"}
    base.pop("namePrefix", None)
    olds = outputs_of(base, name="explicit-name")
    news = {**base, key: "us-west-2" if key == "region" else "another-name"}
    plan = plan_diff(olds, news)
    assert plan.kind == "replace" and plan.replaces == (key,)


def test_generated_name_follows_the_prefix():
    news = checked()
    olds = outputs_of(news)
    assert plan_diff(olds, {**news, "namePrefix": "renamed"}).replaces == ("namePrefix",)
    # a new nameSeed (a renamed Pulumi resource with an alias) keeps the image
    assert plan_diff(olds, {**news, "nameSeed": "lambda-microvms/dev/other"}).kind == "none"


def test_dropping_an_explicit_name_keeps_an_image_with_that_prefix():
    news = checked()  # generated, prefix "app"
    olds = {k: v for k, v in outputs_of(news, name="app-handmade").items() if k != "namePrefix"}
    assert plan_diff(olds, news).kind == "none"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("keepVersions", 5),
        ("buildTimeoutMinutes", 60),
        ("terminateMicrovmsOnDelete", True),
        ("endpointUrl", "http://127.0.0.1:1"),
    ],
)
def test_provider_settings_change_without_rebuild(key, value):
    news = checked()
    olds = outputs_of(news)
    plan = plan_diff(olds, {**news, key: value})
    assert plan.kind == "settings" and plan.settings == (key,)


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("codeArtifact", {"uri": Unknown()}, "version"),
        ("buildRoleArn", Unknown(), "version"),
        ("secretEnvironmentVariables", Unknown(), "version"),
        ("tags", Unknown(), "tags"),
        ("region", Unknown(), "replace"),
        ("keepVersions", Unknown(), "settings"),
        ("codeArtifact", {"uri": spec.UNKNOWN}, "version"),
    ],
)
def test_unknowns_in_preview_are_changes(key, value, kind):
    news = checked()
    olds = outputs_of(news)
    plan = plan_diff(olds, {**news, key: value})
    assert plan.changes, "an unknown input must be reported as DIFF_SOME"
    assert plan.kind == kind
    assert key in plan.unknown or (
        key == "secretEnvironmentVariables" and plan.unknown == ("environmentVariables",)
    )


def test_tag_delta():
    to_set, to_remove = tag_delta(
        {"a": "1", "b": "2", spec.CREATION_TAG: "t"}, {"a": "1", "b": "3", "c": "4"}
    )
    assert to_set == {"b": "3", "c": "4"}
    assert to_remove == []
    to_set, to_remove = tag_delta({"a": "1", "gone": "x", spec.CREATION_TAG: "t"}, {"a": "1"})
    assert to_set == {} and to_remove == ["gone"]  # never removes the creation marker


def _versions(*specs):
    return [{"imageVersion": v, "state": s, "status": st} for v, s, st in specs]


def test_retention_keeps_the_newest():
    versions = _versions(
        ("1.0", "SUCCESSFUL", "ACTIVE"),
        ("2.0", "SUCCESSFUL", "ACTIVE"),
        ("3.0", "SUCCESSFUL", "ACTIVE"),
        ("10.0", "SUCCESSFUL", "ACTIVE"),
    )
    assert retention_plan(versions, keep=2, protected={"10.0"}) == ["2.0", "1.0"]


def test_retention_never_deletes_protected_or_draining_versions():
    versions = _versions(
        ("1.0", "SUCCESSFUL", "ACTIVE"),  # used by a running MicroVM
        ("2.0", "DELETING", "INACTIVE"),
        ("3.0", "FAILED", "INACTIVE"),
        ("4.0", "SUCCESSFUL", "ACTIVE"),
    )
    assert retention_plan(versions, keep=1, protected={"4.0", "1"}) == ["3.0"]


def test_owner_ids_differ_per_resource_and_region():
    a = spec.owner_id({"nameSeed": "lambda-microvms/dev/app-image", "region": "us-east-1"})
    assert a == spec.owner_id({"nameSeed": "lambda-microvms/dev/app-image", "region": "us-east-1"})
    others = {
        spec.owner_id({"nameSeed": "lambda-microvms/dev/app-image", "region": "us-west-2"}),
        spec.owner_id({"nameSeed": "lambda-microvms/prod/app-image", "region": "us-east-1"}),
    }
    assert a not in others and len(others) == 2
    assert spec.delivered(a) == a + "/delivered"


def test_generated_names_carry_the_owner_marker_and_fit_64_characters():
    owner = spec.owner_id({"nameSeed": "s", "region": "us-east-1"})
    name = spec.generated_name("app", owner, "beef")
    assert name == f"app-{owner[:4]}beef"
    assert spec.is_generated_by(name, owner)
    assert not spec.is_generated_by(name, spec.owner_id({"nameSeed": "t", "region": "us-east-1"}))
    assert not spec.is_generated_by("app-fixed", owner)
    assert len(spec.generated_name("x" * 80, owner, "0123")) == 64


def test_provider_tags_are_never_user_tags():
    tags = {"team": "a", spec.OWNER_TAG: "o/delivered", spec.CREATION_TAG: "t"}
    assert spec.user_tags(tags) == {"team": "a"}
    to_set, to_remove = tag_delta(tags, {"team": "b"})
    assert to_set == {"team": "b"} and to_remove == []


def test_client_token_is_stable_and_input_sensitive():
    p = checked()
    t1 = spec.client_token("create", "seed|app-1", p)
    assert t1 == spec.client_token("create", "seed|app-1", copy.deepcopy(p))
    assert len(t1) <= 128
    changed = {**p, "secretEnvironmentVariables": {"API_TOKEN": "other"}}
    assert spec.client_token("create", "seed|app-1", changed) != t1
    assert "s3cr3t-value" not in t1
    # tags and provider settings are not part of the build body: same token
    assert spec.client_token("create", "seed|app-1", {**p, "keepVersions": 9}) == t1


def test_build_request_is_a_full_put_with_merged_environment():
    body = spec.build_request(checked())
    assert set(body) >= {
        "baseImageArn",
        "buildRoleArn",
        "codeArtifact",
        "cpuConfigurations",
        "resources",
        "egressNetworkConnectors",
        "hooks",
        "environmentVariables",
    }
    assert body["environmentVariables"] == {"LOG_LEVEL": "info", "API_TOKEN": "s3cr3t-value"}
    assert "tags" not in body and "name" not in body


def test_config_from_version_round_trips_and_keeps_secrets_apart():
    p = {**checked(), "baseImageVersion": "1"}
    live = {
        **spec.build_request(p),
        "baseImageVersion": "1.0",
        "imageVersion": "1.0",
        "state": "SUCCESSFUL",
    }
    config = spec.config_from_version(live, prior=outputs_of(p))
    assert config["baseImageVersion"] == "1"  # the program's spelling, not the echo
    assert config["secretEnvironmentVariables"] == {"API_TOKEN": "s3cr3t-value"}
    assert config["environmentVariables"] == {"LOG_LEVEL": "info"}
    olds = outputs_of({**p, **config})
    assert plan_diff(olds, p).kind == "none"


def test_config_from_version_shows_drift():
    p = checked()
    live = {
        **spec.build_request(p),
        "resources": [{"minimumMemoryInMiB": 8192}],
        "imageVersion": "2.0",
    }
    config = spec.config_from_version(live, prior=outputs_of(p))
    plan = plan_diff(outputs_of({**p, **config}), p)
    assert plan.kind == "version" and plan.build == ("resources",)


def test_import_without_prior_treats_every_value_as_secret():
    live = {**spec.build_request(checked()), "imageVersion": "1.0"}
    config = spec.config_from_version(live, prior=None)
    assert config["environmentVariables"] == {}
    assert set(config["secretEnvironmentVariables"]) == {"LOG_LEVEL", "API_TOKEN"}


# ---- the wait policy and failure text (pure parts of microvms/waiters.py) ----------------------


def test_backoff_polls_early_then_caps_within_the_request_budget():
    from microvms.waiters import DEFAULT_BACKOFF

    delays = DEFAULT_BACKOFF.delays(rng=lambda: 0.5)
    first = [next(delays) for _ in range(40)]
    assert first[0] <= 0.5 and sum(first[:4]) < 5  # four looks in the first five seconds
    assert max(first) <= DEFAULT_BACKOFF.cap
    tail = first[10:]
    assert min(tail) >= 3.0  # a long build costs at most one Get every 3 s
    assert max(tail) / 2 <= 2.5  # so half an interval (the median overshoot) stays <= 2.5 s


def test_build_failure_text_is_actionable():
    from microvms.waiters import BuildFailed, BuildResult

    err = BuildFailed(
        image_arn="arn:aws:lambda:us-east-1:123456789012:microvm-image:app-1",
        image_version="2.0",
        state_reason="S3_ACCESS_DENIED",
        builds=[
            BuildResult("b-3", "ARM_64", "GRAVITON", "3", "FAILED", "S3_ACCESS_DENIED"),
            BuildResult("b-4", "ARM_64", "GRAVITON", "4", "FAILED", "S3_ACCESS_DENIED"),
        ],
        log_group="/aws/lambda-microvms/app-1",
    )
    text = str(err)
    assert "version 2.0 failed to build: S3_ACCESS_DENIED" in text
    assert "build b-3 (ARM_64, chipset generation 3): FAILED - S3_ACCESS_DENIED" in text
    assert "grant s3:GetObject on it to buildRoleArn" in text
    assert "CloudWatch log group /aws/lambda-microvms/app-1" in text


def test_provider_clients_use_explicit_standard_retries():
    """Throttling and 5xx are retried by botocore's standard mode, configured explicitly; the
    endpoint comes from endpointUrl or else the AWS_ENDPOINT_URL_* variables."""
    from components.microvm_image.provider import MAX_ATTEMPTS, _client

    client = _client({"region": "eu-west-1", "endpointUrl": "http://127.0.0.1:9"})
    retries = client.meta.config.retries
    # botocore's ``max_attempts`` in ``retries`` counts retries: 10 retries = 11 attempts in all
    assert retries["mode"] == "standard" and retries["total_max_attempts"] == MAX_ATTEMPTS + 1
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"


def test_stable_outputs_keep_the_version_known_when_no_build_is_planned():
    from components.microvm_image.diff import DiffPlan, stable_outputs

    assert stable_outputs(DiffPlan(tags=True)) == ["imageArn", "imageName", "imageVersion"]
    assert stable_outputs(DiffPlan(settings=("keepVersions",))) == [
        "imageArn", "imageName", "imageVersion",
    ]  # fmt: skip
    assert stable_outputs(DiffPlan(build=("resources",))) == ["imageArn"]
    assert stable_outputs(DiffPlan(unknown=("codeArtifact",))) == ["imageArn"]
    assert stable_outputs(DiffPlan(replaces=("region",))) == []


def test_component_leaves_defaults_to_the_providers_check():
    """The component sends no default of its own; ``check`` (fill_defaults) fills each one in."""
    from components.microvm_image.component import MicrovmImageArgs, image_props

    props = image_props(
        "img",
        MicrovmImageArgs(
            artifact_uri="s3://b/images/app/a.zip",
            build_role_arn="arn:aws:iam::123456789012:role/build",
            region="us-east-1",
        ),
    )
    for key in ("resources", "cpuConfigurations", "keepVersions", "buildTimeoutMinutes"):
        assert key not in props
    filled = spec.fill_defaults(props)
    assert filled["resources"] == [{"minimumMemoryInMiB": spec.DEFAULT_MEMORY}]
    assert filled["cpuConfigurations"] == [{"architecture": spec.DEFAULT_ARCHITECTURE}]
    assert filled["keepVersions"] == spec.DEFAULT_KEEP_VERSIONS
    assert filled["buildTimeoutMinutes"] == spec.DEFAULT_BUILD_TIMEOUT_MINUTES
    assert filled["terminateMicrovmsOnDelete"] is False
    explicit = image_props(
        "img",
        MicrovmImageArgs(
            artifact_uri="s3://b/images/app/a.zip",
            build_role_arn="arn:aws:iam::123456789012:role/build",
            region="us-east-1",
            memory_mib=4096,
        ),
    )
    assert spec.fill_defaults(explicit)["resources"] == [{"minimumMemoryInMiB": 4096}]
