"""``make sandbox``: a MicroVM image to run, probe and shell into, locally, in one command.

No Pulumi CLI and no AWS account. ``python -m devkit.sandbox up``:

1. starts, each under the local stack's watchdog (``devkit.services``), on loopback ports:
   moto (S3, IAM, STS, CloudWatch Logs; 4566 when free), the real image app (``image/app``:
   the app on guest port 8080 and its lifecycle hooks on 9000), a shell server for guest port 8022
   (``devkit.sandbox_shell``) and the ``lambda-microvms`` emulator (4567 when free) with those
   three as the guest's upstreams;
2. builds an image from ``image/`` through the project's own provider code path
   (``devkit.sandbox_image``);
3. prints what to paste: ``eval "$(make -s sandbox-env)"``.

Running it again reuses a healthy sandbox (and its image). A failed start stops everything it
started. ``make down`` (or ``python -m devkit.sandbox down``) stops it all; so does the watchdog
after ``LOCAL_STACK_LIFETIME_SECONDS`` (default 7200 s).

    python -m devkit.sandbox up       # start (or reuse) and build; prints the lines to paste
    python -m devkit.sandbox env      # the export lines (for eval); exit 1 when not running
    python -m devkit.sandbox status   # each service and the image
    python -m devkit.sandbox down     # stop everything
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from devkit import services

REPO = services.REPO
SANDBOX_DIR = services.SANDBOX_DIR
RECORD_FILE = SANDBOX_DIR / "sandbox.json"
WORKSPACE = SANDBOX_DIR / "workspace"
SERVICES = ("moto", "app", "shell", "emulator")  # the emulator's upstreams start first
EXIT_FAILED = 4
EXIT_NOT_RUNNING = 1
#: Fake credentials: the emulators accept any; nothing here may ever reach AWS.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: Shell settings that would beat the fake credentials in boto3's lookup order.
UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE")


class SandboxError(RuntimeError):
    """The sandbox could not start; the message says why."""


@dataclass
class Record:
    """What ``up`` started and built (``.pulumi-local/sandbox/sandbox.json``)."""

    ports: dict
    region: str
    image_arn: str
    image_name: str
    image_version: str
    execution_role_arn: str
    build_role_arn: str
    artifact_uri: str
    started_at: float

    @property
    def port_set(self) -> services.Ports:
        return services.Ports(**self.ports)


def read_record(path: Path = RECORD_FILE) -> Record | None:
    try:
        data = json.loads(path.read_text())
        return Record(**{k: data[k] for k in Record.__dataclass_fields__})
    except (OSError, ValueError, TypeError, KeyError):
        return None


# --------------------------------------------------------------------------- ports


def choose_ports(env: dict[str, str], is_free=None) -> services.Ports:
    """Each service's preferred port (``LOCAL_*_PORT``, else the defaults 4566, 4567, 18080,
    19000, 18022) when it is free, else a free loopback port (:func:`devkit.ports.free_port`); all distinct."""
    is_free = is_free or (lambda port: not services.port_open(port))
    chosen: dict[str, int] = {}
    for name, var in services.PORT_ENV.items():
        raw = env.get(var, "")
        if raw and (not raw.isdigit() or not 1 <= int(raw) <= 65535):
            raise SandboxError(f"{var} must be a TCP port from 1 to 65535, got {raw!r}")
        port = int(raw) if raw else services.DEFAULT_PORTS[name]
        while port in chosen.values() or not is_free(port):
            port = services.free_port()
        chosen[name] = port
    return services.Ports(**chosen)


# --------------------------------------------------------------------------- the paste lines


def env_vars(record: Record) -> dict[str, str]:
    """The variables the CLI (and any boto3 code) needs to work against the sandbox."""
    ports = record.port_set
    return {
        "AWS_ENDPOINT_URL_LAMBDA_MICROVMS": ports.emulator_url,
        "MICROVMS_PROXY_URL": ports.emulator_url,
        "AWS_ENDPOINT_URL_S3": ports.moto_url,
        "AWS_ENDPOINT_URL_IAM": ports.moto_url,
        "AWS_ENDPOINT_URL_STS": ports.moto_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": ports.moto_url,
        # botocore reads only AWS_DEFAULT_REGION; AWS_REGION is what the AWS CLI v2 and SDKs read.
        "AWS_REGION": record.region,
        "AWS_DEFAULT_REGION": record.region,
        **FAKE_CREDENTIALS,
        "MICROVMS_IMAGE_ARN": record.image_arn,
        "MICROVMS_EXECUTION_ROLE_ARN": record.execution_role_arn,
    }


def env_lines(record: Record) -> list[str]:
    """Shell lines for ``eval``: exports, the unsets, and ``.venv/bin`` first on PATH."""
    values = env_vars(record)
    q = shlex.quote
    groups = (
        ("AWS_ENDPOINT_URL_LAMBDA_MICROVMS", "MICROVMS_PROXY_URL"),
        ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS"),
        ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_REGION", "AWS_DEFAULT_REGION"),
        tuple(FAKE_CREDENTIALS),
        ("MICROVMS_IMAGE_ARN", "MICROVMS_EXECUTION_ROLE_ARN"),
    )
    lines = ["# lambda-microvms sandbox: the CLI talks to local emulators with fake credentials"]
    lines += ["export " + " ".join(f"{k}={q(values[k])}" for k in group) for group in groups]
    lines.append("unset " + " ".join(UNSET))
    lines.append(f'export PATH={q(str(REPO / ".venv" / "bin"))}:"$PATH"')
    return lines


# --------------------------------------------------------------------------- up / down / status


def _image_ready(record: Record) -> bool:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "lambda-microvms",
        region_name=record.region,
        endpoint_url=record.port_set.emulator_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        image = client.get_microvm_image(imageIdentifier=record.image_arn)
    except (ClientError, BotoCoreError):
        return False
    return image.get("state") in ("CREATED", "UPDATED")


def running(record: Record | None) -> bool:
    """Every service alive and answering, and the recorded image built."""
    if record is None:
        return False
    ports = record.port_set
    for name in SERVICES:
        svc = services.read_service(SANDBOX_DIR, name)
        if not (svc and services.service_alive(svc) and services.healthy(name, ports)):
            return False
    return _image_ready(record)


def _service_env(base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("AWS_")}
    env["SANDBOX_SHELL_WORKDIR"] = str(WORKSPACE)
    return env


def stop() -> list[str]:
    stopped = services.stop_services(SANDBOX_DIR)
    RECORD_FILE.unlink(missing_ok=True)
    return stopped


def _use_fake_aws(environ) -> None:
    """This process talks to moto and the emulator only: fake credentials, no profile."""
    for name in UNSET:
        environ.pop(name, None)
    environ.update(services.fake_aws_env())


def _say(text: str) -> None:
    print(text, flush=True)


def up(*, environ=os.environ, say=_say) -> Record:
    """Start (or reuse) the sandbox and its image; stop everything if any step fails."""
    record = read_record()
    if running(record):
        say(f"The sandbox is already running (image {record.image_name}); reusing it.")
        return record
    stop()  # whatever a crashed or half-stopped earlier start left behind
    _use_fake_aws(environ)
    lifetime = float(environ.get("LOCAL_STACK_LIFETIME_SECONDS", services.DEFAULT_LIFETIME))
    ports = choose_ports(dict(environ))
    base = _service_env(dict(environ))
    started = time.monotonic()
    try:
        for name in SERVICES:
            t0 = time.monotonic()
            svc = services.start_services(
                ports, state_dir=SANDBOX_DIR, names=(name,), env=base, lifetime=lifetime
            )[name]
            say(f"{name:10s} {svc.url}  ready in {time.monotonic() - t0:.1f} s  (log {svc.log})")

        from devkit import sandbox_image

        settings = sandbox_image.load_settings()
        built = sandbox_image.build_image(
            settings, moto_url=ports.moto_url, emulator_url=ports.emulator_url, progress=say
        )
        say(
            f"image      {built.image_arn} version {built.image_version} {built.state} "
            f"({time.monotonic() - started:.1f} s since start)"
        )
        record = Record(
            ports=asdict(ports),
            region=settings.region,
            image_arn=built.image_arn,
            image_name=built.image_name,
            image_version=built.image_version,
            execution_role_arn=built.execution_role_arn,
            build_role_arn=built.build_role_arn,
            artifact_uri=built.artifact_uri,
            started_at=time.time(),
        )
        RECORD_FILE.parent.mkdir(parents=True, exist_ok=True)
        RECORD_FILE.write_text(json.dumps(asdict(record), indent=2))
        return record
    except BaseException:
        stopped = stop()
        say(f"Start failed; stopped {', '.join(stopped) or 'nothing'} (nothing is left running).")
        raise


NEXT_STEPS = """\
Paste this into your shell (it sets the endpoints, fake credentials and PATH for this shell):

    eval "$(make -s sandbox-env)"

Then:

    microvms ls
    microvms run --ingress HTTP_INGRESS,SHELL_INGRESS --wait     # prints the microvmId
    microvms probe <microvm-id> --path /health
    microvms shell <microvm-id>                                  # Ctrl-] quits
    microvms smoke --path /health
    make down                                                    # stops everything"""


def cmd_up(_args) -> int:
    try:
        up()
    except (SandboxError, services.LocalStackError, RuntimeError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    print()
    print(NEXT_STEPS)
    return 0


def cmd_env(_args) -> int:
    record = read_record()
    if not running(record):
        print("sandbox: not running; start it with `make sandbox`", file=sys.stderr)
        return EXIT_NOT_RUNNING
    print("\n".join(env_lines(record)))
    return 0


def cmd_status(_args) -> int:
    record = read_record()
    ports = record.port_set if record else None
    for name in SERVICES:
        svc = services.read_service(SANDBOX_DIR, name)
        alive = bool(svc and services.service_alive(svc))
        good = alive and ports is not None and services.healthy(name, ports)
        state = "healthy" if good else "running, not answering" if alive else "stopped"
        where = f"  {svc.url}  pid {svc.pid}" if alive and svc else ""
        print(f"{name:10s} {state}{where}")
    ok = running(record)
    print(f"image      {record.image_arn if ok and record else 'none'}")
    return 0 if ok else EXIT_NOT_RUNNING


def cmd_down(_args) -> int:
    stopped = stop()
    print(f"Sandbox stopped: {', '.join(stopped) or 'nothing was running'}.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.sandbox", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, text in (
        ("up", cmd_up, "start (or reuse) the sandbox and build its image"),
        ("env", cmd_env, "print the export lines for eval"),
        ("status", cmd_status, "what is running and the image"),
        ("down", cmd_down, "stop every sandbox service"),
    ):
        sub.add_parser(name, help=text).set_defaults(fn=fn)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
