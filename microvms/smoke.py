"""The smoke test: run → wait RUNNING → token → probe until expected → terminate, always.

Termination happens in a ``finally`` on success, failure, timeout, Ctrl-C and SIGTERM (signals are
turned into an exception, and deferred while RunMicrovm is in flight so its id is never lost).
``maximumDurationInSeconds`` is set as a backstop, so even a SIGKILLed process cannot leak a VM
for longer than the timeout plus a margin. The result is one JSON-able dict.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from types import FrameType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from microvms import endpoint as _endpoint
from microvms import tokens, vms, waiters
from microvms.vms import RunSpec
from microvms.waiters import WaitError

if TYPE_CHECKING:
    from microvms.client import MicrovmsClient

# What ``signal.signal`` takes and gives back.
_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None

BACKSTOP_MARGIN_SECONDS = 120
EXIT_OK, EXIT_FAILED = 0, 1


class Interrupted(BaseException):  # noqa: N818 - BaseException so `except Exception` lets it pass
    """Raised in the main thread when SIGTERM/SIGINT/SIGHUP arrives."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class SignalGuard:
    """Turn termination signals into ``Interrupted``; ``critical()`` defers them, ``shield()`` eats them.

    Only the first signal interrupts; later ones are recorded and ignored, so a second Ctrl-C or
    SIGTERM can never cut the cleanup short. Only installs handlers in the main thread (elsewhere
    it is a no-op, e.g. in benchmark threads).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

    def __init__(self) -> None:
        self._depth = 0
        self._shielded = 0
        self.pending: int | None = None
        self.received: int | None = None
        self._old: dict[signal.Signals, _Handler] = {}

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.received is None
        self.received = self.received or signum
        if not first:
            return  # the first signal already started the shutdown; never interrupt the cleanup
        if self._depth or self._shielded:
            self.pending = signum
            return
        raise Interrupted(signum)

    @contextlib.contextmanager
    def critical(self) -> Iterator[None]:
        """Defer signals during the block; re-raise the first one when it ends."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self.pending and not self._shielded:
            signum, self.pending = self.pending, None
            raise Interrupted(signum)

    @contextlib.contextmanager
    def shield(self) -> Iterator[None]:
        """Defer and swallow signals during cleanup; the caller is exiting anyway."""
        self._shielded += 1
        try:
            yield
        finally:
            self._shielded -= 1


@dataclass(frozen=True)
class SmokeOptions:
    spec: RunSpec
    path: str = "/"
    port: int = vms.DEFAULT_PORT
    expect_status: int = 200
    timeout: float = 120.0
    terminate_timeout: float = 60.0
    wait_terminated: bool = True
    """Poll until TERMINATED after TerminateMicrovm (else report the state read once after it)."""
    proxy_url: str | None = None
    """Endpoint proxy (the emulator); else ``MICROVMS_PROXY_URL``, else ``https://<endpoint>``."""


def backstop_seconds(timeout: float) -> int:
    """maximumDurationInSeconds for a smoke VM: the whole budget plus a margin, within 1..28800."""
    return max(1, min(vms.MAX_DURATION_SECONDS, math.ceil(timeout) + BACKSTOP_MARGIN_SECONDS))


def token_minutes(timeout: float) -> int:
    """The shortest token lifetime that outlives the probe phase (≤ 60 minutes)."""
    return max(1, min(vms.MAX_TOKEN_MINUTES, math.ceil(timeout / 60.0)))


def prepare_spec(options: SmokeOptions) -> RunSpec:
    """Add the duration backstop and a client token (so a lost RunMicrovm answer can be replayed)."""
    spec = options.spec
    if spec.max_duration_seconds is None:
        spec = replace(spec, max_duration_seconds=backstop_seconds(options.timeout))
    if not spec.client_token:
        spec = replace(spec, client_token=f"smoke-{uuid.uuid4()}")
    return spec


def _client_error(op: str, exc: ClientError) -> str:
    err = exc.response.get("Error", {})
    return f"{op} failed: {err.get('Code', 'Error')}: {err.get('Message', '')}".strip()


@dataclass
class _RunState:
    """What cleanup must know about the RunMicrovm call: the VM's id, or that the outcome is unknown."""

    vm_id: str | None = None
    unknown: bool = False


def run_smoke(
    client: MicrovmsClient,
    options: SmokeOptions,
    *,
    guard: SignalGuard | None = None,
    log: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Run the smoke test and return the result document (``ok`` tells pass/fail).

    Raises ``vms.InputError`` before any API call for bad input; never raises once a VM exists.
    """
    guard = guard or SignalGuard()
    say = log or (lambda _msg: None)
    spec = prepare_spec(options)
    # validates (with the model's patterns); no API call yet
    request = vms.build_run_request(spec, client.meta.region_name, client.meta.service_model)
    started = clock()
    deadline = started + options.timeout
    result: dict[str, Any] = {
        "ok": False,
        "microvmId": None,
        "imageArn": spec.image_arn,
        "imageVersion": spec.image_version,
        "endpoint": None,
        "probePath": options.path,
        "probePort": options.port,
        "expectedStatus": options.expect_status,
        "timeToRunningSeconds": None,
        "probeStatus": None,
        "probeLatencyMs": None,
        "probeAttempts": 0,
        "tokensMinted": 0,
        "totalSeconds": None,
        "finalState": None,
        "maximumDurationInSeconds": request.get("maximumDurationInSeconds"),
        "error": None,
    }
    state = _RunState()
    try:
        _body(client, options, guard, request, spec, result, state, started, deadline, say, clock)
    except Interrupted as exc:  # a signal during an except clause; cleanup has already run
        result["error"] = result["error"] or f"interrupted by {exc}"
        result.update(ok=False, interrupted=str(exc), exitCode=exc.exit_code)
    with guard.shield():  # the VM is gone; a late signal must not lose the report
        result["totalSeconds"] = round(clock() - started, 3)
        if guard.received and "interrupted" not in result:
            name = signal.Signals(guard.received).name
            result.update(ok=False, interrupted=name, exitCode=128 + guard.received)
            result["error"] = result["error"] or f"interrupted by {name}"
    return result


def _body(
    client: MicrovmsClient,
    options: SmokeOptions,
    guard: SignalGuard,
    request: dict[str, Any],
    spec: RunSpec,
    result: dict[str, Any],
    state: _RunState,
    started: float,
    deadline: float,
    say: Callable[[str], None],
    clock: Callable[[], float],
) -> None:
    try:
        try:
            with guard.critical():
                response = client.run_microvm(**request)
                # Record the id before the block ends: a signal deferred during the call is
                # raised right at its end, and cleanup must know which VM to terminate.
                vm_id = state.vm_id = response["microvmId"]
                result.update(
                    microvmId=vm_id,
                    endpoint=response.get("endpoint"),
                    imageArn=response.get("imageArn", spec.image_arn),
                    imageVersion=response.get("imageVersion", spec.image_version),
                )
        except ClientError as exc:
            raise _Failure(_client_error("RunMicrovm", exc)) from None
        except BotoCoreError as exc:
            state.unknown = True  # the request may have landed; cleanup replays the token
            raise _Failure(f"RunMicrovm failed: {exc}") from None
        say(f"smoke: started {vm_id} ({response.get('state')})")

        vm = waiters.wait_for_microvm(client, vm_id, ("RUNNING",), timeout=deadline - clock())
        result["timeToRunningSeconds"] = round(clock() - started, 3)
        result["endpoint"] = vm.get("endpoint") or result["endpoint"]
        say(f"smoke: {vm_id} RUNNING after {result['timeToRunningSeconds']}s")

        source = tokens.auth_tokens(
            client, vm_id, minutes=token_minutes(deadline - clock()), port=options.port
        )
        probe = _endpoint.probe(
            result["endpoint"],
            source,
            path=options.path,
            port=options.port,
            expect_status=options.expect_status,
            timeout=max(0.5, deadline - clock()),
            until_expected=True,
            proxy_url=options.proxy_url,
        )
        source.forget()
        result.update(
            probeStatus=probe.status,
            probeLatencyMs=probe.latencyMs,
            probeAttempts=probe.attempts,
            tokensMinted=source.mints,
        )
        if probe.ok:
            result["ok"] = True
            say(f"smoke: {options.path} answered {probe.status} in {probe.latencyMs} ms")
        else:
            seen = probe.status if probe.status is not None else probe.error
            result["error"] = (
                f"probe of {options.path} on port {options.port} answered {seen}, "
                f"expected {options.expect_status} (after {probe.attempts} attempts)"
            )
            result["probeBodyExcerpt"] = probe.bodyExcerpt
    except (_Failure, _endpoint.EndpointUnresolvable) as exc:
        result["error"] = str(exc)
    except WaitError as exc:
        last = exc.microvm.get("state")
        result["error"] = (
            f"timed out after {options.timeout:g}s waiting for {result['microvmId']} to be "
            f"RUNNING (last state: {last or 'not visible'})"
            if exc.timed_out
            else str(exc)
        )
        result["finalState"] = last
    except ClientError as exc:
        op = exc.operation_name if hasattr(exc, "operation_name") else "call"
        result["error"] = _client_error(op, exc)
    except BotoCoreError as exc:
        result["error"] = f"AWS call failed: {exc}"
    except Interrupted as exc:
        result["error"] = f"interrupted by {exc}"
        result["interrupted"] = str(exc)
        result["exitCode"] = exc.exit_code
    except Exception as exc:  # a bug or an odd answer must not skip the report (cleanup runs)
        result["error"] = f"unexpected error: {type(exc).__name__}: {exc}"
    finally:
        with guard.shield():
            _cleanup(client, request, state.vm_id, state.unknown, result, options, say)


class _Failure(Exception):
    pass


def _cleanup(
    client: MicrovmsClient,
    request: dict[str, Any],
    vm_id: str | None,
    run_outcome_unknown: bool,
    result: dict[str, Any],
    options: SmokeOptions,
    say: Callable[[str], None],
) -> None:
    """Terminate the VM (always) and record its final state; never raises."""
    try:
        if vm_id is None and run_outcome_unknown:
            # Same clientToken + same body returns the original VM, if one was created (docs/service-facts.md §8).
            vm_id = client.run_microvm(**request)["microvmId"]
            result["microvmId"] = vm_id
        if vm_id is None:
            return
        client.terminate_microvm(microvmIdentifier=vm_id)
        if options.wait_terminated:
            vm = waiters.wait_for_microvm(
                client, vm_id, ("TERMINATED",), timeout=options.terminate_timeout
            )
        else:
            vm = vms.get(client, vm_id)
        result["finalState"] = vm.get("state")
        say(f"smoke: {vm_id} {result['finalState']}")
    except (ClientError, BotoCoreError, WaitError) as exc:
        result["cleanupError"] = str(exc)
        with contextlib.suppress(Exception):
            result["finalState"] = vms.get(client, vm_id)["state"] if vm_id else None
        if result.get("finalState") not in ("TERMINATING", "TERMINATED"):
            result["ok"] = False
