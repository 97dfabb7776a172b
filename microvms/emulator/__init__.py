"""Local emulator of the AWS Lambda MicroVMs API (``lambda-microvms`` 2025-09-09).

Driven by botocore's service model and held to the live recordings; see ``docs/emulator.md``.
Run it with ``python -m microvms.emulator --port 0`` or in-process::

    from microvms.emulator import EmulatorServer
    with EmulatorServer(build_seconds=0.3) as emu:
        ...  # boto3.client("lambda-microvms", endpoint_url=emu.url)
"""

from .clock import Clock, FrozenClock
from .server import EmulatorServer

__all__ = ["Clock", "EmulatorServer", "FrozenClock"]
