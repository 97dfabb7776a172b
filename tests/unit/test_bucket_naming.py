"""Artifact bucket names: valid for S3, within 63 characters, unique per project/stack/account/region."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.naming import (
    artifact_bucket_name,
    is_valid_bucket_name,
    partition_for_region,
    validate_account_id,
)

pytestmark = pytest.mark.unit

ACCOUNT = "111111111111"


def test_typical_name():
    assert (
        artifact_bucket_name("lambda-microvms", "dev", ACCOUNT, "us-east-1")
        == "lambda-microvms-dev-artifacts-111111111111-766b879f"
    )


def test_name_is_deterministic_and_differs_per_input():
    base = ("lambda-microvms", "dev", ACCOUNT, "us-east-1")
    names = {
        artifact_bucket_name(*base),
        artifact_bucket_name("lambda-microvms", "prod", ACCOUNT, "us-east-1"),
        artifact_bucket_name("lambda-microvms", "dev", "222222222222", "us-east-1"),
        artifact_bucket_name("lambda-microvms", "dev", ACCOUNT, "us-west-2"),
        artifact_bucket_name("other", "dev", ACCOUNT, "us-east-1"),
    }
    assert len(names) == 5
    assert artifact_bucket_name(*base) == artifact_bucket_name(*base)


def test_slug_collisions_are_separated_by_the_hash():
    # "My_Stack" and "my-stack" slug identically; the hash covers the raw values.
    a = artifact_bucket_name("p", "My_Stack", ACCOUNT, "us-east-1")
    b = artifact_bucket_name("p", "my-stack", ACCOUNT, "us-east-1")
    assert a != b
    assert a.rsplit("-", 1)[0] == b.rsplit("-", 1)[0] == "p-my-stack-artifacts-111111111111"


def test_long_names_are_truncated_to_63_and_stay_unique():
    long_a = artifact_bucket_name("x" * 80, "stack-a", ACCOUNT, "us-east-1")
    long_b = artifact_bucket_name("x" * 80, "stack-b", ACCOUNT, "us-east-1")
    assert len(long_a) == len(long_b) == 63
    assert long_a != long_b
    assert is_valid_bucket_name(long_a)
    assert long_a.endswith(f"-{ACCOUNT}-" + long_a[-8:])


def test_truncation_never_leaves_a_double_hyphen():
    # Choose a project whose cut point lands on a separator.
    name = artifact_bucket_name("a" * 40 + "-b", "dev", ACCOUNT, "us-east-1")
    assert "--" not in name and is_valid_bucket_name(name)


@pytest.mark.parametrize(
    ("project", "stack", "expected_prefix"),
    [
        ("Lambda.MicroVMs", "Dev", "lambda-microvms-dev-artifacts-"),
        ("___", "!!!", "artifacts-"),
        ("xn--punycode", "dev", "xn-punycode-dev-artifacts-"),  # "--" collapses
        ("sthree-app", "dev", "b-sthree-app-dev-artifacts-"),
        ("amzn-s3-demo-x", "dev", "b-amzn-s3-demo-x-dev-artifacts-"),
        ("ünïcode", "stäck", "n-code-st-ck-artifacts-"),
    ],
)
def test_awkward_inputs_are_sanitised(project, stack, expected_prefix):
    name = artifact_bucket_name(project, stack, ACCOUNT, "eu-west-1")
    assert name.startswith(expected_prefix)
    assert is_valid_bucket_name(name)


@pytest.mark.parametrize("bad", ["", "12345678901", "1234567890123", "12345678901a", None])
def test_bad_account_id_is_rejected(bad):
    with pytest.raises(ValueError) as err:
        artifact_bucket_name("p", "s", bad, "us-east-1")
    assert (
        str(err.value)
        == f"account_id: {bad!r} is not an AWS account id (allowed: exactly 12 digits)"
    )


def test_empty_region_is_rejected():
    with pytest.raises(ValueError) as err:
        artifact_bucket_name("p", "s", ACCOUNT, "")
    assert str(err.value) == "region: must be a non-empty AWS region name"


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("abc", True),
        ("a.b-c1", True),
        ("ab", False),
        ("a" * 64, False),
        ("a" * 63, True),
        ("Abc", False),
        ("-abc", False),
        ("abc-", False),
        ("a..b", False),
        ("a.-b", False),
        ("a_b", False),
        ("192.168.5.4", False),
        ("xn--abc", False),
        ("sthree-abc", False),
        ("amzn-s3-demo-bucket", False),
        ("abc-s3alias", False),
        ("abc--ol-s3", False),
        ("abc--x-s3", False),
        ("abc--table-s3", False),
        ("abc.mrap", False),
    ],
)
def test_is_valid_bucket_name(name, valid):
    assert is_valid_bucket_name(name) is valid


def test_validate_account_id_and_partitions():
    assert validate_account_id(ACCOUNT) == ACCOUNT
    assert partition_for_region("us-east-1") == "aws"
    assert partition_for_region("cn-north-1") == "aws-cn"
    assert partition_for_region("us-gov-west-1") == "aws-us-gov"


@settings(max_examples=300, deadline=None)
@given(
    project=st.text(min_size=0, max_size=120),
    stack=st.text(min_size=0, max_size=120),
    account=st.from_regex(r"\A[0-9]{12}\Z"),
    region=st.sampled_from(["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1"]),
)
def test_property_always_a_valid_s3_name(project, stack, account, region):
    name = artifact_bucket_name(project, stack, account, region)
    assert 3 <= len(name) <= 63
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", name)
    assert "--" not in name
    assert is_valid_bucket_name(name)
    assert account in name
    assert name == artifact_bucket_name(project, stack, account, region)
