"""HTTP through a MicroVM's endpoint proxy: one request, and a probe that retries with backoff.

The token travels only in the ``X-aws-proxy-auth`` header and the guest port in
``X-aws-proxy-port`` (facts §9). Where the request goes comes from ``microvms.client.proxy_target``:
``https://<endpoint>`` live, or the emulator's URL with ``Host: <endpoint>`` locally.
The endpoint answers 502 for a few seconds while a snapshot restores (facts §6.2), so 502 and
connection errors are retried until the deadline.
"""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from microvms.client import proxy_target
from microvms.vms import DEFAULT_PORT, Secret

EXCERPT_CHARS = 200
RETRY_STATUSES = (502,)


@dataclass
class ProbeResult:
    status: int | None
    latencyMs: float | None  # noqa: N815 - JSON field name
    attempts: int
    bodyExcerpt: str  # noqa: N815
    error: str | None = None
    expectedStatus: int | None = None  # noqa: N815

    @property
    def ok(self) -> bool:
        if self.status is None:
            return False
        if self.expectedStatus is None:
            return 200 <= self.status < 400
        return self.status == self.expectedStatus

    def to_dict(self) -> dict:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _connection(base_url: str, timeout: float):
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
) -> tuple[int, bytes, float]:
    """One request through the endpoint proxy → (status, body, latency in ms)."""
    if not path.startswith("/"):
        path = "/" + path
    base_url, host_header = proxy_target(endpoint)
    prefix = urlsplit(base_url).path.rstrip("/")
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


def probe(
    endpoint: str,
    token: Secret | Callable[[], Secret],
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
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ProbeResult:
    """Request ``path`` until it answers, retrying 502 and connection errors with backoff.

    With ``until_expected`` (the smoke test), any answer other than ``expect_status`` is retried
    too, until ``timeout``. ``token`` may be a callable so a caller can mint it lazily.
    """
    secret = token() if callable(token) else token
    deadline = clock() + timeout
    delay = initial_delay
    attempts = 0
    last = ProbeResult(None, None, 0, "", "no attempt made", expect_status)
    while True:
        attempts += 1
        remaining = max(0.1, deadline - clock())
        try:
            status, data, latency = request(
                endpoint,
                secret,
                path=path,
                port=port,
                method=method,
                timeout=min(request_timeout, remaining),
            )
            last = ProbeResult(
                status, round(latency, 2), attempts, excerpt(data), None, expect_status
            )
            retry = status in RETRY_STATUSES or (until_expected and not last.ok)
        except (OSError, http.client.HTTPException) as exc:
            last = ProbeResult(
                None, None, attempts, "", f"{type(exc).__name__}: {exc}", expect_status
            )
            retry = True
        if not retry or clock() + delay >= deadline:
            return last
        sleep(delay)
        delay = min(max_delay, delay * 2)
