"""Lambda Core network connectors over boto3 (``lambda-core`` client): lifecycle and paginators."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.emulator import built_image, running_vm, wait_for, wait_vm

pytestmark = pytest.mark.emulator

ROLE = "arn:aws:iam::123456789012:role/connector-operator"


def config(subnets=("subnet-0a",)):
    return {
        "VpcEgressConfiguration": {
            "SubnetIds": list(subnets),
            "SecurityGroupIds": ["sg-0a"],
            "AssociatedComputeResourceTypes": ["MicroVm"],
            "NetworkProtocol": "IPv4",
        }
    }


@pytest.fixture
def core(emulator):
    return boto3.client("lambda-core", region_name="us-east-1", endpoint_url=emulator.url)


def test_connector_lifecycle_and_versions(core):
    created = core.create_network_connector(
        Name="egress", Configuration=config(), OperatorRole=ROLE
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    connector_id = created["Id"]
    got = wait_for(
        lambda: core.get_network_connector(Identifier=connector_id),
        lambda c: c["State"] == "ACTIVE",
    )
    assert got["StateReason"] == "Initial creation"
    assert core.get_network_connector(Identifier="egress")["Id"] == connector_id
    changed = core.update_network_connector(
        Identifier=connector_id, Configuration=config(("subnet-0a", "subnet-0b")), OperatorRole=ROLE
    )
    assert changed["LastUpdateStatus"] == "InProgress"
    wait_for(
        lambda: core.get_network_connector(Identifier=connector_id),
        lambda c: c.get("LastUpdateStatus") == "Successful",
    )
    versions = core.list_network_connector_versions(Identifier=connector_id)[
        "NetworkConnectorVersions"
    ]
    assert [v["Version"] for v in versions] == [2, 1]
    assert core.delete_network_connector(Identifier=connector_id)["State"] == "DELETING"
    with pytest.raises(ClientError) as excinfo:
        wait_for(
            lambda: core.get_network_connector(Identifier=connector_id), lambda c: False, timeout=3
        )
    assert excinfo.value.response["Error"] == {
        "Code": "ResourceNotFoundException",
        "Message": f"Network connector not found for: {created['Arn']}",
    }


def test_connector_paginator_and_tags(core, microvms_client):
    for index in range(3):
        core.create_network_connector(Name=f"c{index}", Configuration=config(), OperatorRole=ROLE)
    pages = list(
        core.get_paginator("list_network_connectors").paginate(PaginationConfig={"PageSize": 2})
    )
    assert [len(p["NetworkConnectors"]) for p in pages] == [2, 1]
    assert "NextMarker" not in pages[-1]
    arn = pages[0]["NetworkConnectors"][0]["Arn"]
    microvms_client.tag_resource(Resource=arn, Tags={"team": "net"})
    assert microvms_client.list_tags(Resource=arn)["Tags"] == {"team": "net"}


def test_connector_in_use_cannot_be_deleted(core, microvms_client):
    connector = core.create_network_connector(
        Name="used", Configuration=config(), OperatorRole=ROLE
    )
    wait_for(
        lambda: core.get_network_connector(Identifier=connector["Id"]),
        lambda c: c["State"] == "ACTIVE",
    )
    image = built_image(microvms_client, "uses-connector")
    vm = running_vm(microvms_client, image, egressNetworkConnectors=[connector["Arn"]])
    assert vm["egressNetworkConnectors"] == [connector["Arn"]]
    with pytest.raises(ClientError) as excinfo:
        core.delete_network_connector(Identifier=connector["Id"])
    err = excinfo.value.response["Error"]
    assert err["Code"] == "ResourceConflictException"
    assert (
        err["Message"]
        == f"Network connector {connector['Arn']} is in use by MicroVMs; terminate them first."
    )
    microvms_client.terminate_microvm(microvmIdentifier=vm["microvmId"])
    wait_vm(microvms_client, vm["microvmId"], "TERMINATED")
    assert core.delete_network_connector(Identifier=connector["Id"])["State"] == "DELETING"


def test_connector_name_conflict(core):
    core.create_network_connector(Name="dup", Configuration=config(), OperatorRole=ROLE)
    with pytest.raises(ClientError) as excinfo:
        core.create_network_connector(Name="dup", Configuration=config(), OperatorRole=ROLE)
    err = excinfo.value.response
    assert (
        err["Error"]["Code"],
        err["Error"]["Message"],
        err["ResponseMetadata"]["HTTPStatusCode"],
    ) == (
        "ResourceConflictException",
        "Network connector dup already exists.",
        409,
    )
