"""``kmsKeyIdentifier`` (botocore 1.44.8): accepted, validated and kept wherever the model has it.

Issue 13 item 8. The member is on CreateMicrovmImage, UpdateMicrovmImage and RunMicrovm requests
and on the image-version and MicroVM output shapes. No live recording shows it, so the emulator
answers it only when it was set: the recorded bodies (which predate it) still replay unchanged.
"""

from __future__ import annotations

import boto3
import botocore
import pytest
from botocore.exceptions import ClientError

from microvms.emulator import wire
from tests.fixtures.emulator import (
    BASE_IMAGE_ARN,
    BUILD_ROLE_ARN,
    CODE_URI,
    built_image,
    create_image,
    wait_image,
    wait_vm,
)

pytestmark = pytest.mark.emulator

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALIAS_ARN = "arn:aws:kms:us-east-1:123456789012:alias/microvms"
KMS = "kmsKeyIdentifier"


def outputs_with_kms() -> set[str]:
    model = wire.service_model()
    found = set()
    for name in model.operation_names:
        shape = model.operation_model(name).output_shape
        if shape is None:
            continue
        members = dict(shape.members)
        if "items" in members and members["items"].type_name == "list":
            members.update(members["items"].member.members)
        if KMS in members:
            found.add(name)
    return found


def test_the_pinned_model_has_kms_key_identifier():
    model = wire.service_model()
    assert botocore.__version__ >= "1.44.8"
    for operation in ("CreateMicrovmImage", "UpdateMicrovmImage", "RunMicrovm"):
        assert KMS in model.operation_model(operation).input_shape.members, operation
    # Every output that can carry it is covered by a test below.
    assert outputs_with_kms() == {
        "CreateMicrovmImage",
        "UpdateMicrovmImage",
        "GetMicrovmImageVersion",
        "ListMicrovmImageVersions",
        "UpdateMicrovmImageVersion",
        "RunMicrovm",
        "GetMicrovm",
    }


def test_an_image_version_keeps_its_key(microvms_client):
    client = microvms_client
    created = create_image(client, "sealed", **{KMS: KEY_ARN})
    assert created[KMS] == KEY_ARN
    arn = created["imageArn"]
    wait_image(client, arn, "CREATED")
    assert client.get_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")[KMS] == KEY_ARN
    # The image itself has no such member in the model (the key belongs to each version).
    assert KMS not in client.get_microvm_image(imageIdentifier=arn)

    updated = client.update_microvm_image(
        imageIdentifier=arn,
        baseImageArn=BASE_IMAGE_ARN,
        buildRoleArn=BUILD_ROLE_ARN,
        codeArtifact={"uri": CODE_URI},
        **{KMS: ALIAS_ARN},
    )
    assert (updated["imageVersion"], updated[KMS]) == ("2.0", ALIAS_ARN)
    wait_image(client, arn, "UPDATED")
    versions = client.list_microvm_image_versions(imageIdentifier=arn)["items"]
    assert [(v["imageVersion"], v[KMS]) for v in versions] == [("2.0", ALIAS_ARN), ("1.0", KEY_ARN)]
    deprecated = client.update_microvm_image_version(
        imageIdentifier=arn, imageVersion="1.0", status="INACTIVE"
    )
    assert deprecated[KMS] == KEY_ARN


def test_an_update_without_a_key_uses_the_aws_owned_one(microvms_client):
    client = microvms_client
    arn = built_image(client, "unsealed-later", **{KMS: "alias/microvms"})
    client.update_microvm_image(
        imageIdentifier=arn,
        baseImageArn=BASE_IMAGE_ARN,
        buildRoleArn=BUILD_ROLE_ARN,
        codeArtifact={"uri": CODE_URI},
    )
    second = client.get_microvm_image_version(imageIdentifier=arn, imageVersion="2.0")
    assert KMS not in second  # absent, as on every recorded version
    first = client.get_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")
    assert first[KMS] == "alias/microvms"


def test_a_microvm_keeps_its_key(microvms_client):
    client = microvms_client
    image = built_image(client, "vm-sealed")
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    vm = client.run_microvm(imageIdentifier=image, **{KMS: key_id})
    assert vm[KMS] == key_id
    assert wait_vm(client, vm["microvmId"], "RUNNING")[KMS] == key_id
    plain = client.run_microvm(imageIdentifier=image)
    assert KMS not in plain and KMS not in client.get_microvm(microvmIdentifier=plain["microvmId"])


def test_the_key_is_part_of_the_client_token_fingerprint(microvms_client):
    client = microvms_client
    image = built_image(client, "token-sealed")
    first = client.run_microvm(imageIdentifier=image, clientToken="t-1", **{KMS: KEY_ARN})
    again = client.run_microvm(imageIdentifier=image, clientToken="t-1", **{KMS: KEY_ARN})
    assert again["microvmId"] == first["microvmId"]
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(imageIdentifier=image, clientToken="t-1", **{KMS: ALIAS_ARN})
    assert excinfo.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "The provided clientToken was used with different request parameters.",
    }


@pytest.mark.parametrize(
    ("value", "constraint"),
    [
        ("not a key!", "Member must satisfy regular expression pattern: "),
        ("", "Member must have length greater than or equal to 1"),
        ("a" * 2049, "Member must have length less than or equal to 2048"),
    ],
)
def test_a_malformed_key_is_refused_naming_the_member(emulator, value, constraint):
    raw = boto3.client(
        "lambda-microvms",
        region_name="us-east-1",
        endpoint_url=emulator.url,
        config=botocore.config.Config(
            parameter_validation=False, retries={"mode": "standard", "total_max_attempts": 1}
        ),
    )
    with pytest.raises(ClientError) as excinfo:
        create_image(raw, "bad-key", **{KMS: value})
    error = excinfo.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].startswith(("1 validation error", "2 validation errors"))
    assert f"at '{KMS}' failed to satisfy constraint: {constraint}" in error["Message"]
    assert raw.list_microvm_images()["items"] == []
