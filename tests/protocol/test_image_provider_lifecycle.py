"""Image provider lifecycle through the SDK's dynamic-provider gRPC server against the emulator."""

from __future__ import annotations

import pytest

from components.microvm_image import spec
from devkit.offline.provider import ProviderError
from tests.protocol import test_image_provider_support as support
from tests.protocol.test_image_provider_support import (
    PROVIDER,
    SECRET_VALUE,
    program_inputs,
)

# fixtures shared with the other image-provider modules
rig = support.rig
shared_rig = support.shared_rig

pytestmark = pytest.mark.protocol


def test_create_reaches_created_with_outputs(rig):
    inputs, created = rig.create()
    out = created.outputs
    assert created.id == out["imageArn"]
    assert out["imageArn"].startswith("arn:aws:lambda:us-east-1:123456789012:microvm-image:app-")
    owner = spec.owner_id({"nameSeed": "lambda-microvms/test/app-image", "region": "us-east-1"})
    assert out["name"].startswith(f"app-{spec.name_marker(owner)}") and len(out["name"]) == 12
    assert out["state"] == "CREATED"
    assert out["imageVersion"] == "1.0" and out["latestActiveImageVersion"] == "1.0"
    assert out["versionState"] == "SUCCESSFUL"
    assert out["retainedVersions"] == ["1.0"]
    assert sorted(b["chipsetGeneration"] for b in out["builds"]) == ["3", "4"]
    assert {b["architecture"] for b in out["builds"]} == {"ARM_64"}
    assert out["logGroup"] == "/aws/lambda-microvms/app"
    assert out["__provider"] == PROVIDER and len(PROVIDER) <= 1024
    # the service got the whole configuration, with secret and plain env merged
    live = rig.aws.get_microvm_image_version(imageIdentifier=created.id, imageVersion="1.0")
    assert live["environmentVariables"] == {"LOG_LEVEL": "info", "API_TOKEN": SECRET_VALUE}
    assert live["hooks"]["microvmHooks"]["run"] == "ENABLED"
    assert live["logging"] == {"cloudWatch": {"logGroup": "/aws/lambda-microvms/app"}}
    # user tags plus the crash-recovery markers; the markers are not in the tags output
    tags = rig.aws.list_tags(Resource=created.id)["Tags"]
    assert tags == {"team": "platform", spec.OWNER_TAG: spec.delivered(owner)}
    assert out["tags"] == {"team": "platform"}


def test_unchanged_program_diffs_to_none_with_zero_api_calls(rig):
    inputs, created = rig.create()
    rig.reset_calls()
    _, diff = rig.plan(created.outputs, inputs)
    assert diff.changes == "DIFF_NONE" and diff.replaces == []
    # "1" and "1.0" are the same base version: still no diff
    _, diff = rig.plan(created.outputs, inputs, baseImageVersion=None)
    assert diff.changes == "DIFF_NONE"
    assert rig.calls() == {}


def test_base_image_version_echo_is_not_a_diff(rig):
    inputs, created = rig.create(baseImageVersion="1")
    refreshed = rig.provider.read(created.id, rig.urn, created.outputs, inputs)
    assert refreshed.outputs["resolvedBaseImageVersion"] == "1.0"
    assert refreshed.outputs["baseImageVersion"] == "1"
    _, diff = rig.plan(refreshed.outputs, inputs, baseImageVersion="1")
    assert diff.changes == "DIFF_NONE"


def test_tags_only_change_is_in_place_without_rebuild(rig):
    inputs, created = rig.create()
    news, diff = rig.plan(created.outputs, inputs, tags={"team": "infra", "cost": "42"})
    assert diff.changes == "DIFF_SOME" and diff.replaces == []
    rig.reset_calls()
    out = rig.provider.update(created.id, rig.urn, created.outputs, news, inputs)
    calls = rig.calls()
    assert calls.get("TagResource") == 1
    assert "UpdateMicrovmImage" not in calls and "UntagResource" not in calls
    assert out["imageVersion"] == "1.0" and out["tags"] == {"team": "infra", "cost": "42"}
    tags = rig.aws.list_tags(Resource=created.id)["Tags"]
    assert tags["team"] == "infra" and tags["cost"] == "42" and spec.OWNER_TAG in tags
    # removing a tag untags it, and only it
    news2, _ = rig.plan(out, news, tags={"team": "infra"})
    rig.provider.update(created.id, rig.urn, out, news2, news)
    tags = rig.aws.list_tags(Resource=created.id)["Tags"]
    assert "cost" not in tags and spec.OWNER_TAG in tags


def test_build_change_mints_version_2_with_the_full_config(rig):
    inputs, created = rig.create()
    news, diff = rig.plan(created.outputs, inputs, resources=[{"minimumMemoryInMiB": 4096}])
    assert diff.changes == "DIFF_SOME" and diff.replaces == []
    rig.reset_calls()
    out = rig.provider.update(created.id, rig.urn, created.outputs, news, inputs)
    assert rig.calls().get("UpdateMicrovmImage") == 1
    assert out["imageVersion"] == "2.0" and out["latestActiveImageVersion"] == "2.0"
    assert out["state"] == "UPDATED" and out["imageArn"] == created.id
    v1 = rig.aws.get_microvm_image_version(imageIdentifier=created.id, imageVersion="1.0")
    v2 = rig.aws.get_microvm_image_version(imageIdentifier=created.id, imageVersion="2.0")
    assert v2["resources"] == [{"minimumMemoryInMiB": 4096}]
    # a full PUT: nothing else was reset (the pulumi-aws Image bug this provider exists for)
    for key in (
        "hooks",
        "logging",
        "environmentVariables",
        "codeArtifact",
        "buildRoleArn",
        "egressNetworkConnectors",
    ):
        assert v2[key] == v1[key], key
    # and the state now diffs clean
    _, diff = rig.plan(out, news, resources=[{"minimumMemoryInMiB": 4096}])
    assert diff.changes == "DIFF_NONE"


def test_retention_keeps_newest_and_protects_versions_in_use(rig):
    inputs, created = rig.create(keepVersions=2)
    arn = created.id
    vm = rig.aws.run_microvm(imageIdentifier=arn, imageVersion="1.0")  # pins version 1.0
    state, old_inputs = created.outputs, inputs
    rig.reset_calls()
    for n, uri in enumerate(("v2.zip", "v3.zip", "v4.zip"), start=2):
        news, diff = rig.plan(
            state, old_inputs, keepVersions=2, codeArtifact={"uri": f"s3://artifact-bucket-1/{uri}"}
        )
        assert diff.changes == "DIFF_SOME"
        state = rig.provider.update(arn, rig.urn, state, news, old_inputs)
        old_inputs = news
        assert state["imageVersion"] == f"{n}.0"
    live = {
        v["imageVersion"]: v
        for v in rig.aws.list_microvm_image_versions(imageIdentifier=arn)["items"]
    }
    kept = {k for k, v in live.items() if v["state"] not in ("DELETING", "DELETED")}
    assert kept == {"1.0", "3.0", "4.0"}, live  # 1.0 is used by a running MicroVM
    # the one retired version (2.0) was set INACTIVE first, then deleted
    calls = rig.calls()
    assert (
        calls.get("UpdateMicrovmImageVersion") == 1 and calls.get("DeleteMicrovmImageVersion") == 1
    )
    assert live["2.0"]["status"] == "INACTIVE"
    assert state["retainedVersions"] == ["4.0", "3.0", "1.0"]
    rig.aws.terminate_microvm(microvmIdentifier=vm["microvmId"])


def test_name_change_replaces_with_a_new_unique_name(rig):
    inputs, created = rig.create(name="app-first", namePrefix=None)
    news, diff = rig.plan(created.outputs, inputs, name="app-second", namePrefix=None)
    assert diff.changes == "DIFF_SOME" and diff.replaces == ["name"]
    assert diff.delete_before_replace is False
    # the engine creates the replacement first, then deletes the old image
    replacement = rig.provider.create(rig.urn, news)
    assert replacement.outputs["name"] == "app-second" and replacement.id != created.id
    rig.provider.delete(created.id, rig.urn, created.outputs, inputs)
    names = {i["name"]: i["state"] for i in rig.images()}
    assert names == {"app-second": "CREATED"}


def test_generated_name_region_change_gets_a_new_name(rig):
    inputs, created = rig.create()
    news, diff = rig.plan(
        created.outputs,
        inputs,
        region="us-west-2",
        logging=None,
        egressNetworkConnectors=None,
    )
    assert diff.replaces == ["region"]
    # the owner (and so the name's marker) includes the region
    assert spec.owner_id(news) != spec.owner_id(inputs)


def test_refresh_shows_out_of_band_change(rig):
    inputs, created = rig.create()
    # someone rebuilds the image by hand with less memory and no hooks
    body = spec.build_request({**inputs, "resources": [{"minimumMemoryInMiB": 1024}]})
    body.pop("hooks")
    rig.aws.update_microvm_image(imageIdentifier=created.id, **body)
    import time

    for _ in range(100):
        if rig.aws.get_microvm_image(imageIdentifier=created.id)["state"] == "UPDATED":
            break
        time.sleep(0.1)
    refreshed = rig.provider.read(created.id, rig.urn, created.outputs, inputs)
    out = refreshed.outputs
    assert refreshed.id == created.id
    assert out["imageVersion"] == "2.0"
    assert out["resources"] == [{"minimumMemoryInMiB": 1024}]
    assert "hooks" not in out
    # secrets are split back out by name; the program's next diff wants a new version
    assert out["secretEnvironmentVariables"] == {"API_TOKEN": SECRET_VALUE}
    _, diff = rig.plan(out, inputs)
    assert diff.changes == "DIFF_SOME" and diff.replaces == []


def test_refresh_after_out_of_band_delete_reads_gone(rig):
    inputs, created = rig.create()
    rig.aws.delete_microvm_image(imageIdentifier=created.id)
    refreshed = rig.provider.read(created.id, rig.urn, created.outputs, inputs)
    assert refreshed.id == ""


def test_import_by_arn_adopts_an_existing_image(rig):
    body = spec.build_request(spec.fill_defaults(program_inputs()))
    made = rig.aws.create_microvm_image(name="hand-made", tags={"team": "platform"}, **body)
    arn = made["imageArn"]
    import time

    for _ in range(100):
        if rig.aws.get_microvm_image(imageIdentifier=arn)["state"] == "CREATED":
            break
        time.sleep(0.1)
    program = program_inputs(name="hand-made", namePrefix=None)
    read = rig.provider.read(arn, rig.urn, {}, program)
    assert read.id == arn and read.inputs is not None
    assert read.outputs["name"] == "hand-made" and read.outputs["imageVersion"] == "1.0"
    # the SDK's Read hands the provider no program inputs, so every imported value is secret
    assert read.outputs["secretEnvironmentVariables"] == {
        "API_TOKEN": SECRET_VALUE,
        "LOG_LEVEL": "info",
    }
    assert read.outputs["environmentVariables"] == {}
    # the engine then checks the program against the imported inputs and diffs: no change
    checked = rig.check(program, olds=read.inputs)
    assert checked.failures == []
    diff = rig.provider.diff(arn, rig.urn, read.outputs, checked.inputs, read.inputs)
    assert diff.changes == "DIFF_NONE", diff


def test_import_rejects_a_non_arn_id(rig):
    with pytest.raises(ProviderError) as err:
        rig.provider.read("hand-made", rig.urn, {}, program_inputs())
    assert "is not a MicroVM image ARN" in err.value.details
    assert "import by ARN" in err.value.details


def test_delete_refuses_while_microvms_run(rig):
    inputs, created = rig.create()
    vm = rig.aws.run_microvm(imageIdentifier=created.id)
    with pytest.raises(ProviderError) as err:
        rig.provider.delete(created.id, rig.urn, created.outputs, inputs)
    assert err.value.code.name == "UNKNOWN"
    assert "refusing to delete image" in err.value.details
    assert vm["microvmId"] in err.value.details
    assert "terminateMicrovmsOnDelete" in err.value.details
    assert rig.aws.get_microvm_image(imageIdentifier=created.id)["state"] == "CREATED"
    assert rig.aws.get_microvm(microvmIdentifier=vm["microvmId"])["state"] != "TERMINATED"


def test_delete_terminates_microvms_when_asked(rig):
    inputs, created = rig.create(terminateMicrovmsOnDelete=True)
    vm = rig.aws.run_microvm(imageIdentifier=created.id)
    rig.provider.delete(created.id, rig.urn, created.outputs, inputs)
    assert rig.aws.get_microvm(microvmIdentifier=vm["microvmId"])["state"] == "TERMINATED"
    assert rig.images() == []


def test_build_failure_is_one_clear_error_and_leaves_nothing(rig):
    rig.faults(failNextBuilds=["S3_NO_SUCH_KEY"])
    with pytest.raises(ProviderError) as err:
        rig.create()
    text = err.value.details
    assert "failed to build: S3_NO_SUCH_KEY" in text
    assert "chipset generation 3" in text and "chipset generation 4" in text
    assert "ARM_64" in text
    assert "check codeArtifact.uri" in text
    assert "CloudWatch log group /aws/lambda-microvms/app" in text
    assert "nothing is left behind" in text
    assert SECRET_VALUE not in text
    assert "botocore" not in text.split("MicrovmImageError")[-1]
    assert rig.images() == []


def test_failed_update_deletes_the_failed_version_and_keeps_the_old_one(rig):
    inputs, created = rig.create()
    news, _ = rig.plan(
        created.outputs, inputs, codeArtifact={"uri": "s3://artifact-bucket-1/broken.zip"}
    )
    rig.faults(failNextBuilds=["The container image build failed."])
    with pytest.raises(ProviderError) as err:
        rig.provider.update(created.id, rig.urn, created.outputs, news, inputs)
    assert "version 2.0 failed to build: The container image build failed." in err.value.details
    assert "Dockerfile build failed" in err.value.details
    assert "Version 1.0 stays active" in err.value.details
    versions = {
        v["imageVersion"]: v["state"]
        for v in rig.aws.list_microvm_image_versions(imageIdentifier=created.id)["items"]
    }
    assert versions.get("1.0") == "SUCCESSFUL"
    assert versions.get("2.0") in (None, "DELETING", "DELETED")
    assert (
        rig.aws.get_microvm_image(imageIdentifier=created.id)["latestActiveImageVersion"] == "1.0"
    )


def test_delete_waits_until_gone(rig):
    inputs, created = rig.create()
    rig.provider.delete(created.id, rig.urn, created.outputs, inputs)
    assert rig.images() == []
    # deleting again (engine retry after a crash) is a no-op
    rig.provider.delete(created.id, rig.urn, created.outputs, inputs)


def test_explicit_name_taken_by_a_foreign_image_is_a_clear_error(rig):
    body = spec.build_request(spec.fill_defaults(program_inputs()))
    rig.aws.create_microvm_image(name="taken-name", **body)
    with pytest.raises(ProviderError) as err:
        rig.create(name="taken-name", namePrefix=None)
    assert "an image named 'taken-name' already exists" in err.value.details
    assert "import resource option" in err.value.details
    assert [i["name"] for i in rig.images()] == ["taken-name"]


def test_rerun_after_a_failed_build_uses_a_fresh_name(rig):
    # names of deleted images cannot be reused: the retry must not try the burnt name again
    rig.faults(failNextBuilds=["INTERNAL_PLATFORM_ERROR"])
    with pytest.raises(ProviderError) as err:
        rig.create()
    assert "retry the deployment" in err.value.details
    _, created = rig.create()
    assert [i["name"] for i in rig.images()] == [created.outputs["name"]]
