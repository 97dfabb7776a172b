"""Suite-wide fixtures: hermetic AWS environment (Pulumi state is isolated per evaluate_program call)."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports grpc: forking a plugin process while other gRPC channels are open crashes
# the child (exit -11, "Other threads are currently calling into gRPC, skipping fork() handlers").
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import pytest

pytest_plugins = ["tests.fixtures.emulator"]

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@pytest.fixture(autouse=True)
def hermetic_aws(monkeypatch):
    """No real credentials, profiles or endpoints can leak into a test."""
    for key in list(os.environ):
        if key.startswith("AWS_ENDPOINT_URL") or key in ("AWS_PROFILE", "MICROVMS_PROXY_URL"):
            monkeypatch.delenv(key, raising=False)
    for key, value in _FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    yield


def pytest_collection_modifyitems(config, items):
    """Engine files run first, then files holding ``slow`` tests (order within a file kept).

    Under ``pytest -n N --dist loadfile`` (``make test``) each file goes to one worker in this
    order, so the long chains (the real Pulumi CLI, killed-and-rerun providers) start at once
    instead of forming a tail at the end.
    """
    engine = Path(__file__).resolve().parent / "engine"
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}

    def weight(item) -> int:
        if engine in item.path.parents:
            return 0
        return 1 if item.path in slow_files else 2

    items.sort(key=weight)
