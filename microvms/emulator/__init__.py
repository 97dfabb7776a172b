"""Local emulator of the AWS Lambda MicroVMs API (``lambda-microvms`` 2025-09-09).

Driven by botocore's service model and held to the live recordings; see ``docs/emulator.md``.
Run it with ``python -m microvms.emulator --port 0`` or in-process::

    from microvms.emulator import EmulatorServer
    with EmulatorServer(build_seconds=0.3) as emu:
        ...  # boto3.client("lambda-microvms", endpoint_url=emu.url)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .clock import Clock, FrozenClock

if TYPE_CHECKING:
    from .server import EmulatorServer

__all__ = ["Clock", "EmulatorServer", "FrozenClock"]


def __getattr__(name: str):
    # Imported on first use: ``python -m microvms.emulator --help`` (or a bad flag) answers without
    # loading botocore's models and werkzeug first.
    if name == "EmulatorServer":
        from .server import EmulatorServer

        return EmulatorServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
