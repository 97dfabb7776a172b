"""``python -m tests.engine.doubles.aws_provider [engine-address] [flags…]`` — serve the double.

Like every Pulumi plugin: start a gRPC server on 127.0.0.1 with an ephemeral port, print only the
port and a newline on stdout, then serve until SIGTERM/SIGINT. The engine address and flags such as
``--logtostderr``, ``-v=9`` or ``--tracing X`` are accepted and ignored. Logs go to stderr.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from concurrent import futures

import grpc
from pulumi.runtime.proto import provider_pb2_grpc

from tests.engine.doubles.aws_provider.server import AwsProvider

#: The engine's own limit for plugin messages (large states and assets).
MAX_MESSAGE_BYTES = 400 * 1024 * 1024


def serve() -> int:
    logging.basicConfig(
        level=os.environ.get("AWS_TEST_DOUBLE_LOG_LEVEL", "WARNING"),
        stream=sys.stderr,
        format="aws-test-double %(levelname)s %(message)s",
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(AwsProvider(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()

    stopped = threading.Event()

    def stop(signum, frame):  # noqa: ARG001
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
