"""Images, versions, builds, managed images and tags over boto3 against the emulator."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from tests.fixtures.emulator import (
    BASE_IMAGE_ARN,
    BUILD_ROLE_ARN,
    CODE_URI,
    built_image,
    create_image,
    wait_for,
    wait_image,
)

pytestmark = pytest.mark.emulator

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260801/us-east-1/lambda/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0000"
)


def raw(emulator, method: str, path: str, body: dict | None = None, region: str = "us-east-1"):
    """A raw request (no SDK parsing) so explicit nulls and unmodelled members stay visible."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        emulator.url + path,
        data=data,
        method=method,
        headers={
            "Authorization": SIGNED.replace("us-east-1", region),
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request) as response:
            payload = response.read()
            return response.status, dict(response.headers), json.loads(payload) if payload else None
    except urllib.error.HTTPError as error:
        payload = error.read()
        return error.code, dict(error.headers), json.loads(payload) if payload else None


def error_of(excinfo) -> tuple[str, str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_create_answers_201_with_live_member_set_and_nulls(emulator):
    status, headers, body = raw(
        emulator,
        "POST",
        "/2025-09-09/microvm-images",
        {
            "name": "raw-image",
            "baseImageArn": BASE_IMAGE_ARN,
            "buildRoleArn": BUILD_ROLE_ARN,
            "codeArtifact": {"uri": CODE_URI},
        },
    )
    assert status == 201
    assert set(body) == {
        "additionalOsCapabilities", "baseImageArn", "baseImageVersion", "buildPhaseOverrides",
        "buildRoleArn", "codeArtifact", "cpuConfigurations", "createdAt", "description",
        "egressNetworkConnectors", "environmentVariables", "hooks", "id", "imageArn",
        "imageVersion", "latestActiveImageVersion", "latestFailedImageVersion", "logging", "name",
        "resources", "roleConfiguration", "state", "tags", "updatedAt",
    }  # fmt: skip
    assert body["state"] == "CREATING"
    assert body["imageVersion"] == "1.0"
    assert body["baseImageVersion"] == "1.0"
    assert body["imageArn"] == "arn:aws:lambda:us-east-1:123456789012:microvm-image:raw-image"
    assert body["resources"] == [{"minimumMemoryInMiB": 2048}]
    assert body["egressNetworkConnectors"] == [
        "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS"
    ]
    assert body["tags"] is None and body["latestActiveImageVersion"] is None
    assert isinstance(body["createdAt"], float)


def test_image_reaches_created_with_first_version(microvms_client):
    client = microvms_client
    created = create_image(client, "life")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    arn = created["imageArn"]
    image = wait_image(client, arn, "CREATED")
    assert image["latestActiveImageVersion"] == "1.0"
    assert image["tags"] == {}
    version = client.get_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")
    assert (version["state"], version["status"]) == ("SUCCESSFUL", "ACTIVE")
    assert version["baseImageVersion"] == "1.0"


def test_version_passes_pending_then_in_progress(emulator_factory):
    from microvms.emulator import FrozenClock

    emulator = emulator_factory(clock=FrozenClock(), build_seconds=10)
    import boto3

    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    arn = create_image(client, "steps")["imageArn"]

    def version_state():
        return client.get_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")["state"]

    builds = client.list_microvm_image_builds(imageIdentifier=arn, imageVersion="1.0")["items"]
    assert version_state() == "PENDING"
    assert {b["buildState"] for b in builds} == {"PENDING"}
    emulator.clock.advance(3)
    assert version_state() == "IN_PROGRESS"
    assert client.get_microvm_image(imageIdentifier=arn)["state"] == "CREATING"
    emulator.clock.advance(7)
    assert version_state() == "SUCCESSFUL"
    assert client.get_microvm_image(imageIdentifier=arn)["state"] == "CREATED"


def test_two_builds_per_version_one_per_graviton_generation(microvms_client):
    client = microvms_client
    arn = built_image(client, "builds")
    builds = client.list_microvm_image_builds(imageIdentifier=arn, imageVersion="1")["items"]
    assert sorted(b["chipsetGeneration"] for b in builds) == ["3", "4"]
    assert {(b["architecture"], b["chipset"], b["buildState"]) for b in builds} == {
        ("ARM_64", "GRAVITON", "SUCCESSFUL")
    }
    detail = client.get_microvm_image_build(
        imageIdentifier=arn, imageVersion="1.0", buildId=builds[0]["buildId"]
    )
    assert detail["snapshotBuild"]["memorySnapshotSizeInBytes"] > 0
    only_3 = client.list_microvm_image_builds(
        imageIdentifier=arn, imageVersion="1.0", chipsetGeneration="3"
    )["items"]
    assert [b["chipsetGeneration"] for b in only_3] == ["3"]
    with pytest.raises(ClientError) as excinfo:
        client.get_microvm_image_build(imageIdentifier=arn, imageVersion="1.0", buildId="nope")
    assert error_of(excinfo) == (
        "ResourceNotFoundException",
        f"MicroVMImage build not found for MicroVMImage: {arn}, Version: 1.0, BuildId: nope",
        404,
    )


def test_update_mints_version_2_and_settles_updated(microvms_client):
    client = microvms_client
    arn = built_image(client, "upd")
    updated = client.update_microvm_image(
        imageIdentifier=arn,
        baseImageArn=BASE_IMAGE_ARN,
        buildRoleArn=BUILD_ROLE_ARN,
        codeArtifact={"uri": CODE_URI},
        description="second",
    )
    assert (updated["state"], updated["imageVersion"]) == ("UPDATING", "2.0")
    assert updated["latestActiveImageVersion"] == "1.0"
    assert "tags" not in updated
    with pytest.raises(ClientError) as excinfo:
        client.update_microvm_image_version(
            imageIdentifier=arn, imageVersion="1.0", status="INACTIVE"
        )
    assert error_of(excinfo) == (
        "ConflictException",
        "MicroVM Image is already in state: UPDATING",
        409,
    )
    image = wait_image(client, arn, "UPDATED")
    assert image["latestActiveImageVersion"] == "2.0"
    patched = client.update_microvm_image_version(
        imageIdentifier=arn, imageVersion="1.0", status="INACTIVE"
    )
    assert (patched["status"], patched["state"]) == ("INACTIVE", "SUCCESSFUL")
    deleted = client.delete_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")
    assert (deleted["imageVersion"], deleted["state"]) == ("1.0", "DELETING")
    wait_for(
        lambda: client.list_microvm_image_versions(imageIdentifier=arn)["items"],
        lambda items: [v["imageVersion"] for v in items] == ["2.0"],
    )
    assert client.get_microvm_image(imageIdentifier=arn)["state"] == "UPDATED"
    with pytest.raises(ClientError) as excinfo:
        client.delete_microvm_image_version(imageIdentifier=arn, imageVersion="2.0")
    assert error_of(excinfo) == (
        "ValidationException",
        f"Cannot delete the only version of MicroVM image {arn}. Delete the MicroVM image instead.",
        400,
    )


def test_update_requires_full_body(microvms_client):
    client = microvms_client
    arn = built_image(client, "full-put")
    status, _, body = raw_put_missing(client, arn)
    assert status == 400
    assert body == (
        "3 validation errors detected: Value null at 'baseImageArn' failed to satisfy constraint: "
        "Member must not be null; Value null at 'codeArtifact' failed to satisfy constraint: "
        "Member must not be null; Value null at 'buildRoleArn' failed to satisfy constraint: "
        "Member must not be null"
    )


def raw_put_missing(client, arn):
    """PUT with only a description (boto3 would refuse to send it, so sign nothing and go raw)."""
    endpoint = client.meta.endpoint_url
    from urllib.parse import quote

    request = urllib.request.Request(
        f"{endpoint}/2025-09-09/microvm-images/{quote(arn, safe='')}",
        data=json.dumps({"description": "x"}).encode(),
        method="PUT",
        headers={"Authorization": SIGNED, "Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())["message"]
    raise AssertionError("expected a 400")


def test_delete_is_asynchronous_and_reserves_the_name(emulator_factory):
    from microvms.emulator import FrozenClock

    emulator = emulator_factory(clock=FrozenClock(), build_seconds=1, delete_seconds=5)
    import boto3

    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    arn = create_image(client, "reserved")["imageArn"]
    with pytest.raises(ClientError) as excinfo:
        client.delete_microvm_image(imageIdentifier=arn)
    assert error_of(excinfo) == (
        "ValidationException",
        "Cannot delete MicroVM image in its current state: CREATING",
        400,
    )
    emulator.clock.advance(1)
    deleted = client.delete_microvm_image(imageIdentifier=arn)
    assert (deleted["imageIdentifier"], deleted["state"]) == (arn, "DELETING")
    assert client.get_microvm_image(imageIdentifier=arn)["state"] == "DELETING"
    listed = client.list_microvm_images()["items"]
    assert [(i["name"], i["state"]) for i in listed] == [("reserved", "DELETING")]
    with pytest.raises(ClientError) as excinfo:
        create_image(client, "reserved")
    code, message, status = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert "already exists" in message  # the live fact; the full wording was not kept
    assert message == f"MicroVM image {arn} already exists and is being deleted."
    emulator.clock.advance(5)
    with pytest.raises(ClientError) as excinfo:
        client.get_microvm_image(imageIdentifier=arn)
    assert error_of(excinfo) == (
        "ResourceNotFoundException",
        f"MicroVMImage not found for MicroVMImageID: {arn}",
        404,
    )
    assert create_image(client, "reserved")["state"] == "CREATING"


def test_image_routes_need_full_arns(microvms_client):
    client = microvms_client
    built_image(client, "by-name")
    for call in (
        lambda: client.get_microvm_image(imageIdentifier="by-name"),
        lambda: client.list_microvm_image_versions(imageIdentifier="by-name"),
        lambda: client.delete_microvm_image(imageIdentifier="by-name"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == ("ValidationException", "Invalid ARN format: by-name", 400)


def test_foreign_account_image_is_access_denied(microvms_client):
    with pytest.raises(ClientError) as excinfo:
        microvms_client.get_microvm_image(
            imageIdentifier="arn:aws:lambda:us-east-1:210987654321:microvm-image:theirs"
        )
    assert error_of(excinfo) == (
        "AccessDeniedException",
        "User: arn:aws:iam::123456789012:user/emulator is not authorized to access resource: "
        "arn:aws:lambda:us-east-1:210987654321:microvm-image:theirs because no resource-based "
        "policy allows it",
        403,
    )
    assert isinstance(excinfo.value, microvms_client.exceptions.AccessDeniedException)


@pytest.mark.parametrize("memory", [512, 1024, 2048, 4096, 8192])
def test_supported_memory_sizes_are_accepted(microvms_client, memory):
    created = create_image(
        microvms_client, f"mem-{memory}", resources=[{"minimumMemoryInMiB": memory}]
    )
    assert created["resources"] == [{"minimumMemoryInMiB": memory}]


def test_unsupported_memory_size_uses_live_message(microvms_client):
    with pytest.raises(ClientError) as excinfo:
        create_image(microvms_client, "big", resources=[{"minimumMemoryInMiB": 32768}])
    assert error_of(excinfo) == (
        "ValidationException",
        "The requested memory size of 32768 MiB is not supported by base MicroVM image "
        "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1. Supported memory sizes in MiB are: "
        "[512, 1024, 2048, 4096, 8192].",
        400,
    )


def test_runtime_hook_requires_ready_hook(microvms_client):
    with pytest.raises(ClientError) as excinfo:
        create_image(
            microvms_client,
            "hooks",
            hooks={"port": 9000, "microvmHooks": {"run": "ENABLED"}},
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "The ready (/ready) MicroVM image hook must be enabled when any MicroVM lifecycle hook "
        "(run, resume, suspend, or terminate) is enabled. The ready hook signals when the "
        "application has finished initializing so the snapshot is taken in a ready state.",
        400,
    )
    ok = create_image(
        microvms_client,
        "hooks-ok",
        hooks={
            "port": 9000,
            "microvmImageHooks": {"ready": "ENABLED"},
            "microvmHooks": {"run": "ENABLED"},
        },
    )
    assert ok["hooks"]["microvmHooks"] == {"run": "ENABLED"}


def test_base_image_version_is_echoed_in_minor_form(microvms_client):
    assert create_image(microvms_client, "v1", baseImageVersion="1")["baseImageVersion"] == "1.0"
    assert create_image(microvms_client, "v0", baseImageVersion="0")["baseImageVersion"] == "0.0"
    with pytest.raises(ClientError) as excinfo:
        create_image(microvms_client, "v9", baseImageVersion="9")
    assert error_of(excinfo) == (
        "ValidationException",
        f"No managed runtime with arn {BASE_IMAGE_ARN} and version 9 is available.",
        400,
    )


def test_bare_egress_connector_is_malformed(microvms_client):
    with pytest.raises(ClientError) as excinfo:
        create_image(microvms_client, "egress", egressNetworkConnectors=["INTERNET_EGRESS"])
    assert error_of(excinfo) == ("ValidationException", "Malformed network connector ARN", 400)


def test_create_client_token_replay(microvms_client):
    client = microvms_client
    first = create_image(client, "idem", clientToken="token-1")
    again = create_image(client, "idem", clientToken="token-1")
    assert again["imageArn"] == first["imageArn"] and again["state"] == "CREATING"
    with pytest.raises(ClientError) as excinfo:
        create_image(client, "idem", clientToken="token-1", description="changed")
    assert error_of(excinfo) == (
        "ValidationException",
        "The provided clientToken was used with different request parameters.",
        400,
    )


def test_list_images_paginates_and_filters(microvms_client):
    client = microvms_client
    for index in range(5):
        create_image(client, f"page-{index}")
    create_image(client, "other")
    first = client.list_microvm_images(maxResults=2)
    assert len(first["items"]) == 2 and first["nextToken"]
    pages = list(
        client.get_paginator("list_microvm_images").paginate(PaginationConfig={"PageSize": 2})
    )
    assert [len(p["items"]) for p in pages] == [2, 2, 2]
    assert "nextToken" not in pages[-1]
    names = [i["name"] for p in pages for i in p["items"]]
    assert names == [f"page-{i}" for i in range(5)] + ["other"]
    filtered = client.list_microvm_images(nameFilter="page-")["items"]
    assert len(filtered) == 5
    # boto3 drops the explicit nulls and the unmodelled ``id`` of an image summary.
    assert {"createdAt", "imageArn", "name", "state"} <= set(filtered[0])
    assert set(filtered[0]) <= {
        "createdAt",
        "imageArn",
        "name",
        "state",
        "latestActiveImageVersion",
    }
    with pytest.raises(ClientError) as excinfo:
        client.list_microvm_images(nextToken="garbage")
    code, message, _ = error_of(excinfo)
    assert code == "ValidationException" and message == "Invalid nextToken: garbage"


def test_version_and_build_paginators(microvms_client):
    client = microvms_client
    arn = built_image(client, "pager")
    for _ in range(2):
        client.update_microvm_image(
            imageIdentifier=arn,
            baseImageArn=BASE_IMAGE_ARN,
            buildRoleArn=BUILD_ROLE_ARN,
            codeArtifact={"uri": CODE_URI},
        )
        wait_image(client, arn, "UPDATED")
    versions = [
        v["imageVersion"]
        for page in client.get_paginator("list_microvm_image_versions").paginate(
            imageIdentifier=arn, PaginationConfig={"PageSize": 1}
        )
        for v in page["items"]
    ]
    assert versions == ["3.0", "2.0", "1.0"]
    builds = [
        b
        for page in client.get_paginator("list_microvm_image_builds").paginate(
            imageIdentifier=arn, imageVersion="3.0", PaginationConfig={"PageSize": 1}
        )
        for b in page["items"]
    ]
    assert len(builds) == 2


def test_managed_base_image_catalogue(microvms_client):
    client = microvms_client
    images = client.list_managed_microvm_images()["items"]
    assert [i["imageArn"] for i in images] == [BASE_IMAGE_ARN]
    versions = client.list_managed_microvm_image_versions(imageIdentifier=BASE_IMAGE_ARN)["items"]
    assert [(v["imageVersion"], v["status"]) for v in versions] == [
        ("1", "AVAILABLE"),
        ("0", "AVAILABLE"),
    ]
    paged = list(
        client.get_paginator("list_managed_microvm_image_versions").paginate(
            imageIdentifier=BASE_IMAGE_ARN, PaginationConfig={"PageSize": 1}
        )
    )
    assert len(paged) == 2
    assert len(list(client.get_paginator("list_managed_microvm_images").paginate())) == 1
    with pytest.raises(ClientError) as excinfo:
        client.list_managed_microvm_image_versions(
            imageIdentifier="arn:aws:lambda:us-east-1:aws:microvm-image:nope"
        )
    assert error_of(excinfo) == (
        "ResourceNotFoundException",
        "Managed MicroVMImage not found for MicroVMImageID: "
        "arn:aws:lambda:us-east-1:aws:microvm-image:nope",
        404,
    )


def test_tags_merge_list_and_untag(microvms_client):
    client = microvms_client
    arn = create_image(client, "tagged", tags={"team": "a"})["imageArn"]
    tag = client.tag_resource(Resource=arn, Tags={"env": "dev", "team": "b"})
    assert tag["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client.list_tags(Resource=arn)["Tags"] == {"team": "b", "env": "dev"}
    untag = client.untag_resource(Resource=arn, TagKeys=["team", "absent"])
    assert untag["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client.list_tags(Resource=arn)["Tags"] == {"env": "dev"}
    assert client.get_microvm_image(imageIdentifier=arn)["tags"] == {"env": "dev"}
    missing = "arn:aws:lambda:us-east-1:123456789012:microvm-image:ghost"
    with pytest.raises(ClientError) as excinfo:
        client.list_tags(Resource=missing)
    assert error_of(excinfo) == (
        "ResourceNotFoundException",
        f"MicroVMImage not found for MicroVMImageID: {missing}",
        404,
    )
    with pytest.raises(ClientError) as excinfo:
        client.tag_resource(
            Resource="arn:aws:lambda:us-east-1:123456789012:microvm:x", Tags={"a": "b"}
        )
    pattern = (
        client.meta.service_model.operation_model("TagResource")
        .input_shape.members["Resource"]
        .metadata["pattern"]
    )
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value 'arn:aws:lambda:us-east-1:123456789012:microvm:x' "
        "at 'Resource' failed to satisfy constraint: Member must satisfy regular expression "
        f"pattern: {pattern}",
        400,
    )


def test_regions_are_isolated_by_signing_scope(emulator):
    import boto3

    east = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    west = boto3.client("lambda-microvms", region_name="us-west-2", endpoint_url=emulator.url)
    arn = create_image(
        west, "west", baseImageArn="arn:aws:lambda:us-west-2:aws:microvm-image:al2023-1"
    )["imageArn"]
    assert arn == "arn:aws:lambda:us-west-2:123456789012:microvm-image:west"
    assert east.list_microvm_images()["items"] == []
    assert [i["name"] for i in west.list_microvm_images()["items"]] == ["west"]
