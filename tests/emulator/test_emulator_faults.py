"""Fault injection, the admin API and the optional S3/IAM cross-checks (moto server)."""

from __future__ import annotations

import io
import json
import time
import urllib.request
import zipfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fixtures.emulator import create_image, wait_image

pytestmark = pytest.mark.emulator


def admin(emulator, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{emulator.url}/_emulator/{path}", data=data, method="POST" if data is not None else "GET"
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_call_counts_per_operation(emulator, microvms_client):
    client = microvms_client
    admin(emulator, "calls/reset", {})
    client.list_microvm_images()
    client.list_microvm_images()
    client.list_managed_microvm_images()
    status, calls = admin(emulator, "calls")
    assert status == 200
    assert calls == {"ListMicrovmImages": 2, "ListManagedMicrovmImages": 1}
    assert emulator.calls() == calls
    admin(emulator, "calls/reset", {})
    assert admin(emulator, "calls")[1] == {}


def test_throttle_rate_raises_throttling_exception(emulator):
    no_retry = boto3.client(
        "lambda-microvms",
        region_name="us-east-1",
        endpoint_url=emulator.url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    status, faults = admin(emulator, "faults", {"throttleRate": 1.0})
    assert status == 200 and faults["throttleRate"] == 1.0
    with pytest.raises(ClientError) as excinfo:
        no_retry.list_microvm_images()
    err = excinfo.value.response
    assert err["Error"]["Code"] == "ThrottlingException"
    assert err["Error"]["Message"] == "Rate exceeded"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert isinstance(excinfo.value, no_retry.exceptions.ThrottlingException)
    retrying = boto3.client(
        "lambda-microvms",
        region_name="us-east-1",
        endpoint_url=emulator.url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )
    admin(emulator, "calls/reset", {})
    with pytest.raises(retrying.exceptions.ThrottlingException):
        retrying.list_microvm_images()
    assert emulator.calls() == {"ListMicrovmImages": 2}  # the SDK retried once; both counted
    admin(emulator, "faults", {"throttleRate": 0.5})
    throttled = 0
    for _ in range(100):
        try:
            no_retry.list_managed_microvm_images()
        except no_retry.exceptions.ThrottlingException:
            throttled += 1
    assert 20 < throttled < 80  # binomial(100, 0.5): outside this band is ~1e-9 likely
    assert admin(emulator, "faults", {"throttleRate": 2}) == (
        400,
        {"message": "throttleRate must be a number from 0 to 1, got 2"},
    )
    assert admin(emulator, "faults", {"failNextBuilds": "S3_NO_SUCH_KEY"}) == (
        400,
        {
            "message": "failNextBuilds must be a list of at most 100 stateReason strings of 1 to "
            "1024 characters, got 'S3_NO_SUCH_KEY'"
        },
    )


def test_fail_next_builds_with_chosen_reason(emulator, microvms_client):
    client = microvms_client
    admin(emulator, "faults", {"failNextBuilds": ["S3_NO_SUCH_KEY"]})
    failed = create_image(client, "doomed")["imageArn"]
    image = wait_image(client, failed, "CREATE_FAILED", "CREATED")
    assert image["state"] == "CREATE_FAILED"
    version = client.get_microvm_image_version(imageIdentifier=failed, imageVersion="1.0")
    assert (version["state"], version["stateReason"]) == ("FAILED", "S3_NO_SUCH_KEY")
    fine = create_image(client, "fine")["imageArn"]
    assert wait_image(client, fine, "CREATE_FAILED", "CREATED")["state"] == "CREATED"
    # A failed image can be updated into a working one.
    client.update_microvm_image(
        imageIdentifier=failed,
        baseImageArn="arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1",
        buildRoleArn="arn:aws:iam::123456789012:role/build",
        codeArtifact={"uri": "s3://bucket/fixed.zip"},
    )
    image = wait_image(client, failed, "UPDATED", "UPDATE_FAILED")
    assert (
        image["state"],
        image["latestActiveImageVersion"],
        image["latestFailedImageVersion"],
    ) == (
        "UPDATED",
        "2.0",
        "1.0",
    )


def test_memory_quota_through_admin(emulator, microvms_client):
    from tests.fixtures.emulator import built_image

    arn = built_image(microvms_client, "quota-admin")
    status, faults = admin(emulator, "faults", {"memoryQuotaMiB": 2048})
    assert (status, faults["memoryQuotaMiB"]) == (200, 2048)
    microvms_client.run_microvm(imageIdentifier=arn)
    with pytest.raises(ClientError) as excinfo:
        microvms_client.run_microvm(imageIdentifier=arn)
    assert isinstance(excinfo.value, microvms_client.exceptions.ServiceQuotaExceededException)
    assert excinfo.value.response["Error"] == {
        "Code": "ServiceQuotaExceededException",
        "Message": "The base maximum allocated memory limit has been reached for this account.",
    }
    admin(emulator, "faults", {"memoryQuotaMiB": None})
    assert microvms_client.run_microvm(imageIdentifier=arn)["state"] == "PENDING"
    assert admin(emulator, "faults", {"memoryQuotaMiB": -1}) == (
        400,
        {"message": "memoryQuotaMiB must be null or an integer from 0 to 2147483647, got -1"},
    )


def test_latency_and_clock_admin(emulator, microvms_client):
    admin(emulator, "faults", {"latencyMs": 150})
    started = time.monotonic()
    microvms_client.list_microvm_images()
    assert time.monotonic() - started >= 0.15
    assert admin(emulator, "faults", {"latencyMs": 0})[1]["latencyMs"] == 0
    before = admin(emulator, "clock")[1]["now"]
    after = admin(emulator, "clock/advance", {"seconds": 3600})[1]["now"]
    assert after - before >= 3600
    assert admin(emulator, "clock/advance", {"seconds": -1}) == (
        400,
        {"message": "seconds must be a number from 0 to 31622400 (seconds), got -1"},
    )


def test_reset_drops_all_state(emulator, microvms_client):
    create_image(microvms_client, "gone")
    assert admin(emulator, "reset", {})[0] == 200
    assert microvms_client.list_microvm_images()["items"] == []
    assert admin(emulator, "calls")[1] == {"ListMicrovmImages": 1}
    assert admin(emulator, "nope") == (404, {"message": "unknown admin call GET /_emulator/nope"})
    assert admin(emulator, "faults", {"latencyMs": -1}) == (
        400,
        {"message": "latencyMs must be a number from 0 to 60000 (milliseconds), got -1"},
    )


def test_reset_restores_the_start_up_faults(emulator_factory):
    emulator = emulator_factory(fail_next_builds=["S3_NO_SUCH_KEY"], memory_quota_mib=4096)
    started = {
        "throttleRate": 0.0,
        "failNextBuilds": ["S3_NO_SUCH_KEY"],
        "latencyMs": 0.0,
        "memoryQuotaMiB": 4096,
    }
    assert admin(emulator, "faults") == (200, started)
    changed = {"throttleRate": 0.5, "failNextBuilds": [], "latencyMs": 5, "memoryQuotaMiB": None}
    assert admin(emulator, "faults", changed)[1] == {**changed, "latencyMs": 5.0}
    assert admin(emulator, "reset", {})[0] == 200
    assert admin(emulator, "faults") == (200, started)


def test_unsigned_and_unknown_requests(emulator):
    request = urllib.request.Request(f"{emulator.url}/2025-09-09/microvm-images")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request)
    assert excinfo.value.code == 403
    assert excinfo.value.headers["X-Amzn-Errortype"] == "MissingAuthenticationTokenException"
    assert json.loads(excinfo.value.read()) == {"message": "Missing Authentication Token"}
    request = urllib.request.Request(f"{emulator.url}/2025-09-09/unknown")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request)
    assert excinfo.value.code == 404
    assert excinfo.value.headers["X-Amzn-Errortype"] == "UnknownOperationException"
    assert json.loads(excinfo.value.read()) == {
        "message": "Unknown operation: GET /2025-09-09/unknown"
    }


@pytest.fixture(scope="module")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def test_s3_and_iam_cross_checks(emulator_factory, moto_server):
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=moto_server)
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="good.zip", Body=_zip({"Dockerfile": b"FROM x\n"}))
    s3.put_object(Bucket="artifacts", Key="nodocker.zip", Body=_zip({"app.py": b"print()"}))
    s3.put_object(Bucket="artifacts", Key="notzip.zip", Body=b"plain text")
    good_role = iam.create_role(RoleName="good-build", AssumeRolePolicyDocument=json.dumps(TRUST))
    conditioned = {
        "Version": "2012-10-17",
        "Statement": [
            {
                **TRUST["Statement"][0],
                "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:lambda:*:*:microvm-image:*"}},
            }
        ],
    }
    bad_role = iam.create_role(
        RoleName="source-arn", AssumeRolePolicyDocument=json.dumps(conditioned)
    )
    ec2_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    ec2_role = iam.create_role(RoleName="ec2-role", AssumeRolePolicyDocument=json.dumps(ec2_trust))
    emulator = emulator_factory(s3_endpoint=moto_server, iam_endpoint=moto_server)
    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)

    good = good_role["Role"]["Arn"]
    cases = {
        "ok": ("s3://artifacts/good.zip", good),
        "no-key": ("s3://artifacts/missing.zip", good),
        "no-bucket": ("s3://nobucket/x.zip", good),
        "no-docker": ("s3://artifacts/nodocker.zip", good),
        "not-zip": ("s3://artifacts/notzip.zip", good),
        "cond": ("s3://artifacts/good.zip", bad_role["Role"]["Arn"]),
        "ec2": ("s3://artifacts/good.zip", ec2_role["Role"]["Arn"]),
        "ghost-role": ("s3://artifacts/good.zip", "arn:aws:iam::123456789012:role/does-not-exist"),
    }
    arns = {
        name: create_image(client, name, codeArtifact={"uri": uri}, buildRoleArn=role)["imageArn"]
        for name, (uri, role) in cases.items()
    }
    outcome = {}
    for name, arn in arns.items():
        wait_image(client, arn, "CREATED", "CREATE_FAILED")
        version = client.get_microvm_image_version(imageIdentifier=arn, imageVersion="1.0")
        outcome[name] = (version["state"], version.get("stateReason"))
    assert outcome["ok"] == ("SUCCESSFUL", None)
    assert outcome["no-key"] == ("FAILED", "S3_NO_SUCH_KEY")
    assert outcome["no-bucket"] == ("FAILED", "S3_NO_SUCH_BUCKET")
    assert outcome["no-docker"] == ("FAILED", "ARCHIVE_DOCKERFILE_NOT_FOUND")
    assert outcome["not-zip"] == ("FAILED", "ARCHIVE_INVALID")
    for name in ("cond", "ec2", "ghost-role"):
        state, reason = outcome[name]
        assert state == "FAILED" and "unable to assume role" in reason, name


def test_cross_checks_work_without_aws_credentials(emulator_factory, moto_server, monkeypatch):
    """Started from a shell with no AWS variables, the S3/IAM checks still run (fake local keys)."""
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=moto_server)
    s3.create_bucket(Bucket="no-creds")
    s3.put_object(Bucket="no-creds", Key="app.zip", Body=_zip({"Dockerfile": b"FROM x\n"}))
    role = iam.create_role(RoleName="no-creds-build", AssumeRolePolicyDocument=json.dumps(TRUST))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # A host spelling no earlier test used, so no cached S3/IAM client is reused.
    local = moto_server.replace("127.0.0.1", "localhost")
    emulator = emulator_factory(s3_endpoint=local, iam_endpoint=local)
    client = boto3.client(
        "lambda-microvms",
        region_name="us-east-1",
        endpoint_url=emulator.url,
        aws_access_key_id="caller",
        aws_secret_access_key="caller",
    )
    role_arn = role["Role"]["Arn"]
    ok = create_image(
        client, "nc-ok", codeArtifact={"uri": "s3://no-creds/app.zip"}, buildRoleArn=role_arn
    )
    gone = create_image(
        client, "nc-gone", codeArtifact={"uri": "s3://no-creds/gone.zip"}, buildRoleArn=role_arn
    )
    for created, expected in ((ok, ("SUCCESSFUL", None)), (gone, ("FAILED", "S3_NO_SUCH_KEY"))):
        wait_image(client, created["imageArn"], "CREATED", "CREATE_FAILED")
        version = client.get_microvm_image_version(
            imageIdentifier=created["imageArn"], imageVersion="1.0"
        )
        assert (version["state"], version.get("stateReason")) == expected


def test_region_comes_from_the_signing_scope(emulator):
    from microvms.emulator.server import presigned_region, signing_region

    header = (
        "AWS4-HMAC-SHA256 Credential=ANYKEY/20260801/eu-west-1/lambda/aws4_request, "
        "SignedHeaders=host, Signature=abc"
    )
    assert signing_region(header) == "eu-west-1"
    assert signing_region("Basic dXNlcjpwYXNz") is None
    assert (
        presigned_region("ANYKEY/20260801/ap-northeast-1/lambda/aws4_request") == "ap-northeast-1"
    )
    assert presigned_region("garbage") is None
    client = boto3.client(
        "lambda-microvms",
        region_name="ap-northeast-1",
        endpoint_url=emulator.url,
        aws_access_key_id="AKIAANYTHING",
        aws_secret_access_key="whatever",
    )
    arns = [i["imageArn"] for i in client.list_managed_microvm_images()["items"]]
    assert arns == ["arn:aws:lambda:ap-northeast-1:aws:microvm-image:al2023-1"]
