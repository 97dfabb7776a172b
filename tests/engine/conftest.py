"""Engine tier: the real Pulumi CLI (``make pulumi``) runs the local stack against moto, the
lambda-microvms emulator and the real image app, with the pulumi-aws and pulumi-command test doubles
as its only stand-ins.

When the toolchain cannot be had (no Go, no module proxy), the tier is skipped with one line saying
how to get it, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import os
import sys

import pytest
import yaml

from devkit import services as local_stack
from devkit import toolchain
from tests.engine.stack import REPO, STACK, EngineStack, rewrite_endpoints
from tests.fixtures.local_services import service_env


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/engine/" in str(item.fspath) and not item.fspath.basename.endswith("_double.py"):
            item.add_marker(pytest.mark.engine)


@pytest.fixture(scope="session")
def pulumi_bin():
    """The toolchain's bin folder, built or reused (seconds when cached)."""
    try:
        return toolchain.ensure()
    except toolchain.ToolchainError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the Pulumi toolchain is required in CI: {exc}")
        pytest.skip(
            f"engine tier skipped: no Pulumi toolchain ({str(exc).splitlines()[0]}); run `make pulumi`"
        )


@pytest.fixture
def services(tmp_path_factory, pulumi_bin):
    """moto, the image app and the emulator on free loopback ports, stopped after the test."""
    state_dir = tmp_path_factory.mktemp("services")
    ports = local_stack.free_ports()  # leased: no other process gets them (devkit.ports)
    try:
        local_stack.start_services(
            ports,
            state_dir=state_dir,
            lifetime=1200,
            parent_pid=os.getpid(),
            python=sys.executable,
            env=service_env(),
            timeout=120,
        )
        yield ports, state_dir
    finally:
        local_stack.stop_services(state_dir)


@pytest.fixture
def engine(tmp_path, services) -> EngineStack:
    """A fresh stack ``local``: its own backend, PULUMI_HOME with the doubles, and stack file."""
    from tests.engine.doubles.command_plugin import install_command_double
    from tests.engine.doubles.plugins import install_aws_double

    ports, services_dir = services
    committed = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())
    stack = EngineStack(
        root=tmp_path,
        ports=ports,
        services_dir=services_dir,
        config=rewrite_endpoints(committed, ports),
    )
    stack.write_config()
    (tmp_path / "state").mkdir()
    install_aws_double(stack.home, sys.executable)
    install_command_double(stack.home, sys.executable)
    stack.ok("stack", "init", STACK, "--secrets-provider", "passphrase", config=False, stack=False)
    return stack
