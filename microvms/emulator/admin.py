"""The ``/_emulator/`` admin API: call counters, fault injection, the clock, reset and a state dump.

Every answer is JSON and every refusal comes in the control plane's error shape (an
``X-Amzn-Errortype`` header and a ``message`` body, see :func:`.server.error_response`): an unknown
call is a 404 ``UnknownOperationException``, a body that is not a JSON object a 400
``SerializationException``, a setting of the wrong type, out of range or unknown a 400
``ValidationException`` whose message names the field and the allowed values. Nothing is applied
unless the whole body is valid; the bounds are in :mod:`.limits`.
"""

from __future__ import annotations

import json
import math

from . import wire
from .exceptions import SerializationException, ValidationException
from .limits import (
    MAX_ADVANCE_SECONDS,
    MAX_FAILED_BUILDS,
    MAX_LATENCY_MS,
    MAX_QUOTA_MIB,
    MAX_REASON_CHARS,
)
from .models import EmulatorState

FAULT_KEYS = ("throttleRate", "failNextBuilds", "latencyMs", "memoryQuotaMiB")


def _number(body: dict, key: str, low: int, high: int, unit: str = "") -> float:
    value = body[key]
    allowed = f"{key} must be a number from {low} to {high}{unit}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationException(f"{allowed}, got {_shown(value)}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValidationException(f"{allowed}, got {_shown(value)}")
    return float(value)


def _shown(value) -> str:
    """A short JSON-ish rendering of a refused value (never the whole of a huge one)."""
    if isinstance(value, str):
        return repr(wire.excerpt(value))
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float):
        return wire.excerpt(str(value))
    return "an array" if isinstance(value, list) else "an object"


def _refuse_unknown(body: dict, allowed: tuple[str, ...], call: str) -> None:
    unknown = sorted(key for key in body if key not in allowed)
    if unknown:
        names = ", ".join(repr(wire.excerpt(key)) for key in unknown[:5])
        accepted = ", ".join(allowed) if allowed else "no settings (send {} or no body)"
        raise ValidationException(f"unknown {call} setting {names}; accepted: {accepted}")


def validate_faults(body: dict) -> dict:
    """Check a ``POST /_emulator/faults`` body; return the settings it sets (by JSON name).

    Also used for the constructor's and the CLI's start-up faults, so all three refuse the same.
    """
    _refuse_unknown(body, FAULT_KEYS, "faults")
    settings: dict = {}
    if "throttleRate" in body:
        settings["throttleRate"] = _number(body, "throttleRate", 0, 1)
    if "latencyMs" in body:
        settings["latencyMs"] = _number(body, "latencyMs", 0, MAX_LATENCY_MS, " (milliseconds)")
    if "failNextBuilds" in body:
        reasons = body["failNextBuilds"]
        if (
            not isinstance(reasons, list)
            or len(reasons) > MAX_FAILED_BUILDS
            or not all(isinstance(r, str) and 0 < len(r) <= MAX_REASON_CHARS for r in reasons)
        ):
            raise ValidationException(
                f"failNextBuilds must be a list of at most {MAX_FAILED_BUILDS} stateReason strings "
                f"of 1 to {MAX_REASON_CHARS} characters, got {_shown(reasons)}"
            )
        settings["failNextBuilds"] = list(reasons)
    if "memoryQuotaMiB" in body:
        quota = body["memoryQuotaMiB"]
        if quota is not None and (
            isinstance(quota, bool) or not isinstance(quota, int) or not 0 <= quota <= MAX_QUOTA_MIB
        ):
            raise ValidationException(
                f"memoryQuotaMiB must be null or an integer from 0 to {MAX_QUOTA_MIB}, "
                f"got {_shown(quota)}"
            )
        settings["memoryQuotaMiB"] = quota
    return settings


def apply_faults(state: EmulatorState, settings: dict) -> None:
    """Apply settings returned by :func:`validate_faults` (under the state lock)."""
    faults = state.faults
    with state.lock:
        if "throttleRate" in settings:
            faults.throttle_rate = settings["throttleRate"]
        if "latencyMs" in settings:
            faults.latency_ms = settings["latencyMs"]
        if "failNextBuilds" in settings:
            faults.fail_next_builds.clear()
            faults.fail_next_builds.extend(settings["failNextBuilds"])
        if "memoryQuotaMiB" in settings:
            state.settings.memory_quota_mib = settings["memoryQuotaMiB"]


def parse_body(data: bytes) -> dict:
    """An admin body: empty means ``{}``; otherwise a JSON object (else ``SerializationException``)."""
    if not data.strip():
        return {}
    try:
        body = wire.loads(data)
    except ValueError as exc:
        raise SerializationException(f"admin body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise SerializationException("admin body must be a JSON object")
    return body


class AdminApi:
    """Handlers of ``urls.admin_paths``; each takes the parsed body and returns a JSON value."""

    def __init__(self, state: EmulatorState):
        self.state = state

    def _faults(self) -> dict:
        return {
            **self.state.faults.as_dict(),
            "memoryQuotaMiB": self.state.settings.memory_quota_mib,
        }

    def admin_calls(self, body: dict):
        _refuse_unknown(body, (), "calls")
        with self.state.lock:
            return dict(self.state.calls)

    def admin_calls_reset(self, body: dict):
        _refuse_unknown(body, (), "calls/reset")
        with self.state.lock:
            self.state.calls.clear()
        return {}

    def admin_faults_get(self, body: dict):
        _refuse_unknown(body, (), "faults")
        return self._faults()

    def admin_faults(self, body: dict):
        apply_faults(self.state, validate_faults(body))
        return self._faults()

    def admin_clock_advance(self, body: dict):
        _refuse_unknown(body, ("seconds",), "clock/advance")
        seconds = (
            _number(body, "seconds", 0, MAX_ADVANCE_SECONDS, " (seconds)")
            if "seconds" in body
            else 0.0
        )
        return {"now": self.state.clock.advance(seconds)}

    def admin_clock(self, body: dict):
        _refuse_unknown(body, (), "clock")
        return {"now": self.state.clock.now()}

    def admin_reset(self, body: dict):
        _refuse_unknown(body, (), "reset")
        self.state.reset()
        return {}

    def admin_health(self, body: dict):
        _refuse_unknown(body, (), "health")
        return {"ok": True}

    def admin_state(self, body: dict):
        _refuse_unknown(body, (), "state")
        with self.state.lock:
            self.state.tick()
            dump = {}
            for region, backend in self.state.backends.items():
                dump[region] = {
                    "images": {
                        name: {
                            "state": image.state,
                            "versions": {k: v.state for k, v in image.versions.items()},
                        }
                        for name, image in backend.images.items()
                    },
                    "microvms": {vm_id: vm.state for vm_id, vm in backend.vms.items()},
                }
        return dump
