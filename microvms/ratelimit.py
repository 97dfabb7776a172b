"""A process-wide token bucket that keeps RunMicrovm under the live quota.

The service allows RunMicrovm at 5 requests/s (facts §14). The limiter is attached to a botocore
client's ``before-send`` event for that operation, so every HTTP attempt counts — botocore's own
retries included — and every thread of the process shares one bucket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

RUN_MICROVM_RATE = 5.0


class TokenBucket:
    """Classic token bucket: ``rate`` tokens per second, at most ``burst`` stored.

    ``burst=1`` (the default) spaces calls evenly at ``1/rate`` seconds, so no one-second window
    ever holds more than ``rate`` calls. ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._stamp = clock()

    def _reserve(self) -> float:
        """Take one token (possibly going negative) and return how long the caller must wait."""
        with self._lock:
            now = self._clock()
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


# One bucket for the whole process: every client built by ``limit_run_microvm`` shares it.
RUN_MICROVM_BUCKET = TokenBucket(RUN_MICROVM_RATE)


def limit_run_microvm(client, bucket: TokenBucket | None = None):
    """Throttle every RunMicrovm HTTP attempt of ``client`` through ``bucket``; return the client."""
    chosen = bucket or RUN_MICROVM_BUCKET

    def _before_send(**_kwargs):
        chosen.acquire()
        return None  # never short-circuit the request

    client.meta.events.register("before-send.lambda-microvms.RunMicrovm", _before_send)
    return client
