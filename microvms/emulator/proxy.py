"""The per-MicroVM endpoint proxy (docs/service-facts.md §9), served on the emulator's own port.

A request whose ``Host`` is a VM endpoint (``<uuid>.lambda-microvm.<region>.on.aws``) is endpoint
traffic. Locally a client sends it to the emulator URL with that ``Host`` header (see
``microvms.client.proxy_target`` and ``MICROVMS_PROXY_URL``). Answers follow the live proxy:

* no token, or one that does not parse: 403 ``Request missing authentication``;
* an unknown host, an expired token, another VM's token, or a guest port the token does not grant:
  403 ``Token authentication failed``;
* a ``PENDING``, ``SUSPENDING``, terminated VM, a suspended VM without auto-resume, or a guest port
  with nothing listening (no ``upstreams[port]``): 502 with an empty body;
* a suspended VM with ``autoResumeEnabled``: resumed (resume hook included), then forwarded.

The guest port comes from ``X-aws-proxy-port``, then the ``lambda-microvms.port.<n>`` WebSocket
subprotocol, then 8080. ``x-aws-proxy-*`` headers and the ``Host`` are not forwarded. WebSocket
upgrades (e.g. the ``/shell`` connection on guest port 8022) are authenticated from the
``lambda-microvms.authentication.<token>`` subprotocol and relayed byte-for-byte to the upstream.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import threading
from urllib.parse import urlsplit

from werkzeug.wrappers import Request, Response

from .models import EmulatorState, token_is_well_formed

ENDPOINT_HOST_RE = re.compile(
    r"^(?P<uuid>[0-9a-fA-F-]{36})\.lambda-microvm\.(?P<region>[a-z0-9-]+)\.on\.aws$"
)
DEFAULT_GUEST_PORT = 8080
SUBPROTOCOL = "lambda-microvms"
AUTH_PREFIX = "lambda-microvms.authentication."
PORT_PREFIX = "lambda-microvms.port."
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
MISSING_AUTH = "Request missing authentication"
AUTH_FAILED = "Token authentication failed"


def endpoint_host(host_header: str | None) -> str | None:
    """The VM endpoint named by a ``Host`` header (port stripped), or ``None``."""
    if not host_header:
        return None
    host = host_header.strip().lower()
    if host.startswith("["):
        return None
    host = host.rsplit(":", 1)[0] if ":" in host else host
    return host if ENDPOINT_HOST_RE.match(host) else None


def _text(status: int, body: str = "") -> Response:
    return Response(body, status=status, content_type="text/plain; charset=utf-8")


def _empty_502() -> Response:
    response = Response(b"", status=502)
    response.headers.pop("Content-Type", None)
    return response


class EndpointProxy:
    def __init__(self, state: EmulatorState):
        self.state = state

    # ------------------------------------------------------------------ auth
    def _authorize(self, host: str, token: str | None, port: int):
        state = self.state
        if not token or not token_is_well_formed(token):
            return None, _text(403, MISSING_AUTH)
        with state.lock:
            state.tick()
            grant = state.tokens.get(token)
            located = state.endpoints.get(host)
            if grant is None or located is None:
                return None, _text(403, AUTH_FAILED)
            region, vm_id = located
            vm = state.backend(region).vms.get(vm_id)
            if vm is None or grant.microvm_id != vm_id or grant.expires_at <= state.clock.now():
                return None, _text(403, AUTH_FAILED)
            if not grant.allows(port):
                return None, _text(403, AUTH_FAILED)
            return vm, None

    def _ready(self, vm) -> bool:
        """Bring the VM to RUNNING for this request if the live proxy would; False → 502."""
        state = self.state
        with state.lock:
            if vm.state == "RUNNING":
                state.touch(vm)
                return True
            auto = bool(vm.idle_policy and vm.idle_policy.get("autoResumeEnabled"))
            if vm.state != "SUSPENDED" or not auto or vm.busy:
                return False
        if not state.resume_for_traffic(vm):
            return False
        with state.lock:
            state.touch(vm)
        return True

    # ------------------------------------------------------------------ entry
    def handle(self, environ, start_response, host: str):
        request = Request(environ)
        subprotocols = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        is_websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        token = request.headers.get("X-aws-proxy-auth")
        port_text = request.headers.get("X-aws-proxy-port")
        for proto in subprotocols:
            if token is None and proto.startswith(AUTH_PREFIX):
                token = proto[len(AUTH_PREFIX) :]
            if port_text is None and proto.startswith(PORT_PREFIX):
                port_text = proto[len(PORT_PREFIX) :]
        if port_text is None:
            port = DEFAULT_GUEST_PORT
        else:
            try:
                port = int(port_text)
                if not 1 <= port <= 65535:
                    raise ValueError(port_text)
            except ValueError:
                return _text(400, f"Invalid port: {port_text}")(environ, start_response)
        vm, denied = self._authorize(host, token, port)
        if denied is not None:
            return denied(environ, start_response)
        if not self._ready(vm):
            return _empty_502()(environ, start_response)
        upstream = self.state.settings.upstreams.get(port)
        if not upstream:
            return _empty_502()(environ, start_response)
        if is_websocket:
            return self._relay_websocket(
                environ, start_response, request, upstream, subprotocols, vm
            )
        return self._forward(environ, start_response, request, upstream)

    # ------------------------------------------------------------------ HTTP
    def _forward(self, environ, start_response, request: Request, upstream: str):
        target = urlsplit(upstream)
        conn_cls = (
            http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        )
        if not target.hostname:
            raise ValueError(f"upstream URL {upstream!r} names no host")
        conn = conn_cls(target.hostname, target.port, timeout=300)
        raw = environ.get("RAW_URI") or request.full_path
        path = (target.path.rstrip("/") or "") + raw
        headers = {
            key: value
            for key, value in request.headers.items()
            if key.lower() not in HOP_BY_HOP and not key.lower().startswith("x-aws-proxy-")
        }
        body = request.get_data()
        if body or request.method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        headers["Host"] = target.netloc
        try:
            conn.request(request.method, path, body=body or None, headers=headers)
            upstream_response = conn.getresponse()
        except OSError:
            conn.close()
            return _empty_502()(environ, start_response)
        out_headers = [
            (k, v)
            for k, v in upstream_response.getheaders()
            if k.lower() not in HOP_BY_HOP - {"content-length"}
        ]
        start_response(f"{upstream_response.status} {upstream_response.reason}", out_headers)

        def stream():
            try:
                while True:
                    chunk = upstream_response.read1(65536)
                    if not chunk:
                        break
                    yield chunk
            finally:
                conn.close()

        return stream()

    # ------------------------------------------------------------------ WebSocket
    def _relay_websocket(
        self, environ, start_response, request, upstream: str, subprotocols, vm=None
    ):
        client = environ.get("werkzeug.socket")
        if client is None:
            return _text(501, "WebSocket relay needs the emulator's own server")(
                environ, start_response
            )
        target = urlsplit(upstream)
        try:
            remote = socket.create_connection((target.hostname, target.port or 80), timeout=10)
        except OSError:
            return _empty_502()(environ, start_response)
        forwarded_protocols = [p for p in subprotocols if not p.startswith(SUBPROTOCOL)]
        lines = [f"{request.method} {environ.get('RAW_URI') or request.full_path} HTTP/1.1"]
        lines.append(f"Host: {target.netloc}")
        for key, value in request.headers.items():
            lower = key.lower()
            if lower in ("host", "sec-websocket-protocol") or lower.startswith("x-aws-proxy-"):
                continue
            lines.append(f"{key}: {value}")
        if forwarded_protocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(forwarded_protocols)}")
        remote.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = b""
        remote.settimeout(30)
        try:
            while b"\r\n\r\n" not in head:
                chunk = remote.recv(65536)
                if not chunk:
                    break
                head += chunk
        except OSError:
            remote.close()
            return _empty_502()(environ, start_response)
        if b"\r\n\r\n" not in head:
            remote.close()
            return _empty_502()(environ, start_response)
        header_block, rest = head.split(b"\r\n\r\n", 1)
        header_lines = header_block.decode("latin-1").split("\r\n")
        switching = header_lines[0].split(" ")[1:2] == ["101"]
        if (
            switching
            and SUBPROTOCOL in subprotocols
            and not any(
                line.lower().startswith("sec-websocket-protocol:") for line in header_lines[1:]
            )
        ):
            # The live proxy accepts the ``lambda-microvms`` subprotocol the client offered.
            header_lines.append(f"Sec-WebSocket-Protocol: {SUBPROTOCOL}")
        client.sendall(("\r\n".join(header_lines) + "\r\n\r\n").encode("latin-1") + rest)
        remote.settimeout(None)
        client.settimeout(None)
        self._pipe(client, remote, on_inbound=self._toucher(vm))
        # Tell werkzeug the connection is gone so it writes no response of its own.
        raise ConnectionAbortedError("websocket relay finished")

    def _toucher(self, vm):
        """Inbound WebSocket data is endpoint traffic: it resets the VM's idle timer (§6.2)."""
        if vm is None:
            return None
        state = self.state

        def touch():
            with state.lock:
                state.touch(vm)

        return touch

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket, on_inbound=None) -> None:
        """Relay bytes both ways; ``on_inbound()`` runs for each chunk the client (``a``) sends."""

        def copy(src, dst, on_data=None):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if on_data is not None:
                        on_data()
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (dst,):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_WR)

        other = threading.Thread(target=copy, args=(b, a), daemon=True)
        other.start()
        copy(a, b, on_inbound)
        other.join(timeout=5)
        with contextlib.suppress(OSError):
            b.close()
