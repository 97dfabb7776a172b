"""Lifecycle hook calls to the guest application (docs/service-facts.md §4.8).

Hooks are ``POST /aws/lambda-microvms/runtime/v1/<hook>`` on ``hooks.port``; the emulator sends them to
``upstreams[hooks.port]``. Build hooks (``ready``, ``validate``): 200 means done, 503 (or a refused
connection while the app starts) means retry until the hook's timeout, anything else fails the build.
Runtime hooks (``run``, ``suspend``, ``resume``, ``terminate``) are called once with their timeout.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

HOOK_PATH = "/aws/lambda-microvms/runtime/v1/{hook}"
DEFAULT_HOOK_PORT = 9000
DEFAULT_BUILD_HOOK_TIMEOUT = 30
DEFAULT_RUNTIME_HOOK_TIMEOUT = 1


@dataclass
class HookResult:
    status: int | None = None
    error: str | None = None  # "refused" | "timeout" | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post_hook(base_url: str, hook: str, body: dict, timeout: float) -> HookResult:
    """One ``POST`` of ``hook`` to ``base_url``; never raises for network trouble."""
    parts = urlsplit(base_url)
    conn_cls = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    if not parts.hostname:
        raise ValueError(f"hook URL {base_url!r} names no host")
    conn = conn_cls(parts.hostname, parts.port, timeout=max(timeout, 0.05))
    payload = json.dumps(body).encode()
    path = (parts.path.rstrip("/") or "") + HOOK_PATH.format(hook=hook)
    try:
        conn.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return HookResult(status=response.status)
    except TimeoutError:
        return HookResult(error="timeout")
    except (ConnectionRefusedError, ConnectionResetError, OSError):
        return HookResult(error="refused")
    finally:
        conn.close()


def build_hook(base_url: str, hook: str, timeout: float, *, interval: float = 0.1) -> str | None:
    """Call ``ready``/``validate`` until it answers 200; return ``None`` or the build's ``stateReason``."""
    label = hook.capitalize()
    deadline = time.monotonic() + timeout
    last: HookResult | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        last = post_hook(base_url, hook, {}, timeout=remaining)
        if last.ok:
            return None
        if last.status is not None and last.status != 503:
            if 400 <= last.status < 500:
                kind = "a client error (HTTP 4xx)"
            elif last.status >= 500:
                kind = "a server error (HTTP 5xx)"
            else:
                kind = f"an unexpected (HTTP {last.status})"
            # Live wording for a 4xx /ready (docs/service-facts.md §4.8); the others follow the same pattern.
            return f"{label} hook check failed: the application returned {kind} response"
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))
    return (
        f"{label} hook check failed: the application did not become ready within "
        f"{timeout:g} seconds"
    )


def runtime_hook(base_url: str, hook: str, body: dict, timeout: float) -> str | None:
    """Call a runtime hook once; return ``None`` or the MicroVM ``stateReason`` for the failure."""
    result = post_hook(base_url, hook, body, timeout)
    if result.ok:
        return None
    label = hook.capitalize()
    tail = "Please check your hook endpoint and application logs for more details."
    if result.error == "refused":
        return f"{label} lifecycle hook connection was refused. {tail}"
    if result.error == "timeout":
        return f"{label} lifecycle hook timed out. {tail}"
    return f"{label} lifecycle hook failed. {tail}"
