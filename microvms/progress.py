"""A live status line for waits: state, elapsed time, next poll; shown only on a terminal.

The line goes to stderr and is redrawn in place (carriage return + erase line), so stdout keeps
exactly the JSON or table it always had. When stdout or stderr is not a terminal the line is never
written: scripts and the Pulumi command see nothing extra.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

ERASE = "\r\x1b[2K"
TICK_SECONDS = 0.2


def on_terminal() -> bool:
    try:
        return sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class LiveLine:
    """One redrawable line on stderr; a no-op unless ``enabled`` (default: both streams are ttys)."""

    def __init__(
        self, label: str, *, enabled: bool | None = None, stream: TextIO | None = None
    ) -> None:
        self.label = label
        self.enabled = on_terminal() if enabled is None else enabled
        self._stream = stream
        self._shown = False

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        self.stream.write(f"{ERASE}{self.label}: {text}")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write(ERASE)
            self.stream.flush()
            self._shown = False

    def __enter__(self) -> LiveLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()


class WaitProgress:
    """Adapter for ``waiters.wait_for_microvm``: ``report(state, elapsed, next_delay)`` and ``sleep``.

    ``sleep`` counts the next poll down on the line, so elapsed time moves while waiting.
    """

    def __init__(
        self,
        line: LiveLine,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.line = line
        self._clock = clock
        self._sleep = sleep
        self._state: str | None = "…"
        self._started = clock()

    def text(self, state: str | None, elapsed: float, next_poll: float) -> str:
        return (
            f"{state or 'not visible yet'} · {elapsed:.1f}s elapsed · next poll in {next_poll:.1f}s"
        )

    def report(self, state: str | None, elapsed: float, next_delay: float) -> None:
        self._state = state
        self.line.show(self.text(state, elapsed, next_delay))

    def sleep(self, seconds: float) -> None:
        if not self.line.enabled:
            self._sleep(seconds)
            return
        end = self._clock() + seconds
        while True:
            left = end - self._clock()
            if left <= 0:
                return
            self.line.show(self.text(self._state, self._clock() - self._started, left))
            self._sleep(min(TICK_SECONDS, left))
