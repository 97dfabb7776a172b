"""devkit.moto_server: bucket-policy statements with conditions are skipped, the rest still apply."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from components.artifact_bucket import tls_only_bucket_policy
from devkit import moto_server

pytestmark = pytest.mark.emulator

DENY_ALL = {"Sid": "DenyAll", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject"}


def test_evaluable_policy_drops_conditional_statements():
    doc = tls_only_bucket_policy("b", "aws")
    assert moto_server.evaluable_policy(json.dumps(doc)) is None
    doc["Statement"].append({**DENY_ALL, "Resource": "arn:aws:s3:::b/*"})
    kept = json.loads(moto_server.evaluable_policy(json.dumps(doc)))
    assert [s["Sid"] for s in kept["Statement"]] == ["DenyAll"]


@pytest.fixture
def s3():
    from moto.s3.models import FakeBucket

    original = FakeBucket.get_permission
    moto_server.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    yield boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}),
    )  # fmt: skip
    server.stop()
    FakeBucket.get_permission = original


def test_tls_only_policy_lets_loopback_traffic_through_and_a_plain_deny_still_denies(s3):
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="k", Body=b"zip")
    s3.put_bucket_policy(
        Bucket="artifacts", Policy=json.dumps(tls_only_bucket_policy("artifacts", "aws"))
    )
    assert s3.head_object(Bucket="artifacts", Key="k")["ContentLength"] == 3
    doc = tls_only_bucket_policy("artifacts", "aws")
    doc["Statement"].append({**DENY_ALL, "Resource": "arn:aws:s3:::artifacts/*"})
    s3.put_bucket_policy(Bucket="artifacts", Policy=json.dumps(doc))
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="artifacts", Key="k")
    assert err.value.response["Error"]["Code"] in ("403", "AccessDenied")
