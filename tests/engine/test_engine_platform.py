"""A platform team's stack under the real Pulumi CLI: two images, a rollback, protected resources,
and drift found by ``pulumi refresh`` (issue 17), on the same rig as ``test_engine_local_stack``."""

from __future__ import annotations

import pytest

from microvms import waiters
from tests.engine.stack import EngineStack
from tests.engine.test_engine_local_stack import IMAGE_TYPE, client, steps_by_type

pytestmark = pytest.mark.timeout(900)


def image_state(engine: EngineStack, name: str) -> dict:
    """The dynamic resource ``name`` (e.g. ``worker-image-image``) in the exported state."""
    for res in engine.export()["deployment"]["resources"]:
        if res["type"] == IMAGE_TYPE and res["urn"].endswith(f"::{name}"):
            return res
    raise AssertionError(f"no {name} in state")


def console_change(engine: EngineStack, image_id: str, edit) -> None:
    """The console's full PUT: the live version's configuration with ``edit`` applied to it, then
    the wait until the new version is built."""
    mv = client(engine, "lambda-microvms")
    current = mv.get_microvm_image(imageIdentifier=image_id)["latestActiveImageVersion"]
    live = mv.get_microvm_image_version(imageIdentifier=image_id, imageVersion=current)
    members = mv.meta.service_model.operation_model("UpdateMicrovmImage").input_shape.members
    body = {
        k: live[k] for k in members if k in live and k not in ("imageIdentifier", "clientToken")
    }
    edit(body)
    version = mv.update_microvm_image(imageIdentifier=image_id, **body)["imageVersion"]
    waiters.wait_for_image_version(mv, image_id, version, timeout=60)


def test_two_images_rollback_and_protected_destroy(engine: EngineStack):
    engine.write_config(
        **{
            "lambda-microvms:images": {"default": {}, "worker": {"memoryMiB": 2048}},
            "lambda-microvms:protect": True,
        }
    )
    assert engine.up().returncode == 0
    outputs = engine.outputs()
    images = outputs["images"]
    assert set(images) == {"default", "worker"}
    assert images["default"]["imageArn"] != images["worker"]["imageArn"]
    assert images["worker"]["smokeTest"]["ok"] is True
    mv = client(engine, "lambda-microvms")
    worker = mv.get_microvm_image(imageIdentifier=images["worker"]["imageArn"])
    assert worker["name"] == images["worker"]["imageName"]

    # A second version of the default image, then roll back to 1.0 without a rebuild.
    engine.write_config(
        **{
            "lambda-microvms:images": {
                "default": {"memoryMiB": 2048},
                "worker": {"memoryMiB": 2048},
            }
        }
    )
    assert engine.up().returncode == 0
    default_arn = images["default"]["imageArn"]
    assert mv.get_microvm_image(imageIdentifier=default_arn)["latestActiveImageVersion"] == "2.0"
    engine.write_config(
        **{"lambda-microvms:images": {
            "default": {"memoryMiB": 2048, "activeVersion": "1.0"}, "worker": {"memoryMiB": 2048},
        }}
    )  # fmt: skip
    preview = engine.preview_json()
    assert preview.returncode == 0, preview.output[-6000:]
    ops = {s["urn"].split("::")[-1]: s["op"] for s in steps_by_type(preview.json())[IMAGE_TYPE]}
    assert ops.get("image-image") == "update", ops
    assert ops.get("worker-image-image", "same") == "same", ops
    builds_before = len(mv.list_microvm_image_versions(imageIdentifier=default_arn)["items"])
    assert engine.up().returncode == 0
    image = mv.get_microvm_image(imageIdentifier=default_arn)
    assert image["latestActiveImageVersion"] == "1.0"
    versions = mv.list_microvm_image_versions(imageIdentifier=default_arn)["items"]
    assert len(versions) == builds_before  # no rebuild
    # Clearing the pin returns to the newest version.
    engine.write_config(
        **{
            "lambda-microvms:images": {
                "default": {"memoryMiB": 2048},
                "worker": {"memoryMiB": 2048},
            }
        }
    )
    assert engine.up().returncode == 0
    assert mv.get_microvm_image(imageIdentifier=default_arn)["latestActiveImageVersion"] == "2.0"

    # Protected: destroy is refused, naming what is protected.
    refused = engine.pulumi("destroy", "--yes")
    assert refused.returncode != 0
    assert "cannot be deleted" in refused.output
    for name in ("image-image", "worker-image-image"):
        assert f'MicrovmImage::{name}" cannot be deleted' in refused.output, name
    # every bucket, image and log group is protected and retained, and nothing else
    protected = {
        r["urn"].split("::")[-1]
        for r in engine.export()["deployment"]["resources"]
        if r.get("protect")
    }
    assert protected == {
        "artifacts-bucket", "image-image", "worker-image-image", "logs-log-group",
        "worker-logs-log-group",
    }, protected  # fmt: skip
    # Unprotected, destroy goes through and retains the protected resources (retainOnDelete).
    engine.ok("state", "unprotect", "--all", "--yes", config=False)
    engine.ok("destroy", "--yes")
    live = [i for i in mv.list_microvm_images()["items"] if i.get("state") != "DELETED"]
    assert {i["imageArn"] for i in live} == {default_arn, images["worker"]["imageArn"]}
    assert [v for v in mv.list_microvms()["items"] if v.get("state") != "TERMINATED"] == []


@pytest.mark.parametrize(
    ("edit", "changed"),
    [
        (
            lambda b: b.update(hooks={"port": 9000, "microvmImageHooks": {"ready": "DISABLED"}}),
            "hooks",
        ),
        (lambda b: b.update(resources=[{"minimumMemoryInMiB": 4096}]), "resources"),
    ],
    ids=["hooks", "memory"],
)
def test_refresh_finds_a_console_change(engine: EngineStack, edit, changed):
    engine.write_config(**{"lambda-microvms:smokeTest": {"enabled": False}})
    assert engine.up().returncode == 0
    engine.ok("refresh", "--preview-only", "--expect-no-changes")
    console_change(engine, image_state(engine, "image-image")["id"], edit)

    drift = engine.pulumi("refresh", "--preview-only", "--expect-no-changes", "--diff")
    assert drift.returncode != 0
    assert "image-image" in drift.output and changed in drift.output
