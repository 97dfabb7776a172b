"""URL dispatch, moto style: which requests go to the control plane, the admin API or the VM proxy.

* ``Host: <uuid>.lambda-microvm.<region>.on.aws`` → the per-VM endpoint proxy (:mod:`.proxy`);
* ``/_emulator/...`` → the admin API (calls, faults, clock, reset);
* everything else → the ``lambda-microvms`` control plane (and the ``lambda-core`` network
  connectors), routed by the botocore models' ``requestUri``/``method`` (:func:`.wire.match_any`).
"""

from __future__ import annotations

from . import wire

ADMIN_PREFIX = "/_emulator/"

# Admin API: (method, path) → handler name on :class:`.server.EmulatorApp`.
admin_paths = {
    ("GET", "/_emulator/calls"): "admin_calls",
    ("POST", "/_emulator/calls/reset"): "admin_calls_reset",
    ("GET", "/_emulator/faults"): "admin_faults_get",
    ("POST", "/_emulator/faults"): "admin_faults",
    ("POST", "/_emulator/clock/advance"): "admin_clock_advance",
    ("GET", "/_emulator/clock"): "admin_clock",
    ("POST", "/_emulator/reset"): "admin_reset",
    ("GET", "/_emulator/health"): "admin_health",
    ("GET", "/_emulator/state"): "admin_state",
}


def control_plane_route(method: str, raw_path: str):
    """``(service, operation, labels)`` for a control-plane request, or ``None``.

    ``lambda-microvms`` routes first, then the ``lambda-core`` network-connector routes.
    """
    return wire.match_any(method, raw_path)
