"""Interactive shell into a MicroVM over the endpoint's WebSocket shell channel.

Protocol (docs/service-facts.md §9): ``wss://<endpoint>/shell`` with subprotocols
``lambda-microvms.authentication.<token>``, ``lambda-microvms`` and ``lambda-microvms.port.8022``.
The shell token is minted in-process (CreateMicrovmShellAuthToken) and goes only into the
WebSocket handshake, never into argv, the environment of a child, or a log line.

Bytes typed locally are sent as binary frames; text or binary frames from the VM are written to
stdout as they arrive. On a terminal the local tty is put in raw mode (restored on exit) so the
remote PTY sees every key; ``Ctrl-]`` closes the session. With stdin not a terminal, the input is
sent as it is read and the session stays open until the VM closes it or ``linger`` seconds of
silence pass after end of input.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from microvms.client import proxy_target
from microvms.endpoint import REFUSED_STATUS, resolve_or_explain
from microvms.tokens import TokenSource
from microvms.vms import SHELL_PORT, Secret

ESCAPE = b"\x1d"  # Ctrl-]
SHELL_PATH = "/shell"


def subprotocols(token: Secret, port: int = SHELL_PORT) -> list[Subprotocol]:
    return [
        Subprotocol(f"lambda-microvms.authentication.{token.reveal()}"),
        Subprotocol("lambda-microvms"),
        Subprotocol(f"lambda-microvms.port.{port}"),
    ]


def open_connection(
    endpoint: str,
    token: Secret,
    *,
    port: int = SHELL_PORT,
    timeout: float = 10,
    proxy_url: str | None = None,
) -> ClientConnection:
    """Open the shell WebSocket; locally through the proxy URL with ``Host: <endpoint>``.

    Raises ``microvms.endpoint.EndpointUnresolvable`` at once when the host does not resolve.
    """
    base_url, host_header = proxy_target(endpoint, proxy_url)
    parts = urlsplit(base_url)
    resolve_or_explain(parts.hostname or "", parts.port or 443)
    protos = subprotocols(token, port)
    if parts.scheme == "https" and parts.hostname == host_header:
        return connect(f"wss://{endpoint}{SHELL_PATH}", subprotocols=protos, open_timeout=timeout)
    # Local emulator: connect the TCP socket to the proxy, but name the VM endpoint in the URI so
    # the Host header is the endpoint (that is how the proxy tells VMs apart).
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return connect(
        f"{scheme}://{host_header}{SHELL_PATH}",
        sock=sock,
        server_hostname=parts.hostname if scheme == "wss" else None,
        subprotocols=protos,
        open_timeout=timeout,
    )


def open_with_tokens(endpoint: str, tokens: TokenSource, **kwargs: Any) -> ClientConnection:
    """Open the shell with a fresh token; after a 403 (expired or refused) mint one more and retry."""
    try:
        return open_connection(endpoint, tokens.get(), **kwargs)
    except InvalidStatus as exc:
        if getattr(exc.response, "status_code", None) != REFUSED_STATUS:
            raise
    return open_connection(endpoint, tokens.refresh(), **kwargs)


@contextlib.contextmanager
def _raw_tty(fd: int) -> Iterator[bool]:
    if not os.isatty(fd):
        yield False
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def interact(
    ws: ClientConnection,
    *,
    stdin_fd: int | None = None,
    stdout: BinaryIO | None = None,
    linger: float = 2.0,
) -> int:
    """Pump stdin → VM and VM → stdout until either side closes. Returns an exit status."""
    stdin_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
    out = stdout or sys.stdout.buffer
    closed = threading.Event()

    def _reader() -> None:
        try:
            for message in ws:
                data = message.encode() if isinstance(message, str) else message
                out.write(data)
                out.flush()
        except ConnectionClosed:
            pass
        finally:
            closed.set()

    thread = threading.Thread(target=_reader, name="shell-reader", daemon=True)
    thread.start()
    with _raw_tty(stdin_fd) as is_tty:
        try:
            while not closed.is_set():
                ready, _, _ = select.select([stdin_fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(stdin_fd, 4096)
                if not data:  # end of input (a pipe): let the VM finish answering
                    closed.wait(linger)
                    break
                if is_tty and ESCAPE in data:
                    data = data.split(ESCAPE, 1)[0]
                    if data:
                        ws.send(data)
                    break
                ws.send(data)
        except ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(Exception):
                ws.close()
    thread.join(timeout=2)
    return 0
