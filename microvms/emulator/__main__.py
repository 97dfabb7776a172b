"""``python -m microvms.emulator``: serve the emulator until killed.

Prints exactly one line, ``listening on http://HOST:PORT``, once the socket is bound.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys

from .limits import MAX_LATENCY_MS


def _upstream(text: str) -> tuple[int, str]:
    port, sep, url = text.partition("=")
    if not sep or not port.isdigit() or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"--upstream wants GUESTPORT=URL (e.g. 8080=http://127.0.0.1:8000), got {text!r}"
        )
    return int(port), url


def _bounded(flag: str, low: float, high: float):
    """An argparse type: a finite number from ``low`` to ``high`` (the admin API's limits)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(
                f"{flag} must be a number from {low:g} to {high:g}, got {text}"
            )
        return value

    return parse


_rate = _bounded("--throttle-rate", 0, 1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m microvms.emulator",
        description="Local emulator of the AWS Lambda MicroVMs API (lambda-microvms 2025-09-09).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--account-id", default="123456789012", help="emulated account id")
    parser.add_argument("--build-seconds", type=float, default=1.0, help="image build duration")
    parser.add_argument(
        "--run-seconds", type=float, default=0.5, help="PENDING time before RUNNING"
    )
    parser.add_argument(
        "--transition-seconds", type=float, default=0.2, help="suspend/resume/terminate duration"
    )
    parser.add_argument(
        "--delete-seconds", type=float, default=0.5, help="asynchronous delete time"
    )
    parser.add_argument(
        "--connector-seconds", type=float, default=0.5, help="network connector PENDING time"
    )
    parser.add_argument(
        "--upstream",
        type=_upstream,
        action="append",
        default=[],
        metavar="GUESTPORT=URL",
        help="send endpoint traffic (and hooks) for a guest port to a local URL; repeatable",
    )
    parser.add_argument("--s3-endpoint", help="S3 endpoint for artifact checks (e.g. moto server)")
    parser.add_argument("--iam-endpoint", help="IAM endpoint for build-role trust checks")
    parser.add_argument(
        "--throttle-rate", type=_rate, default=0.0, help="fraction of calls throttled"
    )
    parser.add_argument(
        "--latency-ms",
        type=_bounded("--latency-ms", 0, MAX_LATENCY_MS),
        default=0.0,
        help=f"added latency per API call, 0 to {MAX_LATENCY_MS} ms",
    )
    parser.add_argument(
        "--fail-next-build",
        action="append",
        default=[],
        metavar="STATE_REASON",
        help="fail the next build with this stateReason (e.g. S3_NO_SUCH_KEY); repeatable",
    )
    parser.add_argument(
        "--memory-quota-mib",
        type=int,
        default=None,
        help="account memory ceiling for RunMicrovm (402 ServiceQuotaExceededException above it)",
    )
    parser.add_argument("--log-requests", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .server import EmulatorServer  # after parsing: bad flags and --help answer at once

    server = EmulatorServer(
        host=args.host,
        port=args.port,
        account_id=args.account_id,
        build_seconds=args.build_seconds,
        run_seconds=args.run_seconds,
        upstreams=dict(args.upstream),
        s3_endpoint=args.s3_endpoint,
        iam_endpoint=args.iam_endpoint,
        transition_seconds=args.transition_seconds,
        delete_seconds=args.delete_seconds,
        connector_seconds=args.connector_seconds,
        memory_quota_mib=args.memory_quota_mib,
        throttle_rate=args.throttle_rate,
        latency_ms=args.latency_ms,
        fail_next_builds=args.fail_next_build,
        log_requests=args.log_requests,
        start=False,
    )

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    print(f"listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
