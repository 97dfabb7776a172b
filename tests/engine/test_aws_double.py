"""The aws provider test double, driven over gRPC as the engine drives it, against moto server.

Every resource type goes Check → Create → Read → Diff → Update → Delete through a real subprocess
of the double, and every step is checked in moto through boto3: the objects, roles, policies and
log groups really exist, and are gone after Delete. The refusals (unknown type, property, invoke,
config key; upstream's account-id check) are asserted by message.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from tests.engine.doubles.aws_provider import wire
from tests.engine.doubles.plugins import REPO_ROOT, install_aws_double

ACCOUNT = "123456789012"
STACK_URN = "urn:pulumi:test::lambda-microvms::"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "env-key",
    "AWS_SECRET_ACCESS_KEY": "env-secret",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
SECRET_KEY = "do-not-log-this-secret-key"
DIFF = provider_pb2.DiffResponse
KIND = provider_pb2.PropertyDiff


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _aws(service: str, moto_url: str):
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


class Double:
    """One subprocess of the double and a gRPC stub, used the way the engine uses a plugin."""

    def __init__(self, cwd: Path, log_path: Path):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PULUMI_ROOT"))}
        env.update(FAKE_ENV, PYTHONPATH=str(REPO_ROOT), AWS_TEST_DOUBLE_LOG_LEVEL="INFO")
        self.log_path = log_path
        self._log = log_path.open("wb")
        # Engine-style argv: the engine address plus flags the plugin must ignore.
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "tests.engine.doubles.aws_provider"]
            + ["127.0.0.1:1", "--logtostderr", "-v=9", "--tracing", "file:/dev/null"],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        first_line = self.process.stdout.readline().decode()
        assert first_line.strip().isdigit(), f"plugin printed {first_line!r} instead of a port"
        self.channel = grpc.insecure_channel(f"127.0.0.1:{first_line.strip()}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def close(self) -> int:
        self.channel.close()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=10)
        self._log.close()
        return code

    # --- engine-style calls on plain dicts ----------------------------------------------------

    def configure(self, config: dict) -> None:
        self.stub.Configure(
            provider_pb2.ConfigureRequest(
                args=wire.to_struct(config), acceptSecrets=True, acceptResources=True
            )
        )

    def check(self, type_: str, name: str, news: dict, olds: dict | None = None, seed=b"seed"):
        response = self.stub.Check(
            provider_pb2.CheckRequest(
                urn=f"{STACK_URN}{type_}::{name}",
                type=type_,
                name=name,
                news=wire.to_struct(news),
                olds=wire.to_struct(olds or {}),
                randomSeed=seed,
            )
        )
        return wire.from_struct(response.inputs), [
            (f.property, f.reason) for f in response.failures
        ]

    def create(self, type_: str, name: str, inputs: dict) -> tuple[str, dict]:
        response = self.stub.Create(
            provider_pb2.CreateRequest(
                urn=f"{STACK_URN}{type_}::{name}",
                type=type_,
                name=name,
                properties=wire.to_struct(inputs),
            )
        )
        return response.id, wire.from_struct(response.properties)

    def read(self, type_: str, name: str, id_: str, state: dict, inputs: dict):
        response = self.stub.Read(
            provider_pb2.ReadRequest(
                id=id_,
                urn=f"{STACK_URN}{type_}::{name}",
                type=type_,
                name=name,
                properties=wire.to_struct(state),
                inputs=wire.to_struct(inputs),
            )
        )
        return response.id, wire.from_struct(response.properties), wire.from_struct(response.inputs)

    def diff(self, type_: str, name: str, id_: str, state: dict, old_inputs: dict, news: dict):
        return self.stub.Diff(
            provider_pb2.DiffRequest(
                id=id_,
                urn=f"{STACK_URN}{type_}::{name}",
                type=type_,
                name=name,
                olds=wire.to_struct(state),
                old_inputs=wire.to_struct(old_inputs),
                news=wire.to_struct(news),
            )
        )

    def update(self, type_: str, name: str, id_: str, state: dict, old_inputs: dict, news: dict):
        response = self.stub.Update(
            provider_pb2.UpdateRequest(
                id=id_,
                urn=f"{STACK_URN}{type_}::{name}",
                type=type_,
                name=name,
                olds=wire.to_struct(state),
                old_inputs=wire.to_struct(old_inputs),
                news=wire.to_struct(news),
            )
        )
        return wire.from_struct(response.properties)

    def delete(self, type_: str, name: str, id_: str, state: dict) -> None:
        self.stub.Delete(
            provider_pb2.DeleteRequest(
                id=id_,
                urn=f"{STACK_URN}{type_}::{name}",
                type=type_,
                name=name,
                properties=wire.to_struct(state),
            )
        )

    def lifecycle(self, type_: str, name: str, news: dict) -> tuple[str, dict, dict]:
        """Check → Create → Read (no drift) → Diff (no change); returns id, state, inputs."""
        inputs, failures = self.check(type_, name, news)
        assert failures == []
        id_, state = self.create(type_, name, inputs)
        assert id_
        read_id, read_state, read_inputs = self.read(type_, name, id_, state, inputs)
        assert (read_id, read_state, read_inputs) == (id_, state, inputs), "refresh shows drift"
        assert self.diff(type_, name, id_, state, inputs, inputs).changes == DIFF.DIFF_NONE
        return id_, state, inputs


def local_config(moto_url: str, **overrides) -> dict:
    """Provider config as the engine sends a default provider's: strings, JSON for lists."""
    endpoints = {k: moto_url for k in ("s3", "iam", "sts", "cloudwatchlogs")}
    config = {
        "region": "us-east-1",
        "accessKey": "test",
        "secretKey": wire.secret(SECRET_KEY),
        "skipCredentialsValidation": "true",
        "skipMetadataApiCheck": "true",
        "skipRegionValidation": "true",
        "s3UsePathStyle": "true",
        "allowedAccountIds": json.dumps([ACCOUNT]),
        "endpoints": json.dumps([endpoints]),
        "defaultTags": json.dumps({"tags": {"suite": "engine"}}),
        "version": "7.51.1",
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


@pytest.fixture(scope="module")
def double(moto_url, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("program")
    plugin = Double(cwd, cwd.parent / "double.log")
    plugin.cwd = cwd
    plugin.configure(local_config(moto_url))
    yield plugin
    assert plugin.close() == 0, "the double must exit cleanly on SIGTERM"
    assert SECRET_KEY not in plugin.log_path.read_text(), "a secret reached the plugin's log"


@pytest.fixture(scope="module")
def fresh_double(tmp_path_factory):
    """A second, unconfigured process for the configuration refusals."""
    cwd = tmp_path_factory.mktemp("fresh")
    plugin = Double(cwd, cwd.parent / "fresh.log")
    yield plugin
    plugin.close()


# --- plugin basics ----------------------------------------------------------------------------


def test_plugin_info_and_schema(double):
    assert double.stub.GetPluginInfo(empty_pb2.Empty()).version == "7.51.1"
    schema = json.loads(double.stub.GetSchema(provider_pb2.GetSchemaRequest()).schema)
    assert schema == {"name": "aws", "version": "7.51.1"}


def test_get_caller_identity_calls_sts(double):
    response = double.stub.Invoke(
        provider_pb2.InvokeRequest(
            tok="aws:index/getCallerIdentity:getCallerIdentity", args=wire.to_struct({})
        )
    )
    result = wire.from_struct(getattr(response, "return"))
    assert result["accountId"] == ACCOUNT
    assert result["arn"].startswith(f"arn:aws:sts::{ACCOUNT}:") or result["arn"].startswith(
        f"arn:aws:iam::{ACCOUNT}:"
    )


# --- S3 ---------------------------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"


def test_bucket_autonamed_from_the_seed_and_kept_once_chosen(double):
    first, _ = double.check(BUCKET, "artifacts-bucket", {"forceDestroy": True}, seed=b"one")
    again, _ = double.check(BUCKET, "artifacts-bucket", {"forceDestroy": True}, seed=b"one")
    other, _ = double.check(BUCKET, "artifacts-bucket", {"forceDestroy": True}, seed=b"two")
    assert first["bucket"] == again["bucket"] != other["bucket"]
    assert len(first["bucket"]) == len("artifacts-bucket-") + 7
    assert first["bucket"].startswith("artifacts-bucket-")
    assert first["__defaults"] == ["bucket"]
    # An update run has another seed; the autoname chosen before stays.
    kept, _ = double.check(BUCKET, "artifacts-bucket", {"forceDestroy": True}, first, b"three")
    assert kept["bucket"] == first["bucket"]


def test_bucket_lifecycle(double, moto_url):
    s3 = _aws("s3", moto_url)
    news = {"bucket": "double-bucket-1", "forceDestroy": True, "tags": {"stack": "t"}}
    id_, state, inputs = double.lifecycle(BUCKET, "bucket", news)
    assert id_ == "double-bucket-1"
    assert state["arn"] == "arn:aws:s3:::double-bucket-1"
    assert state["region"] == "us-east-1"
    assert state["tags"] == {"stack": "t"}
    assert state["tagsAll"] == {"stack": "t", "suite": "engine"}
    tagging = s3.get_bucket_tagging(Bucket=id_)["TagSet"]
    assert {t["Key"]: t["Value"] for t in tagging} == {"stack": "t", "suite": "engine"}

    retag = {**news, "tags": {"stack": "t2"}}
    retag_inputs, _ = double.check(BUCKET, "bucket", retag, inputs)
    diff = double.diff(BUCKET, "bucket", id_, state, inputs, retag_inputs)
    assert diff.changes == DIFF.DIFF_SOME and list(diff.replaces) == []
    assert diff.detailedDiff["tags"].kind == KIND.UPDATE
    state = double.update(BUCKET, "bucket", id_, state, inputs, retag_inputs)
    assert state["tagsAll"] == {"stack": "t2", "suite": "engine"}
    tagging = s3.get_bucket_tagging(Bucket=id_)["TagSet"]
    assert {t["Key"]: t["Value"] for t in tagging} == {"stack": "t2", "suite": "engine"}

    renamed, _ = double.check(BUCKET, "bucket", {**retag, "bucket": "double-bucket-2"}, inputs)
    diff = double.diff(BUCKET, "bucket", id_, state, retag_inputs, renamed)
    assert list(diff.replaces) == ["bucket"] and diff.deleteBeforeReplace
    assert diff.detailedDiff["bucket"].kind == KIND.UPDATE_REPLACE

    # forceDestroy empties a versioned bucket (every version and delete marker) first.
    s3.put_bucket_versioning(Bucket=id_, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=id_, Key="a", Body=b"1")
    s3.put_object(Bucket=id_, Key="a", Body=b"2")
    s3.delete_object(Bucket=id_, Key="a")
    double.delete(BUCKET, "bucket", id_, state)
    assert id_ not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert double.read(BUCKET, "bucket", id_, state, retag_inputs)[0] == ""


def test_bucket_without_force_destroy_refuses_to_delete_objects(double, moto_url):
    s3 = _aws("s3", moto_url)
    id_, state, _ = double.lifecycle(BUCKET, "kept", {"bucket": "double-kept"})
    s3.put_object(Bucket=id_, Key="keep-me", Body=b"x")
    with pytest.raises(grpc.RpcError) as excinfo:
        double.delete(BUCKET, "kept", id_, state)
    assert "deleting S3 Bucket (double-kept)" in excinfo.value.details()
    assert "BucketNotEmpty" in excinfo.value.details()
    assert s3.head_object(Bucket=id_, Key="keep-me")["ContentLength"] == 1


def test_force_destroy_reports_objects_it_could_not_delete(double, moto_url):
    s3 = _aws("s3", moto_url)
    id_, state, _ = double.lifecycle(
        BUCKET, "denied", {"bucket": "double-denied", "forceDestroy": True}
    )
    s3.put_object(Bucket=id_, Key="stuck", Body=b"x")
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": f"arn:aws:s3:::{id_}/*",
            }
        ],
    }
    s3.put_bucket_policy(Bucket=id_, Policy=json.dumps(deny))
    with pytest.raises(grpc.RpcError) as excinfo:
        double.delete(BUCKET, "denied", id_, state)
    assert "deleting 1 object version(s) in S3 Bucket (double-denied): AccessDenied" in (
        excinfo.value.details()
    )
    s3.delete_bucket_policy(Bucket=id_)
    double.delete(BUCKET, "denied", id_, state)
    assert id_ not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


@pytest.fixture(scope="module")
def bucket(double, moto_url):
    id_, state, _ = double.lifecycle(BUCKET, "config-bucket", {"bucket": "double-config"})
    yield id_
    double.delete(BUCKET, "config-bucket", id_, {**state, "forceDestroy": True})


POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::double-config", "arn:aws:s3:::double-config/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    },
    indent=2,
)


def _config_cases(bucket: str) -> list[tuple[str, dict, dict, object]]:
    """(type, inputs, changed inputs, how to read the configuration back with boto3)."""
    lifecycle_rule = {
        "id": "expire-noncurrent-versions",
        "status": "Enabled",
        "filter": {},
        "noncurrentVersionExpiration": {"noncurrentDays": 1},
        "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
    }
    return [
        (
            "aws:s3/bucketVersioning:BucketVersioning",
            {"bucket": bucket, "versioningConfiguration": {"status": "Enabled"}},
            {"bucket": bucket, "versioningConfiguration": {"status": "Suspended"}},
            lambda s3: s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        ),
        (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            {
                "bucket": bucket,
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
                        "bucketKeyEnabled": False,
                    }
                ],
            },
            {
                "bucket": bucket,
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
                        "bucketKeyEnabled": True,
                    }
                ],
            },
            lambda s3: s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
                "Rules"
            ][0].get("BucketKeyEnabled", False),
        ),
        (
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            dict.fromkeys(
                (
                    "blockPublicAcls",
                    "blockPublicPolicy",
                    "ignorePublicAcls",
                    "restrictPublicBuckets",
                ),
                True,
            )
            | {"bucket": bucket},
            dict.fromkeys(("blockPublicAcls", "ignorePublicAcls"), True)
            | {"bucket": bucket, "blockPublicPolicy": False, "restrictPublicBuckets": True},
            lambda s3: s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"][
                "BlockPublicPolicy"
            ],
        ),
        (
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            {"bucket": bucket, "rule": {"objectOwnership": "BucketOwnerEnforced"}},
            {"bucket": bucket, "rule": {"objectOwnership": "BucketOwnerPreferred"}},
            lambda s3: s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"][
                "Rules"
            ][0]["ObjectOwnership"],
        ),
        (
            "aws:s3/bucketPolicy:BucketPolicy",
            {"bucket": bucket, "policy": POLICY},
            {"bucket": bucket, "policy": POLICY.replace("DenyInsecureTransport", "DenyHttp")},
            lambda s3: json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"][0][
                "Sid"
            ],
        ),
        (
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            {"bucket": bucket, "rules": [lifecycle_rule]},
            {
                "bucket": bucket,
                "rules": [{**lifecycle_rule, "noncurrentVersionExpiration": {"noncurrentDays": 7}}],
            },
            lambda s3: s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0][
                "NoncurrentVersionExpiration"
            ]["NoncurrentDays"],
        ),
    ]


_EXPECTED = {
    "aws:s3/bucketVersioning:BucketVersioning": ("Enabled", "Suspended"),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        False,
        True,
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (True, False),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
        "BucketOwnerEnforced",
        "BucketOwnerPreferred",
    ),
    "aws:s3/bucketPolicy:BucketPolicy": ("DenyInsecureTransport", "DenyHttp"),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (1, 7),
}

_GONE_CODES = {
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "ServerSideEncryptionConfigurationNotFoundError"
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "NoSuchPublicAccessBlockConfiguration"
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "OwnershipControlsNotFoundError",
    "aws:s3/bucketPolicy:BucketPolicy": "NoSuchBucketPolicy",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "NoSuchLifecycleConfiguration"
    ),
}


@pytest.mark.parametrize("index", range(6), ids=lambda i: list(_EXPECTED)[i].split(":")[-1])
def test_bucket_configuration_lifecycle(double, moto_url, bucket, index):
    from botocore.exceptions import ClientError

    s3 = _aws("s3", moto_url)
    type_, news, changed, observe = _config_cases(bucket)[index]
    before, after = _EXPECTED[type_]
    id_, state, inputs = double.lifecycle(type_, "config", news)
    assert id_ == bucket and state["region"] == "us-east-1"
    assert observe(s3) == before

    changed_inputs, failures = double.check(type_, "config", changed, inputs)
    assert failures == []
    diff = double.diff(type_, "config", id_, state, inputs, changed_inputs)
    assert diff.changes == DIFF.DIFF_SOME and list(diff.replaces) == []
    state = double.update(type_, "config", id_, state, inputs, changed_inputs)
    assert observe(s3) == after
    assert double.read(type_, "config", id_, state, changed_inputs)[1] == state

    other_bucket, _ = double.check(type_, "config", {**changed, "bucket": "elsewhere"}, inputs)
    diff = double.diff(type_, "config", id_, state, changed_inputs, other_bucket)
    assert "bucket" in diff.replaces

    double.delete(type_, "config", id_, state)
    if type_ == "aws:s3/bucketVersioning:BucketVersioning":
        assert observe(s3) == "Suspended"  # versioning can only be suspended, as upstream does
        return
    with pytest.raises(ClientError) as excinfo:
        observe(s3)
    assert excinfo.value.response["Error"]["Code"] == _GONE_CODES[type_]
    assert double.read(type_, "config", id_, state, changed_inputs)[0] == ""


OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"


def _file_asset(path: str) -> dict:
    """A FileAsset as the Python SDK sends it: a path, no hash."""
    return {wire.SIG: wire.ASSET_SIG, "path": path}


def test_bucket_object_from_a_relative_file_asset(double, moto_url, bucket):
    s3 = _aws("s3", moto_url)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    (double.cwd / "build").mkdir(exist_ok=True)
    (double.cwd / "build" / "one.zip").write_bytes(b"first artifact")
    news = {
        "bucket": bucket,
        "key": "images/a.zip",
        "source": _file_asset("build/one.zip"),
        "contentType": "application/zip",
        "checksumAlgorithm": "SHA256",
        "tags": {"stack": "t"},
    }
    id_, state, inputs = double.lifecycle(OBJECT, "object", news)
    assert inputs["source"]["hash"] == hashlib.sha256(b"first artifact").hexdigest()
    assert id_ == "images/a.zip"
    assert state["arn"] == f"arn:aws:s3:::{bucket}/images/a.zip"
    assert state["source"] == inputs["source"]
    body = s3.get_object(Bucket=bucket, Key="images/a.zip")
    assert body["Body"].read() == b"first artifact"
    assert state["etag"] == body["ETag"].strip('"') and state["versionId"] == body["VersionId"]
    assert state["tagsAll"] == {"stack": "t", "suite": "engine"}

    (double.cwd / "build" / "one.zip").write_bytes(b"edited in place")
    edited, _ = double.check(OBJECT, "object", news, inputs)
    assert list(double.diff(OBJECT, "object", id_, state, inputs, edited).diffs) == ["source"]
    (double.cwd / "build" / "two.zip").write_bytes(b"second artifact")
    changed = {**news, "source": _file_asset("build/two.zip")}
    changed_inputs, _ = double.check(OBJECT, "object", changed, inputs)
    diff = double.diff(OBJECT, "object", id_, state, inputs, changed_inputs)
    assert list(diff.diffs) == ["source"] and list(diff.replaces) == []
    new_state = double.update(OBJECT, "object", id_, state, inputs, changed_inputs)
    assert new_state["versionId"] != state["versionId"]
    assert s3.get_object(Bucket=bucket, Key=id_)["Body"].read() == b"second artifact"

    moved, _ = double.check(OBJECT, "object", {**changed, "key": "images/b.zip"}, inputs)
    assert list(double.diff(OBJECT, "object", id_, new_state, changed_inputs, moved).replaces) == [
        "key"
    ]

    double.delete(OBJECT, "object", id_, new_state)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=id_)
    assert versions.get("Versions", []) == [] and versions.get("DeleteMarkers", []) == []


def test_bucket_object_missing_asset_file_names_the_path(double, bucket):
    inputs, _ = double.check(
        OBJECT, "missing", {"bucket": bucket, "key": "k", "source": _file_asset("nope.zip")}
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        double.create(OBJECT, "missing", inputs)
    assert "asset file 'nope.zip' not found" in excinfo.value.details()


# --- IAM and logs -----------------------------------------------------------------------------

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ],
    },
    indent=2,
)
READ_LOGS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": "*"}],
    }
)


def test_role_policy_and_attachment_lifecycle(double, moto_url):
    iam = _aws("iam", moto_url)
    role_id, role, role_inputs = double.lifecycle(
        ROLE,
        "build-role",
        {"assumeRolePolicy": TRUST, "description": wire.secret("builds"), "tags": {"r": "b"}},
    )
    assert role_id.startswith("build-role-") and len(role_id) == len("build-role-") + 7
    assert role["arn"] == f"arn:aws:iam::{ACCOUNT}:role/{role_id}"
    assert role["name"] == role_id and role["uniqueId"]
    assert role["assumeRolePolicy"] == TRUST  # the configured text, not IAM's re-encoding
    assert wire.is_secret(role["description"]), "a secret input stays secret in the outputs"
    assert iam.get_role(RoleName=role_id)["Role"]["Description"] == "builds"

    policy_id, policy, policy_inputs = double.lifecycle(
        ROLE_POLICY, "build-policy", {"role": role_id, "policy": READ_LOGS}
    )
    assert policy_id == f"{role_id}:{policy['name']}"
    assert policy["name"].startswith("build-policy-")
    document = iam.get_role_policy(RoleName=role_id, PolicyName=policy["name"])["PolicyDocument"]
    assert document == json.loads(READ_LOGS)

    managed = iam.create_policy(PolicyName="double-managed", PolicyDocument=READ_LOGS)["Policy"]
    attach_id, attachment, _ = double.lifecycle(
        ATTACHMENT, "read-only", {"role": role_id, "policyArn": managed["Arn"]}
    )
    attached = iam.list_attached_role_policies(RoleName=role_id)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [managed["Arn"]]

    # In-place: description and tags. Replacements: role name, the policy's role.
    changed, _ = double.check(
        ROLE,
        "build-role",
        {"assumeRolePolicy": TRUST, "description": "v2", "tags": {}},
        role_inputs,
    )
    diff = double.diff(ROLE, "build-role", role_id, role, role_inputs, changed)
    assert sorted(diff.diffs) == ["description", "tags"] and list(diff.replaces) == []
    assert not diff.deleteBeforeReplace
    role = double.update(ROLE, "build-role", role_id, role, role_inputs, changed)
    assert iam.get_role(RoleName=role_id)["Role"]["Description"] == "v2"
    assert iam.list_role_tags(RoleName=role_id)["Tags"] == [{"Key": "suite", "Value": "engine"}]
    renamed, _ = double.check(ROLE, "build-role", {**changed, "name": "explicit"}, changed)
    diff = double.diff(ROLE, "build-role", role_id, role, changed, renamed)
    assert list(diff.replaces) == ["name"] and diff.deleteBeforeReplace
    moved, _ = double.check(ROLE_POLICY, "build-policy", {**policy_inputs, "role": "other"})
    diff = double.diff(ROLE_POLICY, "build-policy", policy_id, policy, policy_inputs, moved)
    assert list(diff.replaces) == ["role"]

    # A role with attached policies cannot be deleted: upstream's order is attachments first.
    with pytest.raises(grpc.RpcError) as excinfo:
        double.delete(ROLE, "build-role", role_id, role)
    assert f"deleting IAM Role ({role_id})" in excinfo.value.details()
    assert "DeleteConflict" in excinfo.value.details()
    double.delete(ATTACHMENT, "read-only", attach_id, attachment)
    double.delete(ROLE_POLICY, "build-policy", policy_id, policy)
    assert iam.list_role_policies(RoleName=role_id)["PolicyNames"] == []
    double.delete(ROLE, "build-role", role_id, role)
    assert role_id not in {r["RoleName"] for r in iam.list_roles()["Roles"]}


def test_role_force_detach_policies_cleans_up_first(double, moto_url):
    iam = _aws("iam", moto_url)
    role_id, role, _ = double.lifecycle(
        ROLE, "detach", {"assumeRolePolicy": TRUST, "forceDetachPolicies": True}
    )
    iam.put_role_policy(RoleName=role_id, PolicyName="inline", PolicyDocument=READ_LOGS)
    double.delete(ROLE, "detach", role_id, role)
    assert role_id not in {r["RoleName"] for r in iam.list_roles()["Roles"]}


LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def test_log_group_lifecycle_and_refresh_of_a_deleted_group(double, moto_url):
    logs = _aws("logs", moto_url)
    name = "/aws/lambda-microvms/double"
    news = {"name": name, "retentionInDays": 1, "tags": {"stack": "t"}}
    id_, state, inputs = double.lifecycle(LOG_GROUP, "logs", news)
    assert id_ == name
    assert state["arn"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{name}"
    assert state["retentionInDays"] == 1
    group = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
    assert group["retentionInDays"] == 1

    changed, _ = double.check(LOG_GROUP, "logs", {**news, "retentionInDays": 14}, inputs)
    diff = double.diff(LOG_GROUP, "logs", id_, state, inputs, changed)
    assert list(diff.diffs) == ["retentionInDays"] and list(diff.replaces) == []
    state = double.update(LOG_GROUP, "logs", id_, state, inputs, changed)
    assert (
        logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["retentionInDays"] == 14
    )
    renamed, _ = double.check(LOG_GROUP, "logs", {**news, "name": "/other"}, inputs)
    assert list(double.diff(LOG_GROUP, "logs", id_, state, changed, renamed).replaces) == ["name"]

    # Drift: a retention changed out of band shows in the refreshed inputs (the next up fixes it).
    logs.put_retention_policy(logGroupName=name, retentionInDays=30)
    _, refreshed, refreshed_inputs = double.read(LOG_GROUP, "logs", id_, state, changed)
    assert refreshed["retentionInDays"] == 30 and refreshed_inputs["retentionInDays"] == 30

    logs.delete_log_group(logGroupName=name)  # out of band: refresh must notice
    assert double.read(LOG_GROUP, "logs", id_, state, changed)[0] == ""
    double.delete(LOG_GROUP, "logs", id_, state)  # already gone: no error


def test_import_reads_a_resource_by_id_only(double, moto_url):
    logs = _aws("logs", moto_url)
    logs.create_log_group(logGroupName="/imported")
    id_, state, inputs = double.read(LOG_GROUP, "imported", "/imported", {}, {})
    assert id_ == "/imported" and state["name"] == "/imported"
    assert inputs == {"name": "/imported", "__defaults": []}
    logs.delete_log_group(logGroupName="/imported")


# --- preview semantics ------------------------------------------------------------------------


def test_preview_unknowns_pass_check_and_show_as_changes(double):
    inputs, failures = double.check(
        ROLE_POLICY, "p", {"role": wire.UNKNOWN, "policy": wire.UNKNOWN, "name": "fixed"}
    )
    assert failures == []
    old = {"role": "r", "policy": READ_LOGS, "name": "fixed", "__defaults": []}
    diff = double.diff(ROLE_POLICY, "p", "r:fixed", {**old, "id": "r:fixed"}, old, inputs)
    assert sorted(diff.diffs) == ["policy", "role"] and list(diff.replaces) == ["role"]


# --- refusals ---------------------------------------------------------------------------------


def test_unknown_resource_type_is_refused_by_name(double):
    with pytest.raises(grpc.RpcError) as excinfo:
        double.check("aws:ec2/vpc:Vpc", "vpc", {"cidrBlock": "10.0.0.0/16"})
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the aws test double does not implement resource type aws:ec2/vpc:Vpc" in (
        excinfo.value.details()
    )


def test_unknown_input_property_fails_check_naming_it(double):
    _, failures = double.check(BUCKET, "b", {"bucket": "x-y-z", "acl": "private"})
    assert failures == [
        (
            "acl",
            "the aws test double does not implement input property 'acl' of aws:s3/bucket:Bucket; "
            "implemented: bucket, bucketPrefix, forceDestroy, region, tags",
        )
    ]


def test_bad_values_fail_check_naming_the_allowed_ones(double):
    _, failures = double.check(LOG_GROUP, "l", {"name": "/x", "retentionInDays": 2})
    assert failures[0][0] == "retentionInDays"
    assert failures[0][1].startswith("2; allowed: 0, 1, 3, 5, 7, 14, 30")


def test_unknown_invoke_is_refused_by_name(double):
    with pytest.raises(grpc.RpcError) as excinfo:
        double.stub.Invoke(
            provider_pb2.InvokeRequest(tok="aws:index/getRegion:getRegion", args=wire.to_struct({}))
        )
    assert "the aws test double does not implement invoke aws:index/getRegion:getRegion" in (
        excinfo.value.details()
    )


def test_allowed_account_ids_with_skip_requesting_account_id_is_refused(fresh_double, moto_url):
    """Upstream: the account id is then empty, and the allow-list check refuses it."""
    config = local_config(moto_url, skipRequestingAccountId="true")
    with pytest.raises(grpc.RpcError) as excinfo:
        fresh_double.configure(config)
    assert excinfo.value.details().endswith("AWS account ID not allowed: ")


def test_account_outside_the_allow_list_is_refused(fresh_double, moto_url):
    config = local_config(
        moto_url, skipCredentialsValidation="false", allowedAccountIds='["111111111111"]'
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        fresh_double.configure(config)
    assert excinfo.value.details().endswith(f"AWS account ID not allowed: {ACCOUNT}")
    forbidden = local_config(moto_url, allowedAccountIds=None, forbiddenAccountIds=f'["{ACCOUNT}"]')
    forbidden["skipCredentialsValidation"] = "false"
    with pytest.raises(grpc.RpcError) as excinfo:
        fresh_double.configure(forbidden)
    assert excinfo.value.details().endswith(f"AWS account ID not allowed: {ACCOUNT}")


def test_region_is_validated_unless_skipped(fresh_double, moto_url):
    config = local_config(moto_url, region="mars-east-1", skipRegionValidation="false")
    with pytest.raises(grpc.RpcError) as excinfo:
        fresh_double.configure(config)
    assert excinfo.value.details().endswith("Invalid AWS Region: mars-east-1")


def test_unknown_config_keys_and_endpoints_are_refused_by_name(fresh_double, moto_url):
    response = fresh_double.stub.CheckConfig(
        provider_pb2.CheckRequest(
            urn=f"{STACK_URN}pulumi:providers:aws::default",
            type="pulumi:providers:aws",
            news=wire.to_struct(local_config(moto_url, profile="dev")),
        )
    )
    assert [f.property for f in response.failures] == ["profile"]
    assert "does not implement provider config key 'profile'" in response.failures[0].reason
    bad_endpoint = local_config(moto_url, endpoints=json.dumps([{"lambda": moto_url}]))
    response = fresh_double.stub.CheckConfig(
        provider_pb2.CheckRequest(type="pulumi:providers:aws", news=wire.to_struct(bad_endpoint))
    )
    assert [f.property for f in response.failures] == ["endpoints[0].lambda"]
    assert all(SECRET_KEY not in f.reason for f in response.failures)
    assert wire.is_secret(wire.from_struct(response.inputs)["secretKey"]), "stays a secret"


def test_install_aws_double_writes_a_launcher_the_cli_counts_as_installed(tmp_path):
    home = tmp_path / "pulumi-home"
    (home / "plugins").mkdir(parents=True)
    (home / "plugins" / "resource-aws-v7.51.1.partial").write_text("")
    launcher = install_aws_double(home, sys.executable)
    assert launcher == home / "plugins" / "resource-aws-v7.51.1" / "pulumi-resource-aws"
    assert os.access(launcher, os.X_OK)
    assert not (home / "plugins" / "resource-aws-v7.51.1.partial").exists()
    # Run it the way the engine does: from another directory, with the engine address as argv.
    process = subprocess.Popen(
        [str(launcher), "127.0.0.1:1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    try:
        port = process.stdout.readline().decode().strip()
        assert port.isdigit()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            assert stub.GetPluginInfo(empty_pb2.Empty()).version == "7.51.1"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
