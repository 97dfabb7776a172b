"""``python -m tests.engine.doubles.command_provider [engine-address] [flags…]`` — the plugin.

TEST DOUBLE of ``pulumi-resource-command`` v1.2.1 (see the package docstring for why it exists
and what it refuses). Prints only its port and a newline on stdout, then serves on 127.0.0.1
until SIGTERM/SIGINT, when it kills any command still running. The engine's flags
(``--logtostderr``, ``-v=9``, ``--tracing <endpoint>``) are accepted and ignored.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc
from pulumi.runtime.proto import provider_pb2_grpc

from tests.engine.doubles.command_provider.server import CommandProvider

_MAX_MESSAGE = 400 * 1024 * 1024
#: Flags of the engine that take a value as the next argument.
_FLAGS_WITH_VALUE = frozenset({"--tracing", "-tracing"})


def engine_address(argv: list[str]) -> str | None:
    """The first positional argument (the engine's gRPC address), flags skipped."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in _FLAGS_WITH_VALUE
            continue
        return arg
    return None


def serve(argv: list[str]) -> int:
    provider = CommandProvider(engine_address(argv))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="command-double"),
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
        ],
    )
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(provider, server)
    port = server.add_insecure_port("127.0.0.1:0")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    stop.wait()
    provider.runner.kill_all()
    server.stop(grace=1).wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
