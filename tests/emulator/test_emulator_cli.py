"""``python -m microvms.emulator`` as a real subprocess, and the issue's "Done when" scenario."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from microvms.emulator import wire

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[2]
BASE = "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1"
ROLE = "arn:aws:iam::123456789012:role/build"
LISTENING = re.compile(r"^listening on (http://127\.0\.0\.1:(\d+))$")


@pytest.fixture
def emulator_process(request, upstream):
    """Start the CLI on port 0 with an upstream app; yield (url, process, app); always stopped.

    Parametrize it indirectly with a list of extra flags to start the CLI with them.
    """
    app = upstream()
    extra = list(getattr(request, "param", None) or [])
    process = subprocess.Popen(
        [
            sys.executable, "-m", "microvms.emulator", "--host", "127.0.0.1", "--port", "0",
            "--build-seconds", "0.3", "--run-seconds", "0.1", "--transition-seconds", "0.05",
            "--delete-seconds", "0.1", "--upstream", f"8080={app.url}", *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        line = process.stdout.readline().strip()
        match = LISTENING.match(line)
        if not match:
            process.wait(timeout=10)
            pytest.fail(f"unexpected first line {line!r}; stderr: {process.stderr.read()}")
        yield match.group(1), process, app
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()
        process.stderr.close()


def client_for(url: str):
    return boto3.client(
        "lambda-microvms",
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )


def wait(read, predicate, timeout: float = 15):
    deadline = time.monotonic() + timeout
    value = read()
    while not predicate(value):
        assert time.monotonic() < deadline, f"timed out; last value {value!r}"
        time.sleep(0.03)
        value = read()
    return value


FAULT_FLAGS = [
    "--throttle-rate", "1", "--latency-ms", "20", "--memory-quota-mib", "4096",
    "--fail-next-build", "S3_NO_SUCH_KEY", "--account-id", "210987654321",
]  # fmt: skip


def _admin(url: str, path: str, body: dict | None = None):
    target = urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    try:
        payload = json.dumps(body) if body is not None else None
        conn.request("POST" if body is not None else "GET", f"/_emulator/{path}", body=payload)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("emulator_process", [FAULT_FLAGS], indirect=True)
def test_cli_prints_exactly_one_listening_line_and_stops_on_sigterm(emulator_process):
    """The fault flags reach the running server; SIGTERM ends it cleanly with nothing more printed."""
    url, process, _ = emulator_process
    assert _admin(url, "faults") == (
        200,
        {
            "throttleRate": 1.0,
            "failNextBuilds": ["S3_NO_SUCH_KEY"],
            "latencyMs": 20.0,
            "memoryQuotaMiB": 4096,
        },
    )
    no_retry = boto3.client(
        "lambda-microvms",
        region_name="us-east-1",
        endpoint_url=url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    with pytest.raises(no_retry.exceptions.ThrottlingException) as excinfo:
        no_retry.list_managed_microvm_images()
    assert excinfo.value.response["Error"]["Message"] == "Rate exceeded"
    assert _admin(url, "faults", {"throttleRate": 0})[0] == 200
    client = client_for(url)
    assert client.list_managed_microvm_images()["items"][0]["imageArn"] == BASE
    arn = client.create_microvm_image(
        name="cli-faults", baseImageArn=BASE, buildRoleArn=ROLE, codeArtifact={"uri": "s3://b/k"}
    )["imageArn"]
    assert arn == "arn:aws:lambda:us-east-1:210987654321:microvm-image:cli-faults"
    wait(
        lambda: client.get_microvm_image(imageIdentifier=arn)["state"],
        lambda s: s == "CREATE_FAILED",
    )
    version = client.get_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")
    assert (version["state"], version["stateReason"]) == ("FAILED", "S3_NO_SUCH_KEY")
    assert _admin(url, "calls")[1]["ListManagedMicrovmImages"] == 2
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert process.stdout.read() == ""  # nothing after the listening line


def test_cli_rejects_bad_flags():
    result = subprocess.run(
        [sys.executable, "-m", "microvms.emulator", "--upstream", "nonsense"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--upstream wants GUESTPORT=URL" in result.stderr


def test_done_when_scenario(emulator_process):
    """Create, wait, update to 2.0, run, token, endpoint, suspend/resume/terminate, page, delete."""
    url, _, app = emulator_process
    client = client_for(url)
    arn = client.create_microvm_image(
        name="done-when",
        baseImageArn=BASE,
        buildRoleArn=ROLE,
        codeArtifact={"uri": "s3://b/app.zip"},
    )["imageArn"]
    wait(lambda: client.get_microvm_image(imageIdentifier=arn)["state"], lambda s: s == "CREATED")
    updated = client.update_microvm_image(
        imageIdentifier=arn,
        baseImageArn=BASE,
        buildRoleArn=ROLE,
        codeArtifact={"uri": "s3://b/v2.zip"},
    )
    assert updated["imageVersion"] == "2.0"
    image = wait(
        lambda: client.get_microvm_image(imageIdentifier=arn), lambda i: i["state"] == "UPDATED"
    )
    assert image["latestActiveImageVersion"] == "2.0"

    vm = client.run_microvm(imageIdentifier=arn)
    vm_id = vm["microvmId"]
    assert vm["imageVersion"] == "2.0"
    wait(lambda: client.get_microvm(microvmIdentifier=vm_id)["state"], lambda s: s == "RUNNING")
    token = client.create_microvm_auth_token(
        microvmIdentifier=vm_id, expirationInMinutes=15, allowedPorts=[{"port": 8080}]
    )["authToken"]["X-aws-proxy-auth"]

    target = urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    conn.request("GET", "/health", headers={"Host": vm["endpoint"], "X-aws-proxy-auth": token})
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())["path"]) == (200, "/health")
    conn.close()
    assert app.calls("/health")

    client.suspend_microvm(microvmIdentifier=vm_id)
    wait(lambda: client.get_microvm(microvmIdentifier=vm_id)["state"], lambda s: s == "SUSPENDED")
    client.resume_microvm(microvmIdentifier=vm_id)
    wait(lambda: client.get_microvm(microvmIdentifier=vm_id)["state"], lambda s: s == "RUNNING")
    client.terminate_microvm(microvmIdentifier=vm_id)
    wait(lambda: client.get_microvm(microvmIdentifier=vm_id)["state"], lambda s: s == "TERMINATED")

    for paginator in ("list_microvm_images", "list_microvms", "list_managed_microvm_images"):
        pages = list(client.get_paginator(paginator).paginate(PaginationConfig={"PageSize": 1}))
        assert sum(len(p["items"]) for p in pages) >= 1
    versions = [
        v["imageVersion"]
        for p in client.get_paginator("list_microvm_image_versions").paginate(
            imageIdentifier=arn, PaginationConfig={"PageSize": 1}
        )
        for v in p["items"]
    ]
    assert versions == ["2.0", "1.0"]

    # Invalid requests are answered the way the live service answers them.
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.create_microvm_image(
            name="bad name!", baseImageArn=BASE, buildRoleArn=ROLE, codeArtifact={"uri": "s3://b/k"}
        )
    assert excinfo.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+"
    )
    with pytest.raises(client.exceptions.ValidationException) as excinfo:
        client.suspend_microvm(microvmIdentifier=vm_id)
    assert excinfo.value.response["Error"]["Message"] == (
        f"The MicroVM {vm_id} has been terminated and its state cannot be changed."
    )

    assert client.delete_microvm_image(imageIdentifier=arn)["state"] == "DELETING"
    wait(
        lambda: [i["name"] for i in client.list_microvm_images()["items"]],
        lambda names: "done-when" not in names,
    )
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_microvm_image(imageIdentifier=arn)


def test_every_operation_is_served(emulator, microvms_client):
    """Touch all 24 operations once and check the call counter saw each of them."""
    client = microvms_client
    shell = "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:SHELL_INGRESS"
    arn = client.create_microvm_image(
        name="every-op", baseImageArn=BASE, buildRoleArn=ROLE, codeArtifact={"uri": "s3://b/a.zip"}
    )["imageArn"]
    wait(lambda: client.get_microvm_image(imageIdentifier=arn)["state"], lambda s: s == "CREATED")
    client.list_microvm_images()
    client.get_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")
    build_id = client.list_microvm_image_builds(imageIdentifier=arn, imageVersion="1.0")["items"][
        0
    ]["buildId"]
    client.get_microvm_image_build(imageIdentifier=arn, imageVersion="1.0", buildId=build_id)
    client.update_microvm_image(
        imageIdentifier=arn,
        baseImageArn=BASE,
        buildRoleArn=ROLE,
        codeArtifact={"uri": "s3://b/b.zip"},
    )
    wait(lambda: client.get_microvm_image(imageIdentifier=arn)["state"], lambda s: s == "UPDATED")
    client.list_microvm_image_versions(imageIdentifier=arn)
    client.update_microvm_image_version(imageIdentifier=arn, imageVersion="1.0", status="INACTIVE")
    client.delete_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")
    client.list_managed_microvm_images()
    client.list_managed_microvm_image_versions(imageIdentifier=BASE)
    vm_id = client.run_microvm(imageIdentifier=arn, ingressNetworkConnectors=[shell])["microvmId"]
    wait(lambda: client.get_microvm(microvmIdentifier=vm_id)["state"], lambda s: s == "RUNNING")
    client.list_microvms()
    client.create_microvm_auth_token(
        microvmIdentifier=vm_id, expirationInMinutes=1, allowedPorts=[{"allPorts": {}}]
    )
    client.create_microvm_shell_auth_token(microvmIdentifier=vm_id, expirationInMinutes=1)
    client.suspend_microvm(microvmIdentifier=vm_id)
    wait(lambda: client.get_microvm(microvmIdentifier=vm_id)["state"], lambda s: s == "SUSPENDED")
    client.resume_microvm(microvmIdentifier=vm_id)
    client.tag_resource(Resource=arn, Tags={"k": "v"})
    client.list_tags(Resource=arn)
    client.untag_resource(Resource=arn, TagKeys=["k"])
    client.terminate_microvm(microvmIdentifier=vm_id)
    wait(lambda: client.get_microvm(microvmIdentifier=vm_id)["state"], lambda s: s == "TERMINATED")
    try:
        client.delete_microvm_image(imageIdentifier=arn)
    except ClientError as error:  # the version delete may still be draining
        assert error.response["Error"]["Message"].startswith("Cannot delete MicroVM image")
        wait(
            lambda: len(client.list_microvm_image_versions(imageIdentifier=arn)["items"]),
            lambda n: n == 1,
        )
        client.delete_microvm_image(imageIdentifier=arn)
    assert set(emulator.calls()) == set(wire.service_model().operation_names)
