"""``lambda-microvms:images``: several images per stack, each falling back to the stack-wide keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.config import DEFAULT_IMAGE_KEY, ConfigError, parse_settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ARN = "arn:aws:lambda:us-east-1:123456789012:microvm-image:hand-built"
BASE = {
    "lambda-microvms:environment": "local",
    "aws:region": "us-east-1",
    "lambda-microvms:accountId": "123456789012",
}


def settings(images=None, *, secret_keys=(), program_dir=REPO, **raw):
    config = {**BASE, **{f"lambda-microvms:{k}": v for k, v in raw.items()}}
    if images is not None:
        config["lambda-microvms:images"] = json.dumps(images)
    return parse_settings(config, secret_keys=secret_keys, program_dir=program_dir)


def by_key(s):
    return {i.key: i for i in s.images}


def test_no_images_means_one_default_image_from_the_stack_wide_keys():
    s = settings(memoryMiB="4096", keepVersions="4", imageName="sandbox")
    assert not s.images_declared
    (image,) = s.images
    assert image.key == DEFAULT_IMAGE_KEY and image.is_default
    assert (image.image_name, image.memory_mib, image.keep_versions) == ("sandbox", 4096, 4)
    assert image.source == "image"
    assert image.hooks == s.hooks
    assert image.logical_name("image") == "image"
    # Pulumi.yaml's default {} means the same as no key at all
    assert settings({}).images == settings().images
    assert not settings({}).images_declared


def test_each_image_falls_back_to_the_stack_wide_setting():
    s = settings(
        {
            "default": {},
            "worker": {
                "memoryMiB": 8192,
                "smokeTest": {"path": "/ready"},
                "tags": {"team": "workers"},
                "environmentVariables": {"MODE": "worker"},
                "keepVersions": 5,
            },
        },
        memoryMiB="1024",
        smokeTest=json.dumps({"timeoutSeconds": 120}),
        tags=json.dumps({"team": "sandboxes", "cost-center": "dev"}),
        environmentVariables=json.dumps({"LOG_LEVEL": "debug"}),
    )
    assert s.images_declared
    default, worker = by_key(s)["default"], by_key(s)["worker"]
    assert (default.memory_mib, worker.memory_mib) == (1024, 8192)
    # smokeTest merges member by member
    assert (worker.smoke_test.path, worker.smoke_test.timeout_seconds) == ("/ready", 120)
    assert (default.smoke_test.path, default.smoke_test.timeout_seconds) == ("/health", 120)
    # tags add to the stack's; environmentVariables replace them
    assert worker.tags == {"team": "workers", "cost-center": "dev"}
    assert default.tags == {"team": "sandboxes", "cost-center": "dev"}
    assert worker.environment_variables == {"MODE": "worker"}
    assert default.environment_variables == {"LOG_LEVEL": "debug"}
    assert (default.keep_versions, worker.keep_versions) == (3, 5)
    # names: the default keeps the stack's, another image derives its own
    assert (default.image_name, worker.image_name) == ("agent-sandbox", "agent-sandbox-worker")
    assert worker.logical_name("image") == "worker-image"
    assert s.tags_for(worker)["team"] == "workers"


def test_a_stack_without_a_default_image():
    s = settings({"api": {"imageName": "api"}, "batch": {}})
    assert [i.key for i in s.images] == ["api", "batch"]
    assert [i.image_name for i in s.images] == ["api", "agent-sandbox-batch"]


def test_adopt_per_image_and_the_stack_wide_adopt_only_for_the_default_image():
    s = settings({"default": {}, "worker": {"adopt": "worker-by-hand"}, "batch": {}}, adopt=ARN)
    images = by_key(s)
    assert s.adopted_arn_of(images["default"]) == ARN
    assert s.adopted_arn_of(images["worker"]) == ARN.replace("hand-built", "worker-by-hand")
    assert s.adopted_arn_of(images["batch"]) is None


def test_an_image_adopt_overrides_the_stack_wide_one_for_the_default_image():
    own = ARN.replace("hand-built", "other")
    s = settings({"default": {"adopt": own}}, adopt=ARN)
    assert s.adopted_arn_of(s.images[0]) == own


def test_the_stack_wide_adopt_needs_a_default_image():
    with pytest.raises(ConfigError, match="'lambda-microvms:adopt' adopts the default image") as e:
        settings({"worker": {}}, adopt=ARN)
    assert "images.<key>.adopt" in str(e.value)


def test_active_version_is_parsed_per_image():
    s = settings({"default": {"activeVersion": "3.0"}, "worker": {}})
    assert by_key(s)["default"].active_version == "3.0"
    assert by_key(s)["worker"].active_version is None


def test_a_per_image_secret_needs_the_images_key_to_be_secret():
    images = {"worker": {"secretEnvironmentVariables": {"API_TOKEN": "x"}}}
    with pytest.raises(ConfigError, match="images.worker.secretEnvironmentVariables' must be set"):
        settings(images)
    s = settings(images, secret_keys=("lambda-microvms:images",))
    worker = s.images[0]
    assert worker.own_secret_environment_variables
    assert worker.secret_environment_variable_names == ("API_TOKEN",)


def test_a_variable_both_plain_and_secret_in_one_image_is_refused():
    images = {
        "worker": {"environmentVariables": {"A": "1"}, "secretEnvironmentVariables": {"A": "x"}}
    }
    with pytest.raises(ConfigError) as err:
        settings(images, secret_keys=("lambda-microvms:images",))
    assert "'lambda-microvms:images.worker.environmentVariables' and " in str(err.value)
    assert "'lambda-microvms:images.worker.secretEnvironmentVariables' both define A" in str(
        err.value
    )


def test_an_image_with_its_own_source_uses_that_folders_hooks(tmp_path):
    (tmp_path / "image").mkdir()
    (tmp_path / "image" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "images" / "worker").mkdir(parents=True)
    (tmp_path / "images" / "worker" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "images" / "worker" / "hooks.json").write_text('{"port": 9000}')
    s = settings({"worker": {"source": "images/worker"}}, program_dir=tmp_path)
    assert s.images[0].source == "images/worker"
    assert s.images[0].hooks == {"port": 9000}
    # a stack-wide hooks override wins over the folder's file
    s = settings(
        {"worker": {"source": "images/worker"}}, program_dir=tmp_path, hooks='{"port": 7000}'
    )
    assert s.images[0].hooks == {"port": 7000}


@pytest.mark.parametrize(
    ("images", "key", "message"),
    [
        ({"Worker": {}}, "lambda-microvms:images'", "key 'Worker'; an image key is 1-24"),
        ({"9lives": {}}, "lambda-microvms:images'", "starting with a letter"),
        ({"worker": "big"}, "lambda-microvms:images.worker'", "must be an object"),
        ({"worker": {"memory": 1}}, "lambda-microvms:images.worker'", "unknown member(s) memory"),
        ({"worker": {"memoryMiB": 1000}}, "images.worker.memoryMiB'", "allowed values: 512"),
        ({"worker": {"memoryMiB": "lots"}}, "images.worker.memoryMiB'", "must be an integer"),
        ({"worker": {"smokeTest": {"path": "x"}}}, "images.worker.smokeTest.path'", "with '/'"),
        ({"worker": {"sessionRun": {"enabled": 1}}}, "images.worker.sessionRun.enabled'", "true"),
        ({"worker": {"keepVersions": 0}}, "images.worker.keepVersions'", "between 1 and"),
        ({"worker": {"logRetentionDays": 2}}, "images.worker.logRetentionDays'", "allowed"),
        ({"worker": {"baseImageVersion": "1.0"}}, "images.worker.baseImageVersion'", "major"),
        ({"worker": {"imageName": "has space"}}, "images.worker.imageName'", "1-40 characters"),
        ({"worker": {"hooks": [1]}}, "images.worker.hooks'", "must be an object"),
        ({"worker": {"tags": {"a": [1]}}}, "images.worker.tags.a'", "must be a string"),
        ({"worker": {"source": "nowhere"}}, "images.worker.source'", "a folder inside the project"),
        (
            {"worker": {"source": "../image"}},
            "images.worker.source'",
            "a folder inside the project",
        ),
        ({"worker": {"source": "components"}}, "images.worker.source'", "no Dockerfile"),
        ({"worker": {"adopt": "has space"}}, "images.worker.adopt'", "MicroVM image ARN"),
        ({"worker": {"activeVersion": "3"}}, "images.worker.activeVersion'", '"<n>.0"'),
        ({"worker": {"activeVersion": "3.1"}}, "images.worker.activeVersion'", '"<n>.0"'),
        ({"worker": {"activeVersion": "0.0"}}, "images.worker.activeVersion'", '"<n>.0"'),
        (
            {"worker": {"adopt": ARN.replace("us-east-1", "us-west-2")}},
            "images.worker.adopt'",
            "the stack deploys to us-east-1",
        ),
    ],
)
def test_bad_entries_are_refused_naming_the_key_path(images, key, message):
    with pytest.raises(ConfigError) as err:
        settings(images)
    assert key in str(err.value)
    assert message in str(err.value)


def test_images_must_be_a_map():
    with pytest.raises(ConfigError, match="'lambda-microvms:images' must be an object"):
        parse_settings({**BASE, "lambda-microvms:images": "[1]"})


def test_two_images_never_share_a_name():
    with pytest.raises(ConfigError) as err:
        settings({"default": {}, "worker": {"imageName": "agent-sandbox"}})
    assert "'lambda-microvms:images.default.imageName' and " in str(err.value)
    assert "'lambda-microvms:images.worker.imageName' are both 'agent-sandbox'" in str(err.value)


def test_two_images_never_adopt_the_same_image():
    with pytest.raises(ConfigError, match="both adopt 'hand-built'"):
        settings({"a": {"adopt": "hand-built"}, "b": {"adopt": "hand-built"}})


def test_a_derived_name_too_long_asks_for_an_image_name():
    with pytest.raises(ConfigError) as err:
        settings({"a-rather-long-image-key": {}}, imageName="a-very-long-stack-image-name")
    assert "'lambda-microvms:images.a-rather-long-image-key.imageName'" in str(err.value)
    assert "derived from 'lambda-microvms:imageName' and the key" in str(err.value)


def test_protect_is_a_boolean_off_by_default():
    assert settings().protect is False
    assert settings(protect="true").protect is True
    with pytest.raises(ConfigError, match="'lambda-microvms:protect' must be true or false"):
        settings(protect="yes")
