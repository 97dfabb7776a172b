"""MicroVM lifecycle over boto3: run, idle policy, suspend/resume, terminate, lists, idempotency."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from microvms.emulator import FrozenClock
from tests.fixtures.emulator import (
    built_image,
    raw_client,
    running_vm,
    wait_for,
    wait_image,
    wait_vm,
)

pytestmark = pytest.mark.emulator

REGION_CONNECTOR = "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:{}"


def error_of(excinfo) -> tuple[str, str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def frozen(emulator_factory):
    """An emulator on a frozen clock (nothing moves unless advanced) with a built image."""
    emulator = emulator_factory(clock=FrozenClock(), build_seconds=1, run_seconds=2)
    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    arn = client.create_microvm_image(
        name="frozen",
        baseImageArn="arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1",
        buildRoleArn="arn:aws:iam::123456789012:role/build",
        codeArtifact={"uri": "s3://bucket/app.zip"},
    )["imageArn"]
    emulator.clock.advance(1)
    assert client.get_microvm_image(imageIdentifier=arn)["state"] == "CREATED"
    return emulator, client, arn


def state_of(client, vm_id: str) -> str:
    return client.get_microvm(microvmIdentifier=vm_id)["state"]


def test_run_fills_defaults_and_starts_pending(microvms_client):
    client = microvms_client
    arn = built_image(client, "run-defaults")
    vm = client.run_microvm(imageIdentifier=arn)
    assert vm["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert vm["state"] == "PENDING"
    assert vm["microvmId"].startswith("microvm-") and len(vm["microvmId"]) == len("microvm-") + 36
    assert vm["endpoint"].endswith(".lambda-microvm.us-east-1.on.aws")
    assert vm["ingressNetworkConnectors"] == [REGION_CONNECTOR.format("HTTP_INGRESS")]
    assert vm["egressNetworkConnectors"] == [REGION_CONNECTOR.format("INTERNET_EGRESS")]
    assert vm["maximumDurationInSeconds"] == 28800
    assert (vm["imageArn"], vm["imageVersion"]) == (arn, "1.0")
    assert "idlePolicy" not in vm and "executionRoleArn" not in vm
    running = wait_vm(client, vm["microvmId"], "RUNNING")
    assert running["endpoint"] == vm["endpoint"]


def test_run_errors_use_live_messages(emulator, microvms_client):
    client = microvms_client
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(imageIdentifier="just-a-name")
    assert error_of(excinfo) == (
        "ValidationException",
        "Malformed ARN - doesn't start with 'arn:'",
        400,
    )
    missing = "arn:aws:lambda:us-east-1:123456789012:microvm-image:m80-does-not-exist"
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(imageIdentifier=missing)
    assert error_of(excinfo) == (
        "ResourceNotFoundException",
        f"No active version found for MicroVM image {missing}",
        404,
    )
    arn = built_image(client, "run-errors")
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(imageIdentifier=arn, ingressNetworkConnectors=["SHELL_INGRESS"])
    assert error_of(excinfo) == ("ValidationException", "Malformed network connector ARN", 400)
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(imageIdentifier=arn, runHookPayload="x" * 4097)
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value at 'runHookPayload' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096",
        400,
    )
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(imageIdentifier=arn, runHookPayload="x" * 4096)
    assert error_of(excinfo) == (
        "ValidationException",
        "The run hook must be enabled in the MicroVM image to pass the run hook payload",
        400,
    )
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(imageIdentifier=arn, maximumDurationInSeconds=28801)
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value '28801' at 'maximumDurationInSeconds' failed to "
        "satisfy constraint: Member must have value less than or equal to 28800",
        400,
    )
    with pytest.raises(ClientError) as excinfo:
        raw_client(emulator).run_microvm(
            imageIdentifier=arn,
            idlePolicy={
                "maxIdleDurationSeconds": 30,
                "suspendedDurationSeconds": 0,
                "autoResumeEnabled": True,
            },
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value '30' at 'idlePolicy.maxIdleDurationSeconds' failed to "
        "satisfy constraint: Member must have value greater than or equal to 60",
        400,
    )


def test_suspend_resume_passes_through_pending(frozen):
    emulator, client, arn = frozen
    vm_id = client.run_microvm(imageIdentifier=arn)["microvmId"]
    with pytest.raises(ClientError) as excinfo:
        client.suspend_microvm(microvmIdentifier=vm_id)
    assert error_of(excinfo) == (
        "ConflictException",
        f"The MicroVM {vm_id} is in state PENDING and cannot be suspended.",
        409,
    )
    assert isinstance(excinfo.value, client.exceptions.ConflictException)
    emulator.clock.advance(2)
    assert state_of(client, vm_id) == "RUNNING"
    assert (
        client.suspend_microvm(microvmIdentifier=vm_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    )
    assert state_of(client, vm_id) == "SUSPENDING"
    emulator.clock.advance(0.05)
    assert state_of(client, vm_id) == "SUSPENDED"
    again = client.suspend_microvm(microvmIdentifier=vm_id)  # idempotent 200 (as m80)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert state_of(client, vm_id) == "SUSPENDED"
    client.resume_microvm(microvmIdentifier=vm_id)
    assert state_of(client, vm_id) == "PENDING"
    emulator.clock.advance(0.05)
    got = client.get_microvm(microvmIdentifier=vm_id)
    assert got["state"] == "RUNNING"
    client.resume_microvm(microvmIdentifier=vm_id)  # resume of a running VM is a no-op
    assert state_of(client, vm_id) == "RUNNING"


def test_terminate_is_idempotent_and_terminal(microvms_client):
    client = microvms_client
    arn = built_image(client, "terminal")
    vm_id = running_vm(client, arn)["microvmId"]
    assert (
        client.terminate_microvm(microvmIdentifier=vm_id)["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
    done = wait_vm(client, vm_id, "TERMINATED")
    assert done["stateReason"] == "Success."
    assert "terminatedAt" in done
    assert (
        client.terminate_microvm(microvmIdentifier=vm_id)["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
    for call in (client.suspend_microvm, client.resume_microvm):
        with pytest.raises(ClientError) as excinfo:
            call(microvmIdentifier=vm_id)
        assert error_of(excinfo) == (
            "ValidationException",
            f"The MicroVM {vm_id} has been terminated and its state cannot be changed.",
            400,
        )
    listed = client.list_microvms()["items"]
    assert [(i["microvmId"], i["state"]) for i in listed] == [(vm_id, "TERMINATED")]


def test_missing_microvm_is_not_found(microvms_client):
    vm_id = "microvm-00000000-0000-0000-0000-000000000000"
    for call in (
        microvms_client.get_microvm,
        microvms_client.suspend_microvm,
        microvms_client.resume_microvm,
        microvms_client.terminate_microvm,
    ):
        with pytest.raises(ClientError) as excinfo:
            call(microvmIdentifier=vm_id)
        assert error_of(excinfo) == (
            "ResourceNotFoundException",
            f"MicroVM not found: {vm_id}",
            404,
        )


def test_idle_policy_suspends_then_terminates(frozen):
    emulator, client, arn = frozen
    vm_id = client.run_microvm(
        imageIdentifier=arn,
        idlePolicy={
            "maxIdleDurationSeconds": 60,
            "suspendedDurationSeconds": 120,
            "autoResumeEnabled": False,
        },
    )["microvmId"]
    emulator.clock.advance(2)
    assert state_of(client, vm_id) == "RUNNING"
    emulator.clock.advance(59)
    assert state_of(client, vm_id) == "RUNNING"
    emulator.clock.advance(1.1)
    assert state_of(client, vm_id) == "SUSPENDED"
    emulator.clock.advance(119)
    assert state_of(client, vm_id) == "SUSPENDED"
    emulator.clock.advance(1.2)
    assert state_of(client, vm_id) == "TERMINATED"


def test_one_large_advance_cascades_through_transitions(frozen):
    emulator, client, arn = frozen
    vm_id = client.run_microvm(
        imageIdentifier=arn,
        idlePolicy={
            "maxIdleDurationSeconds": 60,
            "suspendedDurationSeconds": 0,
            "autoResumeEnabled": True,
        },
    )["microvmId"]
    emulator.clock.advance(3600)
    vm = client.get_microvm(microvmIdentifier=vm_id)
    assert vm["state"] == "TERMINATED"


def test_manual_suspend_without_idle_policy_stays_suspended(frozen):
    emulator, client, arn = frozen
    vm_id = client.run_microvm(imageIdentifier=arn)["microvmId"]
    emulator.clock.advance(2)
    client.suspend_microvm(microvmIdentifier=vm_id)
    emulator.clock.advance(3617)
    assert state_of(client, vm_id) == "SUSPENDED"


def test_maximum_duration_terminates(frozen):
    emulator, client, arn = frozen
    vm_id = client.run_microvm(imageIdentifier=arn, maximumDurationInSeconds=30)["microvmId"]
    emulator.clock.advance(29)
    assert state_of(client, vm_id) == "RUNNING"
    emulator.clock.advance(1.5)
    vm = client.get_microvm(microvmIdentifier=vm_id)
    assert vm["state"] == "TERMINATED"
    assert vm["stateReason"] == "The MicroVM reached its maximum duration of 30 seconds."


def test_delete_image_refused_while_microvms_run(microvms_client):
    client = microvms_client
    arn = built_image(client, "busy")
    vm_id = running_vm(client, arn)["microvmId"]
    with pytest.raises(ClientError) as excinfo:
        client.delete_microvm_image(imageIdentifier=arn)
    assert error_of(excinfo) == (
        "ValidationException",
        "Cannot delete microvm image with running microvms.",
        400,
    )
    client.terminate_microvm(microvmIdentifier=vm_id)
    wait_vm(client, vm_id, "TERMINATED")
    assert client.delete_microvm_image(imageIdentifier=arn)["state"] == "DELETING"


def test_run_client_token_replays_original_response(microvms_client):
    client = microvms_client
    arn = built_image(client, "replay")
    first = client.run_microvm(imageIdentifier=arn, clientToken="stable-token")
    wait_vm(client, first["microvmId"], "RUNNING")
    client.terminate_microvm(microvmIdentifier=first["microvmId"])
    again = client.run_microvm(imageIdentifier=arn, clientToken="stable-token")
    assert again["microvmId"] == first["microvmId"]
    assert again["state"] == "PENDING"  # replays are verbatim, even after termination
    assert len(client.list_microvms()["items"]) == 1
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(
            imageIdentifier=arn, clientToken="stable-token", maximumDurationInSeconds=60
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "The provided clientToken was used with different request parameters.",
        400,
    )


def test_memory_quota_answers_402(emulator_factory):
    emulator = emulator_factory(memory_quota_mib=4096)
    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    arn = built_image(client, "quota")
    client.run_microvm(imageIdentifier=arn)
    client.run_microvm(imageIdentifier=arn)
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(imageIdentifier=arn)
    assert error_of(excinfo) == (
        "ServiceQuotaExceededException",
        "The base maximum allocated memory limit has been reached for this account.",
        402,
    )


def test_run_picks_newest_active_version_and_lists_filter(microvms_client):
    client = microvms_client
    arn = built_image(client, "versions")
    client.update_microvm_image(
        imageIdentifier=arn,
        baseImageArn="arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1",
        buildRoleArn="arn:aws:iam::123456789012:role/build",
        codeArtifact={"uri": "s3://bucket/v2.zip"},
    )
    wait_image(client, arn, "UPDATED")
    assert client.run_microvm(imageIdentifier=arn)["imageVersion"] == "2.0"
    assert client.run_microvm(imageIdentifier=arn, imageVersion="1")["imageVersion"] == "1.0"
    client.update_microvm_image_version(imageIdentifier=arn, imageVersion="2.0", status="INACTIVE")
    assert client.run_microvm(imageIdentifier=arn)["imageVersion"] == "1.0"
    client.update_microvm_image_version(imageIdentifier=arn, imageVersion="1.0", status="INACTIVE")
    with pytest.raises(ClientError) as excinfo:
        client.run_microvm(imageIdentifier=arn)
    assert error_of(excinfo)[:2] == (
        "ResourceNotFoundException",
        f"No active version found for MicroVM image {arn}",
    )
    assert len(client.list_microvms(imageIdentifier=arn, imageVersion="1.0")["items"]) == 2
    assert len(client.list_microvms(imageIdentifier=arn, imageVersion="2")["items"]) == 1
    pages = list(client.get_paginator("list_microvms").paginate(PaginationConfig={"PageSize": 1}))
    assert [len(p["items"]) for p in pages] == [1, 1, 1]
    item = pages[0]["items"][0]
    assert set(item) == {"imageArn", "imageVersion", "microvmId", "startedAt", "state"}
    with pytest.raises(ClientError) as excinfo:
        client.list_microvms(imageIdentifier="versions")
    assert error_of(excinfo) == (
        "ValidationException",
        "Malformed ARN - doesn't start with 'arn:'",
        400,
    )


def test_concurrent_identical_runs_return_one_vm(microvms_client):
    from concurrent.futures import ThreadPoolExecutor

    client = microvms_client
    arn = built_image(client, "concurrent")
    with ThreadPoolExecutor(4) as pool:
        ids = set(
            pool.map(
                lambda _: client.run_microvm(imageIdentifier=arn, clientToken="same")["microvmId"],
                range(4),
            )
        )
    assert len(ids) == 1
    wait_for(lambda: client.list_microvms()["items"], lambda items: len(items) == 1)
