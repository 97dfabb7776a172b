"""Run one command the way upstream's ``run`` (``local/commandOutputs.go``) does.

* argv = ``interpreter`` (default ``["/bin/sh", "-c"]``) + the command;
* cwd = ``dir``, else this process's working directory;
* env = this process's environment, then ``environment``, then (unless
  ``addPreviousOutputInEnv`` is false) ``PULUMI_COMMAND_STDOUT``/``PULUMI_COMMAND_STDERR`` of the
  previous run when non-empty (later entries win, as with Go's ``cmd.Env``);
* stdin = ``stdin`` when non-empty, else ``/dev/null``;
* stdout and stderr captured separately (one trailing ``\\n`` trimmed) and interleaved for the
  error message; each line also goes to ``log_line`` as ``logging`` selects;
* failure: ``<exit status N | signal: killed | start error>: running "<command>":\\n<output>``.

Unlike upstream (which kills only the direct child when the context ends), the command runs in
its own process group and a timeout or Cancel kills the whole group, so nothing outlives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

DEFAULT_INTERPRETER = ("/bin/sh", "-c")
STDOUT_ENV = "PULUMI_COMMAND_STDOUT"
STDERR_ENV = "PULUMI_COMMAND_STDERR"
#: How long to wait for output pipes to drain after the command's group was killed.
_DRAIN_SECONDS = 5.0


@dataclass
class RunSpec:
    """Everything one run needs, as plain (unwrapped) values."""

    command: str
    interpreter: Sequence[str] | None = None
    dir: str | None = None
    environment: Mapping[str, str] | None = None
    stdin: str | None = None
    add_previous_output_in_env: bool | None = None
    logging: str | None = None
    previous_stdout: str = ""
    previous_stderr: str = ""
    #: The command text arrived as a secret: error messages show ``[secret]`` instead.
    command_is_secret: bool = False


@dataclass
class RunResult:
    stdout: str
    stderr: str


class CommandFailed(Exception):
    """The command could not start or ended badly; ``str()`` is upstream's message."""


def go_quote(text: str) -> str:
    """Go's ``%q`` for the common cases (double quotes, backslash escapes)."""
    return json.dumps(text, ensure_ascii=False)


def build_env(spec: RunSpec, base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(spec.environment or {})
    if spec.add_previous_output_in_env is None or spec.add_previous_output_in_env:
        if spec.previous_stdout:
            env[STDOUT_ENV] = spec.previous_stdout
        if spec.previous_stderr:
            env[STDERR_ENV] = spec.previous_stderr
    return env


def _exit_text(returncode: int) -> str:
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.strsignal(-returncode) or f"signal {-returncode}"
    except ValueError:
        name = f"signal {-returncode}"
    return f"signal: {name.lower()}"


@dataclass
class _Capture:
    """Output of one run: per-stream bytes plus the interleaved text for error messages."""

    log_line: Callable[[str], None] | None
    log_streams: frozenset[str]
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    combined: bytearray = field(default_factory=bytearray)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pump(self, fd: int, name: str) -> None:
        own = self.stdout if name == "stdout" else self.stderr
        pending = b""
        while chunk := os.read(fd, 65536):
            with self.lock:
                own.extend(chunk)
                self.combined.extend(chunk)
            if self.log_line is not None and name in self.log_streams:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._log(line)
        if pending and self.log_line is not None and name in self.log_streams:
            self._log(pending)
        os.close(fd)

    def _log(self, line: bytes) -> None:
        # Logging must never fail the command.
        with contextlib.suppress(Exception):
            self.log_line(line.rstrip(b"\r").decode("utf-8", "replace"))


def _log_streams(logging: str | None) -> frozenset[str]:
    return {
        None: frozenset({"stdout", "stderr"}),
        "stdoutAndStderr": frozenset({"stdout", "stderr"}),
        "stdout": frozenset({"stdout"}),
        "stderr": frozenset({"stderr"}),
        "none": frozenset(),
    }.get(logging, frozenset({"stdout", "stderr"}))


class Runner:
    """Runs commands; remembers the live ones so Cancel (or shutdown) can kill their groups."""

    def __init__(self) -> None:
        self._live: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self.cancelled = threading.Event()

    def kill_all(self) -> None:
        """Kill the process group of every running command (Cancel, SIGTERM)."""
        self.cancelled.set()
        with self._lock:
            procs = list(self._live)
        for proc in procs:
            _kill_group(proc)

    def run(
        self,
        spec: RunSpec,
        *,
        timeout: float | None = None,
        log_line: Callable[[str], None] | None = None,
    ) -> RunResult:
        shown = "[secret]" if spec.command_is_secret else spec.command
        argv = [*(spec.interpreter or DEFAULT_INTERPRETER), spec.command]
        cwd = spec.dir if spec.dir is not None else os.getcwd()

        def failed(reason: str, output: str = "") -> CommandFailed:
            return CommandFailed(f"{reason}: running {go_quote(shown)}:\n{output}")

        if not os.path.isdir(cwd):
            raise failed(f"chdir {cwd}: no such file or directory")
        if "/" not in argv[0] and shutil.which(argv[0]) is None:
            raise failed(f'exec: "{argv[0]}": executable file not found in $PATH')
        if self.cancelled.is_set():
            raise failed("context canceled")

        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        capture = _Capture(log_line, _log_streams(spec.logging))
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=build_env(spec),
                stdin=subprocess.PIPE if spec.stdin else subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            raise failed(f"fork/exec {argv[0]}: {exc.strerror or exc}") from None
        os.close(out_w)
        os.close(err_w)
        with self._lock:
            self._live.add(proc)
            cancelled = self.cancelled.is_set()
        if cancelled:  # Cancel came between the check above and the registration
            _kill_group(proc)
        readers = [
            threading.Thread(target=capture.pump, args=(out_r, "stdout"), daemon=True),
            threading.Thread(target=capture.pump, args=(err_r, "stderr"), daemon=True),
        ]
        for t in readers:
            t.start()
        if spec.stdin:
            threading.Thread(target=_feed, args=(proc, spec.stdin), daemon=True).start()

        timed_out = False
        try:
            proc.wait(timeout=timeout if timeout and timeout > 0 else None)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            proc.wait()
        finally:
            with self._lock:
                self._live.discard(proc)
        if timed_out or proc.returncode < 0:
            _kill_group(proc)  # leftovers of a killed command must not hold the pipes open
        for t in readers:
            t.join(None if not (timed_out or proc.returncode < 0) else _DRAIN_SECONDS)

        with capture.lock:
            stdout = capture.stdout.decode("utf-8", "replace")
            stderr = capture.stderr.decode("utf-8", "replace")
            combined = capture.combined.decode("utf-8", "replace")
        if timed_out:
            raise failed(
                f"{_exit_text(proc.returncode)} (timed out after {timeout:g}s, the resource's "
                "custom timeout; the command's process group was killed)",
                combined,
            )
        if proc.returncode != 0:
            reason = _exit_text(proc.returncode)
            if self.cancelled.is_set():
                reason += " (the engine cancelled the operation)"
            raise failed(reason, combined)
        return RunResult(stdout=stdout.removesuffix("\n"), stderr=stderr.removesuffix("\n"))


def _feed(proc: subprocess.Popen, text: str) -> None:
    try:
        proc.stdin.write(text.encode("utf-8"))
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
