"""The live recordings' scenarios, re-expressed as our own tests (facts, not copied files).

Every scenario recorded against the real service (docs/service-facts.md §2–§9; recordings README table) that the
emulator covers is replayed here over raw SigV4-signed HTTP, so explicit ``null`` members, unmodelled
members, status codes, ``X-Amzn-Errortype`` values and message strings can be asserted exactly.
The ``connectors`` scenario and the connector steps of the not-found / validation scenarios are
covered too (``test_connectors``, ``test_connector_errors``). Not covered: the rejected nginx 502 page
for a malformed VM id (the emulator answers 404, see ``docs/emulator.md``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

pytestmark = pytest.mark.emulator

REGION = "us-east-2"
ACCOUNT = "123456789012"
BASE = f"arn:aws:lambda:{REGION}:aws:microvm-image:al2023-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/m80-conformance-build"
URI = f"s3://m80-conformance-{ACCOUNT}-use2/code.zip"
INTERNET_EGRESS = (
    f"arn:aws:lambda:{REGION}:aws:network-connector:aws-network-connector:INTERNET_EGRESS"
)
HTTP_INGRESS = f"arn:aws:lambda:{REGION}:aws:network-connector:aws-network-connector:HTTP_INGRESS"

CREATE_MEMBERS = {
    "additionalOsCapabilities", "baseImageArn", "baseImageVersion", "buildPhaseOverrides",
    "buildRoleArn", "codeArtifact", "cpuConfigurations", "createdAt", "description",
    "egressNetworkConnectors", "environmentVariables", "hooks", "id", "imageArn", "imageVersion",
    "latestActiveImageVersion", "latestFailedImageVersion", "logging", "name", "resources",
    "roleConfiguration", "state", "tags", "updatedAt",
}  # fmt: skip
GET_IMAGE_MEMBERS = {
    "createdAt", "id", "imageArn", "latestActiveImageVersion", "latestFailedImageVersion", "name",
    "state", "tags", "updatedAt",
}  # fmt: skip
LIST_IMAGE_MEMBERS = GET_IMAGE_MEMBERS - {"tags", "updatedAt"}
VERSION_MEMBERS = {
    "additionalOsCapabilities", "baseImageArn", "baseImageVersion", "buildRoleArn", "codeArtifact",
    "cpuConfigurations", "createdAt", "description", "egressNetworkConnectors",
    "environmentVariables", "hooks", "imageArn", "imageVersion", "logging", "resources", "state",
    "stateReason", "status", "tags", "updatedAt", "versionStateTimeBucket",
}  # fmt: skip
BUILD_MEMBERS = {
    "architecture", "buildId", "buildState", "chipset", "chipsetGeneration", "createdAt",
    "imageArn", "imageVersion", "stateReason", "terminationReasonCode",
}  # fmt: skip
VM_MEMBERS = {
    "egressNetworkConnectors", "endpoint", "executionRoleArn", "idlePolicy", "imageArn",
    "imageVersion", "ingressNetworkConnectors", "maximumDurationInSeconds", "microvmId",
    "startedAt", "state", "stateReason", "terminatedAt", "terminationReasonCode",
}  # fmt: skip


class Raw:
    """Raw SigV4-signed HTTP against the emulator (no SDK parsing), plus endpoint calls."""

    def __init__(self, emulator):
        self.url = emulator.url

    def __call__(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = AWSRequest(
            method=method,
            url=self.url + path,
            data=data,
            headers={"Content-Type": "application/json"},
        )
        SigV4Auth(Credentials("AKIDEXAMPLE", "secret"), "lambda", REGION).add_auth(request)
        return self._send(method, self.url + path, data, dict(request.headers))

    def endpoint(self, host: str, token: str | None = None):
        headers = {"Host": host}
        if token is not None:
            headers["X-aws-proxy-auth"] = token
        return self._send("GET", self.url + "/", None, headers)

    @staticmethod
    def _send(method, url, data, headers):
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())

    def until(self, path: str, key: str, value: str, timeout: float = 10):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            answer = self("GET", path)
            state = answer.json[key]
            if not seen or seen[-1] != state:
                seen.append(state)
            if state == value:
                answer.observed = seen
                return answer
            assert time.monotonic() < deadline, f"{path} never reached {value}; saw {seen}"
            time.sleep(0.02)


class Answer:
    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw
        self.observed: list[str] = []

    @property
    def json(self):
        return json.loads(self.raw)

    @property
    def error_type(self):
        return self.headers.get("X-Amzn-Errortype")


@pytest.fixture
def raw(emulator_factory, upstream):
    app = upstream()
    app.answers["/"] = (200, json.dumps({"path": "/", "status": "ok", "ts": 1}))
    return Raw(emulator_factory(upstreams={8080: app.url}, delete_seconds=0))


def build(raw, name: str) -> tuple[str, str]:
    created = raw(
        "POST",
        "/2025-09-09/microvm-images",
        {"name": name, "baseImageArn": BASE, "buildRoleArn": ROLE, "codeArtifact": {"uri": URI}},
    )
    assert created.status == 201
    arn, version = created.json["imageArn"], created.json["imageVersion"]
    raw.until(f"/2025-09-09/microvm-images/{arn}/versions/{version}", "state", "SUCCESSFUL")
    return arn, version


def run(raw, arn: str, **body) -> dict:
    answer = raw("POST", "/2025-09-09/microvms", {"imageIdentifier": arn, **body})
    assert answer.status == 200  # not 201
    return answer.json


def test_images_lifecycle(raw):
    created = raw(
        "POST",
        "/2025-09-09/microvm-images",
        {
            "name": "m80-conf-image",
            "baseImageArn": BASE,
            "buildRoleArn": ROLE,
            "codeArtifact": {"uri": URI},
        },
    )
    assert created.status == 201
    body = created.json
    assert set(body) == CREATE_MEMBERS
    assert body["name"] == "m80-conf-image"
    assert body["imageArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:microvm-image:m80-conf-image"
    assert (body["state"], body["imageVersion"], body["baseImageVersion"]) == (
        "CREATING",
        "1.0",
        "1.0",
    )
    assert body["egressNetworkConnectors"] == [INTERNET_EGRESS]
    assert body["resources"] == [{"minimumMemoryInMiB": 2048}]
    for member in ("additionalOsCapabilities", "buildPhaseOverrides", "cpuConfigurations",
                   "description", "environmentVariables", "hooks", "latestActiveImageVersion",
                   "latestFailedImageVersion", "logging", "roleConfiguration", "tags"):  # fmt: skip
        assert body[member] is None, member
    arn = body["imageArn"]
    image_path = f"/2025-09-09/microvm-images/{arn}"

    got = raw.until(image_path, "state", "CREATED")
    assert set(got.json) == GET_IMAGE_MEMBERS
    assert (got.json["latestActiveImageVersion"], got.json["tags"]) == ("1.0", {})

    listed = raw("GET", "/2025-09-09/microvm-images")
    assert listed.status == 200 and listed.json["nextToken"] is None
    assert [set(i) for i in listed.json["items"]] == [LIST_IMAGE_MEMBERS]

    version = raw.until(f"{image_path}/versions/1.0", "state", "SUCCESSFUL")
    assert set(version.json) == VERSION_MEMBERS
    assert (version.json["status"], version.json["stateReason"], version.json["tags"]) == (
        "ACTIVE",
        None,
        None,
    )
    assert version.json["versionStateTimeBucket"].startswith("SUCCESSFUL#")
    assert len(version.json["versionStateTimeBucket"]) == len("SUCCESSFUL#26073006")

    versions = raw("GET", f"{image_path}/versions")
    assert [set(v) for v in versions.json["items"]] == [VERSION_MEMBERS]

    builds = raw("GET", f"{image_path}/versions/1.0/builds")
    assert builds.json["nextToken"] is None
    assert [set(b) for b in builds.json["items"]] == [BUILD_MEMBERS, BUILD_MEMBERS]
    assert [b["chipsetGeneration"] for b in builds.json["items"]] == ["4", "3"]
    build_id = builds.json["items"][0]["buildId"]
    build_detail = raw("GET", f"{image_path}/versions/1.0/builds/{build_id}")
    assert set(build_detail.json) == BUILD_MEMBERS | {"snapshotBuild"}
    assert build_detail.json["buildState"] == "SUCCESSFUL"
    assert build_detail.json["snapshotBuild"] == {
        "codeInstallSizeInBytes": 186400768,
        "diskSnapshotSizeInBytes": 25600000,
        "memorySnapshotSizeInBytes": 609087488,
    }

    updated = raw(
        "PUT",
        image_path,
        {"baseImageArn": BASE, "buildRoleArn": ROLE, "codeArtifact": {"uri": URI},
         "description": "updated by the m80 conformance suite"},
    )  # fmt: skip
    assert updated.status == 200
    assert set(updated.json) == CREATE_MEMBERS - {"tags"}
    assert (updated.json["state"], updated.json["imageVersion"]) == ("UPDATING", "2.0")
    assert updated.json["latestActiveImageVersion"] == "1.0"

    settled = raw.until(image_path, "state", "UPDATED")
    assert settled.json["latestActiveImageVersion"] == "2.0"

    patched = raw("PATCH", f"{image_path}/versions/1.0", {"status": "INACTIVE"})
    assert patched.status == 200 and set(patched.json) == VERSION_MEMBERS
    assert (patched.json["status"], patched.json["state"]) == ("INACTIVE", "SUCCESSFUL")

    dropped = raw("DELETE", f"{image_path}/versions/1.0")
    assert (dropped.status, dropped.json) == (
        200,
        {"imageIdentifier": arn, "imageVersion": "1.0", "state": "DELETING"},
    )
    after = raw.until(image_path, "state", "UPDATED")
    assert after.json["latestActiveImageVersion"] == "2.0"

    deleted = raw("DELETE", image_path)
    assert (deleted.status, deleted.json) == (200, {"imageIdentifier": arn, "state": "DELETING"})


def test_managed_images(raw):
    listed = raw("GET", "/2025-09-09/managed-microvm-images")
    assert listed.status == 200 and listed.json["nextToken"] is None
    assert [set(i) for i in listed.json["items"]] == [{"createdAt", "imageArn", "updatedAt"}]
    assert listed.json["items"][0]["imageArn"] == BASE
    versions = raw("GET", f"/2025-09-09/managed-microvm-images/{BASE}/versions")
    assert versions.status == 200
    items = versions.json["items"]
    assert [(v["imageVersion"], v["status"]) for v in items] == [
        ("1", "AVAILABLE"),
        ("0", "AVAILABLE"),
    ]
    assert all(
        set(v) == {"createdAt", "imageArn", "imageVersion", "status", "updatedAt"} for v in items
    )


def test_vms_lifecycle(raw):
    arn, _ = build(raw, "m80-conf-vm-image")
    vm = run(raw, arn)
    assert set(vm) == VM_MEMBERS
    assert vm["state"] == "PENDING"
    assert vm["ingressNetworkConnectors"] == [HTTP_INGRESS]
    assert vm["egressNetworkConnectors"] == [INTERNET_EGRESS]
    assert vm["maximumDurationInSeconds"] == 28800
    for member in (
        "executionRoleArn",
        "idlePolicy",
        "stateReason",
        "terminatedAt",
        "terminationReasonCode",
    ):
        assert vm[member] is None, member
    assert vm["microvmId"].startswith("microvm-")
    assert (
        vm["endpoint"].endswith(f".lambda-microvm.{REGION}.on.aws") and "://" not in vm["endpoint"]
    )
    vm_path = f"/2025-09-09/microvms/{vm['microvmId']}"
    running = raw.until(vm_path, "state", "RUNNING")
    assert running.observed[-2:] == ["PENDING", "RUNNING"]
    items = raw("GET", "/2025-09-09/microvms").json["items"]
    assert items and all(
        set(i) == {"imageArn", "imageVersion", "microvmId", "startedAt", "state"} for i in items
    )
    terminated = raw("DELETE", vm_path)
    assert (terminated.status, terminated.json) == (200, {})
    done = raw.until(vm_path, "state", "TERMINATED")
    assert (done.json["stateReason"], done.json["terminationReasonCode"]) == ("Success.", None)
    assert done.json["terminatedAt"] is not None
    assert raw("DELETE", f"/2025-09-09/microvm-images/{arn}").status == 200


def test_vm_suspend_resume(raw):
    arn, _ = build(raw, "m80-conf-suspend-image")
    policy = {
        "autoResumeEnabled": False,
        "maxIdleDurationSeconds": 900,
        "suspendedDurationSeconds": 1800,
    }
    vm = run(raw, arn, idlePolicy=policy)
    assert vm["idlePolicy"] == policy
    vm_path = f"/2025-09-09/microvms/{vm['microvmId']}"
    raw.until(vm_path, "state", "RUNNING")
    suspended = raw("POST", f"{vm_path}/suspend")
    assert (suspended.status, suspended.json) == (200, {})
    raw.until(vm_path, "state", "SUSPENDED")
    token = raw(
        "POST",
        f"{vm_path}/auth-token",
        {"expirationInMinutes": 60, "allowedPorts": [{"allPorts": {}}]},
    )
    assert token.status == 200 and list(token.json["authToken"]) == ["X-aws-proxy-auth"]
    resumed = raw("POST", f"{vm_path}/resume")
    assert (resumed.status, resumed.json) == (200, {})
    raw.until(vm_path, "state", "RUNNING")
    assert raw("DELETE", vm_path).json == {}
    raw.until(vm_path, "state", "TERMINATED")
    assert raw("DELETE", f"/2025-09-09/microvm-images/{arn}").status == 200


def test_tokens(raw):
    arn, _ = build(raw, "m80-conf-token-image")
    vm = run(raw, arn)
    vm_path = f"/2025-09-09/microvms/{vm['microvmId']}"
    raw.until(vm_path, "state", "RUNNING")
    token = raw(
        "POST",
        f"{vm_path}/auth-token",
        {"expirationInMinutes": 60, "allowedPorts": [{"allPorts": {}}]},
    )
    assert token.status == 200
    value = token.json["authToken"]["X-aws-proxy-auth"]
    assert value.count(".") == 4 and value.split(".")[1] == ""
    shell = raw("POST", f"{vm_path}/shell-auth-token", {"expirationInMinutes": 60})
    assert (shell.status, shell.error_type) == (400, "ValidationException")
    assert shell.json == {
        "message": "Shell access requires SHELL_INGRESS network connector to be configured on the MicroVM."
    }
    assert raw("DELETE", vm_path).json == {}
    raw.until(vm_path, "state", "TERMINATED")
    assert raw("DELETE", f"/2025-09-09/microvm-images/{arn}").json["state"] == "DELETING"


def test_vm_endpoint(raw):
    arn, _ = build(raw, "m80-conf-endpoint-image")
    policy = {"maxIdleDurationSeconds": 900, "suspendedDurationSeconds": 1800}
    vm_a = run(raw, arn, idlePolicy={**policy, "autoResumeEnabled": True})
    vm_b = run(raw, arn, idlePolicy={**policy, "autoResumeEnabled": False})
    path_a, path_b = (f"/2025-09-09/microvms/{v['microvmId']}" for v in (vm_a, vm_b))
    host_a = raw.until(path_a, "state", "RUNNING").json["endpoint"]
    host_b = raw.until(path_b, "state", "RUNNING").json["endpoint"]

    def mint(path, ports):
        answer = raw(
            "POST", f"{path}/auth-token", {"expirationInMinutes": 60, "allowedPorts": ports}
        )
        assert answer.status == 200
        return answer.json["authToken"]["X-aws-proxy-auth"]

    token_a, token_b = mint(path_a, [{"allPorts": {}}]), mint(path_b, [{"allPorts": {}}])
    token_8080 = mint(path_a, [{"port": 8080}])
    assert (raw.endpoint(host_a).status, raw.endpoint(host_a).raw) == (
        403,
        b"Request missing authentication",
    )
    malformed = raw.endpoint(host_a, "not-a-token")
    assert (malformed.status, malformed.raw) == (403, b"Request missing authentication")
    foreign = raw.endpoint(host_a, token_b)
    assert (foreign.status, foreign.raw) == (403, b"Token authentication failed")
    assert raw.endpoint(host_a, token_8080).status == 200  # default guest port 8080 is granted
    assert raw.endpoint(host_a, token_a).status == 200

    assert raw("POST", f"{path_a}/suspend").json == {}
    raw.until(path_a, "state", "SUSPENDED")
    assert raw.endpoint(host_a, token_a).status == 200  # auto-resume
    assert raw("GET", path_a).json["state"] == "RUNNING"

    assert raw("POST", f"{path_b}/suspend").json == {}
    suspending = raw.until(path_b, "state", "SUSPENDED")
    assert suspending.observed[-1] == "SUSPENDED"
    no_resume = raw.endpoint(host_b, token_b)
    assert (no_resume.status, no_resume.raw) == (502, b"")
    assert raw("GET", path_b).json["state"] == "SUSPENDED"

    assert raw("DELETE", path_a).json == {}
    terminated = raw.until(path_a, "state", "TERMINATED")
    assert terminated.json["stateReason"] == "Success."
    gone = raw.endpoint(host_a, token_a)
    assert (gone.status, gone.raw) == (502, b"")
    assert raw("DELETE", path_b).json == {}
    raw.until(path_b, "state", "TERMINATED")
    assert raw("DELETE", f"/2025-09-09/microvm-images/{arn}").status == 200
    unknown = raw.endpoint(
        f"00000000-0000-0000-0000-000000000000.lambda-microvm.{REGION}.on.aws", token_a
    )
    assert (unknown.status, unknown.raw) == (403, b"Token authentication failed")


def test_tags_api(raw):
    created = raw(
        "POST",
        "/2025-09-09/microvm-images",
        {
            "name": "m80-conf-tags-image",
            "baseImageArn": BASE,
            "buildRoleArn": ROLE,
            "codeArtifact": {"uri": URI},
        },
    )
    arn = created.json["imageArn"]
    tagged = raw("POST", f"/2017-03-31/tags/{arn}", {"Tags": {"m80": "conformance"}})
    assert (tagged.status, tagged.raw) == (204, b"")
    listed = raw("GET", f"/2017-03-31/tags/{arn}")
    assert (listed.status, listed.json) == (200, {"Tags": {"m80": "conformance"}})
    untagged = raw("DELETE", f"/2017-03-31/tags/{arn}?tagKeys=m80")
    assert (untagged.status, untagged.raw) == (204, b"")
    assert raw("GET", f"/2017-03-31/tags/{arn}").json == {"Tags": {}}
    raw.until(f"/2025-09-09/microvm-images/{arn}/versions/1.0", "state", "SUCCESSFUL")
    assert raw("DELETE", f"/2025-09-09/microvm-images/{arn}").status == 200


def test_errors_not_found(raw):
    missing = f"arn:aws:lambda:{REGION}:{ACCOUNT}:microvm-image:m80-does-not-exist"
    vm_id = "microvm-00000000-0000-0000-0000-000000000000"
    cases = [
        ("GET", f"/2025-09-09/microvms/{vm_id}", None, f"MicroVM not found: {vm_id}"),
        ("GET", f"/2025-09-09/microvm-images/{missing}", None,
         f"MicroVMImage not found for MicroVMImageID: {missing}"),
        ("GET", f"/2025-09-09/microvm-images/{missing}/versions/1.0", None,
         f"MicroVMImage not found for MicroVMImage: {missing}, Version: 1.0"),
        ("POST", "/2025-09-09/microvms", {"imageIdentifier": missing},
         f"No active version found for MicroVM image {missing}"),
    ]  # fmt: skip
    for method, path, body, message in cases:
        answer = raw(method, path, body)
        assert (answer.status, answer.error_type) == (404, "ResourceNotFoundException"), path
        assert answer.json == {"message": message, "resourceId": None, "resourceType": None}
        assert "__type" not in answer.json


def test_errors_validation(raw):
    bad = raw(
        "POST",
        "/2025-09-09/microvm-images",
        {
            "name": "bad name!",
            "baseImageArn": BASE,
            "buildRoleArn": ROLE,
            "codeArtifact": {"uri": URI},
        },
    )
    assert (bad.status, bad.error_type) == (400, "ValidationException")
    assert bad.json == {
        "message": "1 validation error detected: Value 'bad name!' at 'name' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+"
    }
    missing = raw("POST", "/2025-09-09/microvm-images", {"name": "m80-missing-required"})
    assert (missing.status, missing.error_type) == (400, "ValidationException")
    assert missing.json == {
        "message": "3 validation errors detected: Value null at 'baseImageArn' failed to satisfy "
        "constraint: Member must not be null; Value null at 'codeArtifact' failed to satisfy "
        "constraint: Member must not be null; Value null at 'buildRoleArn' failed to satisfy "
        "constraint: Member must not be null"
    }


def test_errors_conflict(raw):
    arn, _ = build(raw, "m80-conf-conflict-image")
    vm = run(raw, arn)
    vm_path = f"/2025-09-09/microvms/{vm['microvmId']}"
    raw.until(vm_path, "state", "RUNNING")
    assert raw("DELETE", vm_path).json == {}
    raw.until(vm_path, "state", "TERMINATED")
    suspend = raw("POST", f"{vm_path}/suspend")
    assert (suspend.status, suspend.error_type) == (400, "ValidationException")
    assert suspend.json == {
        "message": f"The MicroVM {vm['microvmId']} has been terminated and its state cannot be changed."
    }
    again = raw("DELETE", vm_path)
    assert (again.status, again.json) == (200, {})
    assert raw("DELETE", f"/2025-09-09/microvm-images/{arn}").status == 200


def test_run_burst_hits_the_memory_ceiling(emulator_factory):
    from concurrent.futures import ThreadPoolExecutor

    raw = Raw(emulator_factory(memory_quota_mib=4096))
    arn, _ = build(raw, "burst")
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(
                lambda _: raw("POST", "/2025-09-09/microvms", {"imageIdentifier": arn}), range(6)
            )
        )
    refused = [a for a in answers if a.status == 402]
    assert sorted(a.status for a in answers) == [200, 200, 402, 402, 402, 402]
    for answer in refused:
        assert answer.error_type == "ServiceQuotaExceededException"
        assert answer.json == {
            "message": "The base maximum allocated memory limit has been reached for this account.",
            "quotaCode": None,
            "resourceId": None,
            "resourceType": None,
            "serviceCode": None,
        }


CONNECTOR_BODY = {
    "Name": "m80-conf-connector",
    "Configuration": {
        "VpcEgressConfiguration": {
            "SubnetIds": ["subnet-00000000000000001"],
            "SecurityGroupIds": ["sg-00000000000000001"],
            "AssociatedComputeResourceTypes": ["MicroVm"],
            "NetworkProtocol": "IPv4",
        }
    },
    "ClientToken": "m80-conformance-create-token-01",
    "OperatorRole": f"arn:aws:iam::{ACCOUNT}:role/m80-conformance-connector-operator",
}
CONNECTOR_CORE = {"Arn", "Configuration", "Id", "Name", "OperatorRole", "State"}


def test_connectors(raw):
    created = raw("POST", "/2026-04-04/network-connectors", CONNECTOR_BODY)
    assert created.status == 202
    assert set(created.json) == CONNECTOR_CORE  # absent members omitted, not null
    assert (created.json["Name"], created.json["State"]) == ("m80-conf-connector", "PENDING")
    connector_id = created.json["Id"]
    assert connector_id.startswith("nc-")
    assert (
        created.json["Arn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:network-connector:{connector_id}"
    )
    path = f"/2026-04-04/network-connectors/{connector_id}"
    active = raw.until(path, "State", "ACTIVE")
    assert set(active.json) == CONNECTOR_CORE | {"LastModified", "StateReason"}
    assert active.json["StateReason"] == "Initial creation"
    listed = raw("GET", "/2026-04-04/network-connectors")
    assert listed.status == 200 and "NextMarker" not in listed.json
    assert [set(i) for i in listed.json["NetworkConnectors"]] == [
        {"Arn", "Id", "LastModified", "Name", "State", "Type"}
    ]
    assert listed.json["NetworkConnectors"][0]["Type"] == "VPC_EGRESS"
    update = {k: v for k, v in CONNECTOR_BODY.items() if k != "Name"}
    updated = raw("PUT", path, {**update, "ClientToken": "m80-conformance-update-token-01"})
    assert updated.status == 202
    assert set(updated.json) == CONNECTOR_CORE | {
        "LastModified",
        "LastUpdateStatus",
        "LastUpdateStatusReason",
    }
    assert (updated.json["LastUpdateStatus"], updated.json["LastUpdateStatusReason"]) == (
        "Successful",
        "No configuration changes detected",
    )
    deleted = raw("DELETE", path)
    assert deleted.status == 202 and set(deleted.json) == CONNECTOR_CORE
    assert deleted.json["State"] == "DELETING"


def test_connector_errors(raw):
    missing = raw("GET", "/2026-04-04/network-connectors/nc-m80-does-not-exist")
    assert (missing.status, missing.error_type) == (404, "ResourceNotFoundException")
    assert missing.json == {
        "Message": f"Network connector not found for: arn:aws:lambda:{REGION}:{ACCOUNT}:network-connector:nc-m80-does-not-exist"
    }
    subnets = [f"subnet-{i:017d}" for i in range(1, 18)]
    too_many = raw(
        "POST",
        "/2026-04-04/network-connectors",
        {
            "Name": "m80-conf-too-many-subnets",
            "Configuration": {
                "VpcEgressConfiguration": {
                    "SubnetIds": subnets,
                    "SecurityGroupIds": ["sg-00000000000000001"],
                }
            },
        },
    )
    # Model constraints come before the prose rules (the probe also lacked four enforced members).
    assert (too_many.status, too_many.error_type) == (400, "ValidationException")
    assert too_many.json == {
        "message": f"1 validation error detected: Value '[{', '.join(subnets)}]' at "
        "'configuration.vpcEgressConfiguration.subnetIds' failed to satisfy constraint: Member "
        "must have length less than or equal to 16"
    }
    no_token = raw(
        "POST",
        "/2026-04-04/network-connectors",
        {k: v for k, v in CONNECTOR_BODY.items() if k != "ClientToken"},
    )
    assert (no_token.status, no_token.error_type) == (400, "InvalidParameterValueException")
    assert no_token.json["message"] == "ClientToken is a required field"
    no_role = raw(
        "POST",
        "/2026-04-04/network-connectors",
        {k: v for k, v in CONNECTOR_BODY.items() if k != "OperatorRole"},
    )
    assert (no_role.status, no_role.json["message"]) == (
        400,
        "NetworkConnectorOperatorRole is required for VPC_EGRESS connector type",
    )
