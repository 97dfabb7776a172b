"""HTTP through a MicroVM's endpoint proxy: one request, and a probe that retries with backoff.

The token travels only in the ``X-aws-proxy-auth`` header and the guest port in
``X-aws-proxy-port`` (docs/service-facts.md §9). Where the request goes comes from ``microvms.client.proxy_target``:
``https://<endpoint>`` live, or the emulator's URL with ``Host: <endpoint>`` locally.
The endpoint answers 502 for a few seconds while a snapshot restores (docs/service-facts.md §6.2), so 502 and
connection errors are retried until the deadline. A 403 means the token expired or was refused: with
a :class:`~microvms.tokens.TokenSource` a new token is minted and the request sent again at once.
A host name that does not resolve is not retried: live endpoints resolve once the VM is RUNNING,
and the emulator's made-up host names never do, so the cause is a missing proxy URL.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from microvms import env
from microvms.client import proxy_target
from microvms.tokens import TokenSource
from microvms.vms import DEFAULT_PORT, Secret

EXCERPT_CHARS = 200
RETRY_STATUSES = (502,)
REFUSED_STATUS = 403


class EndpointUnresolvable(OSError):
    """The endpoint's host name does not resolve (no proxy URL set for a local endpoint)."""

    def __init__(self, host: str, detail: str) -> None:
        super().__init__(
            f"cannot resolve the MicroVM endpoint {host} ({detail}); for the local emulator set "
            f"{env.PROXY_URL} (or --proxy-url) to the emulator's URL"
        )
        self.host = host


def resolve_or_explain(host: str, port: int) -> None:
    """Raise :class:`EndpointUnresolvable` at once when ``host`` has no address."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise EndpointUnresolvable(host, exc.strerror or str(exc)) from None


@dataclass
class ProbeResult:
    status: int | None
    latencyMs: float | None  # noqa: N815 - JSON field name
    attempts: int
    bodyExcerpt: str  # noqa: N815
    error: str | None = None
    expectedStatus: int | None = None  # noqa: N815
    tokensMinted: int | None = None  # noqa: N815

    @property
    def ok(self) -> bool:
        if self.status is None:
            return False
        if self.expectedStatus is None:
            return 200 <= self.status < 400
        return self.status == self.expectedStatus

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _connection(base_url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            host, parts.port or 443, timeout=timeout, context=ssl.create_default_context()
        )
    return http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)


def request(
    endpoint: str,
    token: Secret,
    *,
    path: str = "/",
    port: int = DEFAULT_PORT,
    method: str = "GET",
    timeout: float = 10.0,
    body: bytes | None = None,
    proxy_url: str | None = None,
) -> tuple[int, bytes, float]:
    """One request through the endpoint proxy → (status, body, latency in ms).

    Raises :class:`EndpointUnresolvable` when the target host does not resolve.
    """
    if not path.startswith("/"):
        path = "/" + path
    base_url, host_header = proxy_target(endpoint, proxy_url)
    parts = urlsplit(base_url)
    prefix = parts.path.rstrip("/")
    resolve_or_explain(parts.hostname or "", parts.port or 443)
    conn = _connection(base_url, timeout)
    headers = {
        "Host": host_header,
        "X-aws-proxy-auth": token.reveal(),
        "X-aws-proxy-port": str(port),
        "User-Agent": "lambda-microvms-cli",
    }
    started = time.perf_counter()
    try:
        conn.request(method, prefix + path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, (time.perf_counter() - started) * 1000.0
    finally:
        conn.close()


def excerpt(data: bytes, limit: int = EXCERPT_CHARS) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "…"


Progress = Callable[[ProbeResult, float, float], None]


def probe(
    endpoint: str,
    token: Secret | TokenSource | Callable[[], Secret],
    *,
    path: str = "/",
    port: int = DEFAULT_PORT,
    method: str = "GET",
    expect_status: int | None = None,
    timeout: float = 30.0,
    until_expected: bool = False,
    request_timeout: float = 10.0,
    initial_delay: float = 0.05,
    max_delay: float = 1.0,
    proxy_url: str | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ProbeResult:
    """Request ``path`` until it answers, retrying 502 and connection errors with backoff.

    With ``until_expected`` (the smoke test), any answer other than ``expect_status`` is retried
    too, until ``timeout``. With a :class:`TokenSource` the token is reused while fresh and minted
    again after a 403 (one new token per refusal: a 403 with a token minted for that very request
    is the answer). ``progress(last, elapsed, next_delay)`` is called before every pause.
    Raises :class:`EndpointUnresolvable` at once when the endpoint's host does not resolve.
    """
    if isinstance(token, TokenSource):
        source = token
    else:
        fixed = token() if callable(token) else token
        source = None
    started = clock()
    deadline = started + timeout
    delay = initial_delay
    attempts = 0
    fresh = False  # the current token was minted because the previous one was refused
    last = ProbeResult(None, None, 0, "", "no attempt made", expect_status)
    while True:
        attempts += 1
        remaining = max(0.1, deadline - clock())
        secret = source.get() if source else fixed
        try:
            status, data, latency = request(
                endpoint,
                secret,
                path=path,
                port=port,
                method=method,
                timeout=min(request_timeout, remaining),
                proxy_url=proxy_url,
            )
            last = ProbeResult(
                status, round(latency, 2), attempts, excerpt(data), None, expect_status
            )
            if status == REFUSED_STATUS and source is not None and not fresh:
                source.refresh()  # expired or refused: one new token, then ask again at once
                fresh = True
                continue
            if status != REFUSED_STATUS:
                fresh = False  # a 403 with a just-minted token is the answer; do not mint again
            retry = status in RETRY_STATUSES or (until_expected and not last.ok)
        except EndpointUnresolvable:
            raise
        except (OSError, http.client.HTTPException) as exc:
            last = ProbeResult(
                None, None, attempts, "", f"{type(exc).__name__}: {exc}", expect_status
            )
            retry = True
        finally:
            del secret
        if not retry or clock() + delay >= deadline:
            last.tokensMinted = source.mints if source else None
            return last
        if progress is not None:
            progress(last, clock() - started, delay)
        sleep(delay)
        delay = min(max_delay, delay * 2)
