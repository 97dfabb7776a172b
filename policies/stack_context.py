"""The stack the pack is judging: from the engine's ``ConfigureStack`` call, else the environment.

How the stack's config reaches a Python pack depends on how the engine starts it:

- through a Python language host's ``RunPlugin`` (what every Pulumi CLI release does, since it ships
  ``pulumi-language-python``), the process environment carries nothing of the stack; the engine
  sends ``AnalyzerStackConfigureRequest{stack, project, organization, config, config_secret_keys,
  dry_run}``
  over ``ConfigureStack`` (pkg/resource/plugin/analyzer_plugin.go). pulumi_policy 1.21's servicer
  keeps only ``tags`` from it, so this module wraps ``ConfigureStack`` to keep the rest;
- through the ``pulumi-analyzer-policy-python`` shim (no language host installed), the engine puts
  ``PULUMI_CONFIG``/``PULUMI_STACK``/``PULUMI_PROJECT`` in the environment.

Found by running the pack under the real engine: without this, every stack was judged "environment
cannot be determined" and ``microvm-regions`` failed closed.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

#: What the engine's ConfigureStack said (empty until it calls).
CONFIGURED: dict[str, Any] = {}


def stack_config() -> dict[str, str]:
    """The stack's config map (``namespace:key`` → string), as the engine sent it."""
    if "config" in CONFIGURED:
        return dict(CONFIGURED["config"])
    raw = os.environ.get("PULUMI_CONFIG")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def stack_name() -> str | None:
    return CONFIGURED.get("stack") or os.environ.get("PULUMI_STACK") or None


def _install(sdk: Any = None) -> bool:
    """Wrap the SDK servicer's ConfigureStack to record the request (idempotent)."""
    if sdk is None:
        try:
            import pulumi_policy.policy as sdk
        except ImportError:  # pragma: no cover
            return False
    servicer = getattr(sdk, "_PolicyAnalyzerServicer", None)
    original = getattr(servicer, "ConfigureStack", None)
    if servicer is None or original is None or getattr(original, "_records_stack", False):
        return False

    @functools.wraps(original)
    def configure_stack(self: Any, request: Any, context: Any) -> Any:
        CONFIGURED.update(
            stack=request.stack,
            project=request.project,
            organization=request.organization,
            dry_run=request.dry_run,
            config=dict(request.config),
            secret_keys=list(request.config_secret_keys),
        )
        return original(self, request, context)

    configure_stack._records_stack = True  # type: ignore[attr-defined]
    servicer.ConfigureStack = configure_stack
    return True


_install()
