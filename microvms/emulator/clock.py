"""Injectable clock for the emulator's lifecycle.

The emulator never reads ``time.time()`` directly for state transitions: every deadline is measured on
a :class:`Clock`. The default clock follows real time (so short durations such as ``build_seconds=0.3``
elapse by themselves) and can be pushed forward with :meth:`Clock.advance` so tests can jump over long
durations (idle policies, maximum durations) without sleeping. A frozen clock only moves when advanced.
"""

from __future__ import annotations

import math
import threading
import time


class Clock:
    """Epoch-seconds clock: real time plus an offset (or a frozen start plus an offset)."""

    def __init__(self, *, frozen: bool = False, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen = frozen
        self._start = time.time() if start is None else float(start)
        self._listeners: list = []

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> float:
        with self._lock:
            base = self._start if self._frozen else time.time()
            return base + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (must be >= 0) and return the new time."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"the clock only moves forward by a finite amount, got {seconds}")
        with self._lock:
            self._offset += float(seconds)
        for listener in list(self._listeners):
            listener()
        return self.now()

    def on_advance(self, callback) -> None:
        """Register ``callback()`` to run after every :meth:`advance` (the emulator re-evaluates state)."""
        self._listeners.append(callback)


class FrozenClock(Clock):
    """A clock that stands still until :meth:`advance` is called."""

    def __init__(self, start: float | None = None) -> None:
        super().__init__(frozen=True, start=start)
