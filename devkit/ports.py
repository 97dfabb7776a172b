"""Free loopback ports for services that must be told their port before they start.

A port from ``bind(("127.0.0.1", 0))`` is free when it is returned and may be taken again before
the service binds it: the kernel hands out the same range (``ip_local_port_range``) to every other
``bind(0)`` and to the source port of every outgoing connection. Under parallel tests that race is
real (a gRPC server or an HTTP client of another worker took the port between the pick and the
bind). So :func:`free_port` picks from the ports *below* the kernel's ephemeral range, which the
kernel never hands out by itself, checks that the port can be bound, and records it in a small
per-user lease file so two processes of this tool never receive the same port within
:data:`LEASE_SECONDS`. Where that range is too small it falls back to ``bind(0)``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

LEASE_SECONDS = 900.0
LOWEST = 20000  # below: registered services people run on their machines
EPHEMERAL_DEFAULT = (32768, 60999)
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_range(text: str | None = None) -> tuple[int, int]:
    """The kernel's ephemeral port range (``ip_local_port_range``), or Linux's default."""
    if text is None:
        try:
            text = _RANGE_FILE.read_text()
        except OSError:
            return EPHEMERAL_DEFAULT
    parts = text.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return EPHEMERAL_DEFAULT
    low, high = int(parts[0]), int(parts[1])
    return (low, high) if 0 < low <= high <= 65535 else EPHEMERAL_DEFAULT


def candidate_range(ephemeral: tuple[int, int] | None = None) -> range:
    """Ports this module hands out: from :data:`LOWEST` up to just below the ephemeral range
    (empty when the ephemeral range starts too low to leave one)."""
    low, _ = ephemeral or ephemeral_range()
    return range(LOWEST, max(LOWEST, low))


def live_leases(leases: dict[str, float], now: float) -> dict[str, float]:
    """The leases of ``leases`` (port → time handed out) younger than :data:`LEASE_SECONDS`."""
    return {port: at for port, at in leases.items() if now - at < LEASE_SECONDS}


def _lease_file() -> Path:
    return Path(tempfile.gettempdir()) / f"lambda-microvms-ports-{os.getuid()}.json"


@contextlib.contextmanager
def _locked_leases() -> Iterator[dict[str, float]]:
    path = _lease_file()
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        try:
            leases = {str(k): float(v) for k, v in json.loads(fh.read() or "{}").items()}
        except (ValueError, AttributeError, TypeError):
            leases = {}  # a torn or foreign file: start over
        leases = live_leases(leases, time.time())
        yield leases
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(leases))


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_port() -> int:
    """A loopback port that is free now, outside the kernel's ephemeral range when possible, and
    not handed out to another caller (any process of this user) in the last :data:`LEASE_SECONDS`."""
    candidates = candidate_range()
    if len(candidates) < 100:
        return _kernel_port()
    try:
        with _locked_leases() as leases:
            for port in random.sample(candidates, min(len(candidates), 500)):
                if str(port) in leases or not _bindable(port):
                    continue
                leases[str(port)] = time.time()
                return port
    except OSError:
        pass  # no writable temporary directory: no leases, the kernel's pick
    return _kernel_port()
