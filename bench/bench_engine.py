"""Benchmark: ``pulumi preview`` of the local stack under the real CLI, with and without the pack.

Same setup as the engine tier (``tests/engine``): moto + the emulator + the image app on free
loopback ports, a file backend, and the pulumi-aws / pulumi-command test doubles in the run's own
plugin folder. Runs alternate (with pack, without pack) so machine load hits both alike; prints
each median and the ratio with / without (the pack's cost on a real preview), plus the toolchain
check time (`make pulumi` with a warm cache).

    .venv/bin/python bench/bench_engine.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devkit import services, toolchain  # noqa: E402
from tests.engine.doubles.command_plugin import install_command_double  # noqa: E402
from tests.engine.doubles.plugins import install_aws_double  # noqa: E402
from tests.engine.stack import STACK, EngineStack, rewrite_endpoints  # noqa: E402


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    try:
        toolchain.ensure()
    except toolchain.ToolchainError as exc:
        print(f"skipped: no Pulumi toolchain ({str(exc).splitlines()[0]}); run `make pulumi`")
        return 0
    check_seconds = time.perf_counter() - started

    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        root = Path(tmp)
        ports = services.free_ports()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        services.start_services(
            ports, state_dir=root / "services", lifetime=900, parent_pid=os.getpid(),
            python=sys.executable, env=env, timeout=120,
        )  # fmt: skip
        try:
            committed = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())
            stack = EngineStack(
                root=root, ports=ports, services_dir=root / "services",
                config=rewrite_endpoints(committed, ports), echo=False,
            )  # fmt: skip
            stack.write_config()
            (root / "state").mkdir()
            install_aws_double(stack.home, sys.executable)
            install_command_double(stack.home, sys.executable)
            stack.ok(
                "stack",
                "init",
                STACK,
                "--secrets-provider",
                "passphrase",
                config=False,
                stack=False,
            )
            with_pack: list[float] = []
            without: list[float] = []
            for _ in range(args.repeat):
                with_pack.append(timed(lambda: stack.ok("preview", *stack.POLICY)))
                without.append(timed(lambda: stack.ok("preview")))
        finally:
            services.stop_services(root / "services")

    a, b = statistics.median(with_pack), statistics.median(without)
    print(f"toolchain check (cached `make pulumi`): {check_seconds:.2f} s")
    print(
        f"pulumi preview, local stack, with the policy pack:    median {a:.2f} s  (min {min(with_pack):.2f})"
    )
    print(
        f"pulumi preview, local stack, without the policy pack: median {b:.2f} s  (min {min(without):.2f})"
    )
    print(
        f"ratio with / without the pack: {a / b:.2f}x (median), {min(with_pack) / min(without):.2f}x (min)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
