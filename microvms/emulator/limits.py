"""Bounds of the emulator's injectable faults, shared by the admin API, the constructor and the CLI.

Kept free of imports so ``python -m microvms.emulator --help`` stays instant. The limits keep an
injected fault a fault, not a hang: a latency above :data:`MAX_LATENCY_MS` outlasts botocore's default
60-second read timeout, and a clock jump above :data:`MAX_ADVANCE_SECONDS` per call would soon carry
the emulated dates out of any range a client can parse.
"""

MAX_LATENCY_MS = 60_000
MAX_ADVANCE_SECONDS = 366 * 24 * 3600
MAX_FAILED_BUILDS = 100
MAX_REASON_CHARS = 1024
MAX_QUOTA_MIB = 2**31 - 1
