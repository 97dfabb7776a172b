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

FAST_SERVICE_ENV = {
    "LOCAL_EMULATOR_BUILD_SECONDS": "0.5",
    "LOCAL_EMULATOR_RUN_SECONDS": "0.2",
    "APP_INIT_SECONDS": "0.3",
    "APP_SUSPEND_DRAIN_SECONDS": "1",
}


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
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("MICROVMS_PROXY_URL", "LOG_LEVEL")
    }
    env.update(FAST_SERVICE_ENV)
    try:
        # A free port can be taken by another process (a parallel worker's plugin) before our
        # service binds it: then start again on fresh ports, at most three times.
        for attempt in range(3):
            ports = local_stack.free_ports()
            try:
                local_stack.start_services(
                    ports,
                    state_dir=state_dir,
                    lifetime=1200,
                    parent_pid=os.getpid(),
                    python=sys.executable,
                    env=env,
                    timeout=120,
                )
                break
            except local_stack.LocalStackError:
                local_stack.stop_services(state_dir)
                if attempt == 2:
                    raise
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
