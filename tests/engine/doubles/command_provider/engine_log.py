"""Command output as ephemeral status lines on the engine's ``Log`` RPC (upstream's ``LogStatus``).

The engine passes its address as the plugin's first argument. Upstream streams every output line
of a running command (per the ``logging`` input) to the engine as an ephemeral INFO status tied
to the resource's URN. Without an address, or if the engine does not answer, lines are dropped:
logging never fails a command.
"""

from __future__ import annotations

import threading

import grpc
from pulumi.runtime.proto import engine_pb2, engine_pb2_grpc


class EngineLog:
    def __init__(self, address: str | None):
        self._address = address
        self._stub: engine_pb2_grpc.EngineStub | None = None
        self._lock = threading.Lock()
        self._broken = False

    def _engine(self) -> engine_pb2_grpc.EngineStub | None:
        with self._lock:
            if self._stub is None and self._address and not self._broken:
                channel = grpc.insecure_channel(self._address)
                self._stub = engine_pb2_grpc.EngineStub(channel)
            return self._stub

    def status(self, urn: str, message: str) -> None:
        """One ephemeral INFO line for ``urn``."""
        engine = self._engine()
        if engine is None:
            return
        try:
            engine.Log(
                engine_pb2.LogRequest(
                    severity=engine_pb2.INFO, message=message, urn=urn, ephemeral=True
                ),
                timeout=10,
            )
        except grpc.RpcError:
            with self._lock:
                self._broken = True

    def for_urn(self, urn: str):
        """A ``log_line`` callback for :class:`~.runner.Runner`, or None without an engine."""
        if not self._address:
            return None
        return lambda line: self.status(urn, line)
