"""A process-wide token bucket that keeps RunMicrovm under the live quota.

The service allows RunMicrovm at 5 requests/s by default (docs/service-facts.md §14); the CLI reads the account's
applied value from Service Quotas (``microvms.quota``). A rate may be given as a number or as a
zero-argument callable that is asked only when the rate first matters (a process that calls
RunMicrovm once never waits, so it never pays for the quota lookup). The limiter is attached to a botocore
client's ``before-send`` event for that operation, so every HTTP attempt counts — botocore's own
retries included — and every thread of the process shares one bucket.

Separate processes each have their own bucket. To share one budget between processes (e.g. many
``microvms smoke`` runs in parallel), set ``MICROVMS_RATE_LIMIT_FILE`` to a path: calls are then
spaced through that file under an ``flock`` (POSIX), across every process that uses it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from microvms import env

if TYPE_CHECKING:
    from microvms.client import MicrovmsClient

RUN_MICROVM_RATE = 5.0

Rate = float | Callable[[], float]


class _LazyRate:
    """A rate fixed at construction, or resolved once from a callable on first use."""

    def __init__(self, rate: Rate) -> None:
        if not callable(rate) and rate <= 0:
            raise ValueError("rate must be > 0")
        self._source = rate
        self._value: float | None = None if callable(rate) else float(rate)
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    source = self._source
                    value = float(source()) if callable(source) else float(source)
                    self._value = value if value > 0 else RUN_MICROVM_RATE
        return self._value


class TokenBucket(_LazyRate):
    """Classic token bucket: ``rate`` tokens per second, at most ``burst`` stored.

    ``burst=1`` (the default) spaces calls evenly at ``1/rate`` seconds, so no one-second window
    ever holds more than ``rate`` calls. ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        rate: Rate,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if burst < 1:
            raise ValueError("burst must be >= 1")
        super().__init__(rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._bucket_lock = threading.Lock()
        self._tokens = float(burst)
        self._stamp = clock()

    def _reserve(self) -> float:
        """Take one token (possibly going negative) and return how long the caller must wait."""
        with self._bucket_lock:
            now = self._clock()
            if self._tokens < self.burst:  # a full bucket needs no rate (so no quota lookup)
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.rate

    def acquire(self) -> float:
        """Block until a token is available; return the seconds waited."""
        delay = self._reserve()
        if delay > 0:
            self._sleep(delay)
        return delay


class FileSlotLimiter(_LazyRate):
    """Spaces calls ``1/rate`` seconds apart across processes that share ``path``.

    The file holds the wall-clock time of the next free slot; each caller takes the slot under an
    exclusive ``flock`` and sleeps until it. Works between threads too (each call opens the file).
    """

    def __init__(
        self,
        path: str,
        rate: Rate = RUN_MICROVM_RATE,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate)
        self.path = path
        self._clock = clock
        self._sleep = sleep

    def _reserve(self) -> float:
        import fcntl

        with open(self.path, "a+", encoding="ascii") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                raw = fh.read().strip()
                try:
                    next_free = float(raw) if raw else 0.0
                except ValueError:
                    next_free = 0.0
                now = self._clock()
                slot = max(now, next_free)
                fh.seek(0)
                fh.truncate()
                fh.write(repr(slot + 1.0 / self.rate))
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return slot - now

    def acquire(self) -> float:
        delay = self._reserve()
        if delay > 0:
            self._sleep(delay)
        return delay


# One bucket for the whole process: every client built by ``limit_run_microvm`` shares it.
RUN_MICROVM_BUCKET = TokenBucket(RUN_MICROVM_RATE)


def default_limiter(rate: Rate | None = None) -> TokenBucket | FileSlotLimiter:
    """The shared file limiter when ``MICROVMS_RATE_LIMIT_FILE`` is set, else a process bucket.

    Without ``rate`` the process bucket is the shared ``RUN_MICROVM_BUCKET`` at 5/s.
    """
    path = os.environ.get(env.RATE_LIMIT_FILE)
    if path:
        return FileSlotLimiter(path, RUN_MICROVM_RATE if rate is None else rate)
    return RUN_MICROVM_BUCKET if rate is None else TokenBucket(rate)


def limit_run_microvm(
    client: MicrovmsClient,
    bucket: TokenBucket | FileSlotLimiter | None = None,
    *,
    rate: Rate | None = None,
) -> MicrovmsClient:
    """Throttle every RunMicrovm HTTP attempt of ``client`` through ``bucket``; return the client."""
    chosen = bucket or default_limiter(rate)

    def _before_send(**_kwargs: Any) -> None:
        chosen.acquire()
        return None  # never short-circuit the request

    client.meta.events.register("before-send.lambda-microvms.RunMicrovm", _before_send)
    return client
