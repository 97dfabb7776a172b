"""Typer wiring for ``python -m microvms`` (console script ``microvms``). Logic lives elsewhere.

Every option can also come from an environment variable (``MICROVMS_*``), so the Pulumi command
passes inputs through its environment rather than argv.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Annotated

import typer
from botocore.exceptions import BotoCoreError, ClientError

from microvms import endpoint as _endpoint
from microvms import output, vms
from microvms.client import make_client
from microvms.ratelimit import limit_run_microvm
from microvms.smoke import Interrupted, SignalGuard, SmokeOptions, run_smoke

app = typer.Typer(
    name="microvms",
    help="Operate AWS Lambda MicroVMs: run, inspect, probe, smoke-test, clean up, shell in.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_INPUT = 2


@dataclass
class Globals:
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    output: str | None = None


class CliExit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


# ------------------------------------------------------------------------------------ plumbing

OutputOpt = Annotated[
    str | None,
    typer.Option("--output", "-o", help="json or table (default: table on a terminal, else json)."),
]
IdArg = Annotated[
    str, typer.Argument(help="MicroVM id (microvm-<uuid>).", envvar="MICROVMS_MICROVM_ID")
]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", help="Seconds to wait.", envvar="MICROVMS_TIMEOUT_SECONDS"),
]


def _globals(ctx: typer.Context) -> Globals:
    return ctx.obj if isinstance(ctx.obj, Globals) else Globals()


def _fmt(ctx: typer.Context, local: str | None) -> str:
    return output.choose_format(local or _globals(ctx).output)


def _client(ctx: typer.Context):
    g = _globals(ctx)
    client = make_client(
        region=g.region,
        endpoint_url=g.endpoint_url,
        profile=g.profile,
        retry_mode=os.environ.get("MICROVMS_RETRY_MODE", "standard"),
        max_attempts=_int_env("MICROVMS_MAX_ATTEMPTS", 5),
    )
    return limit_run_microvm(client)


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
        if value < 1:
            raise ValueError
        return value
    except ValueError:
        raise vms.InputError(name, f"must be a positive integer, got {raw!r}") from None


@contextlib.contextmanager
def _errors():
    """Turn every expected failure into one readable line on stderr and a non-zero exit."""
    try:
        yield
    except vms.InputError as exc:
        output.print_error(exc.field, exc.message)
        raise CliExit(EXIT_INPUT) from None
    except ClientError as exc:
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "request")
        output.print_error(f"{op} failed ({err.get('Code', 'Error')})", err.get("Message") or "")
        raise CliExit(1) from None
    except vms.WaitError as exc:
        output.print_error("wait failed", str(exc))
        raise CliExit(1) from None
    except BotoCoreError as exc:
        output.print_error("AWS request failed", str(exc))
        raise CliExit(1) from None
    except ValueError as exc:
        output.print_error("invalid input", str(exc))
        raise CliExit(EXIT_INPUT) from None
    except (OSError, ConnectionError) as exc:
        output.print_error("connection failed", f"{type(exc).__name__}: {exc}")
        raise CliExit(1) from None


def _ids(values: list[str]) -> list[str]:
    return list(vms.split_list(values))


def _image_name(arn: str | None) -> str | None:
    return arn.split(":microvm-image:", 1)[-1] if arn else arn


# ------------------------------------------------------------------------------------ callback


@app.callback()
def _main(
    ctx: typer.Context,
    region: Annotated[
        str | None, typer.Option(help="AWS region (else AWS_REGION).", envvar="MICROVMS_REGION")
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            help="API endpoint override (else AWS_ENDPOINT_URL_LAMBDA_MICROVMS / AWS_ENDPOINT_URL).",
            envvar="MICROVMS_ENDPOINT_URL",
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="AWS profile name.", envvar="MICROVMS_PROFILE")
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option("--output", "-o", help="json or table.", envvar="MICROVMS_OUTPUT"),
    ] = None,
) -> None:
    ctx.obj = Globals(region, endpoint_url, profile, output_format)


# ------------------------------------------------------------------------------------ run & co


def _run_spec(
    image_arn,
    image_version,
    execution_role_arn,
    ingress,
    egress,
    max_idle_seconds,
    suspended_seconds,
    auto_resume,
    max_duration,
    payload_file,
    client_token,
) -> vms.RunSpec:
    return vms.RunSpec(
        image_arn=image_arn or "",
        image_version=image_version or None,
        execution_role_arn=execution_role_arn or None,
        idle_policy=vms.idle_policy_from(max_idle_seconds, suspended_seconds, auto_resume),
        ingress=vms.split_list(ingress),
        egress=vms.split_list(egress),
        max_duration_seconds=max_duration,
        payload=vms.read_payload(payload_file),
        client_token=client_token or None,
    )


ImageOpt = Annotated[
    str | None,
    typer.Option("--image-arn", help="MicroVM image ARN.", envvar="MICROVMS_IMAGE_ARN"),
]
VersionOpt = Annotated[
    str | None,
    typer.Option(
        "--image-version",
        help="Image version (default: latest active).",
        envvar="MICROVMS_IMAGE_VERSION",
    ),
]
RoleOpt = Annotated[
    str | None,
    typer.Option(
        "--execution-role-arn", help="Execution role ARN.", envvar="MICROVMS_EXECUTION_ROLE_ARN"
    ),
]
IngressOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ingress",
        help="Ingress connector ARN or managed name (SHELL_INGRESS, HTTP_INGRESS, ...); repeat or comma-separate.",
        envvar="MICROVMS_INGRESS",
    ),
]
EgressOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--egress",
        help="Egress connector ARN or managed name (INTERNET_EGRESS); repeat or comma-separate.",
        envvar="MICROVMS_EGRESS",
    ),
]
MaxIdleOpt = Annotated[
    int | None,
    typer.Option(
        help="Idle policy: seconds without traffic before suspend (>= 60).",
        envvar="MICROVMS_MAX_IDLE_SECONDS",
    ),
]
SuspendedOpt = Annotated[
    int | None,
    typer.Option(
        help="Idle policy: seconds suspended before terminate (>= 0).",
        envvar="MICROVMS_SUSPENDED_SECONDS",
    ),
]
AutoResumeOpt = Annotated[
    bool | None,
    typer.Option(
        "--auto-resume/--no-auto-resume",
        help="Idle policy: resume on traffic.",
        envvar="MICROVMS_AUTO_RESUME",
    ),
]
MaxDurationOpt = Annotated[
    int | None,
    typer.Option(
        "--max-duration",
        help="maximumDurationInSeconds (1..28800).",
        envvar="MICROVMS_MAX_DURATION_SECONDS",
    ),
]
PayloadOpt = Annotated[
    str | None,
    typer.Option(
        "--payload-file",
        help="Run-hook payload from a file, or - for stdin (<= 4096 bytes). Never from argv.",
        envvar="MICROVMS_PAYLOAD_FILE",
    ),
]
ClientTokenOpt = Annotated[
    str | None,
    typer.Option(help="Idempotency token for RunMicrovm.", envvar="MICROVMS_CLIENT_TOKEN"),
]


@app.command()
def run(
    ctx: typer.Context,
    image_arn: ImageOpt = None,
    image_version: VersionOpt = None,
    execution_role_arn: RoleOpt = None,
    ingress: IngressOpt = None,
    egress: EgressOpt = None,
    max_idle_seconds: MaxIdleOpt = None,
    suspended_seconds: SuspendedOpt = None,
    auto_resume: AutoResumeOpt = None,
    max_duration: MaxDurationOpt = None,
    payload_file: PayloadOpt = None,
    client_token: ClientTokenOpt = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until RUNNING.", envvar="MICROVMS_WAIT")
    ] = False,
    terminate_on_failure: Annotated[
        bool,
        typer.Option(
            "--terminate-on-failure",
            help="With --wait: terminate the new VM if the wait fails or is interrupted "
            "(how SessionRun's create avoids leaving a VM that no state records).",
            envvar="MICROVMS_TERMINATE_ON_FAILURE",
        ),
    ] = False,
    timeout: TimeoutOpt = 300.0,
    output_format: OutputOpt = None,
) -> None:
    """RunMicrovm; prints microvmId, endpoint, state and timings."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        spec = _run_spec(
            image_arn, image_version, execution_role_arn, ingress, egress, max_idle_seconds,
            suspended_seconds, auto_resume, max_duration, payload_file, client_token,
        )  # fmt: skip
        client = _client(ctx)
        vms.build_run_request(spec, client.meta.region_name)  # validate before any call
        started = time.monotonic()
        vm = vms.run(client, spec)
        timings = {"runSeconds": round(time.monotonic() - started, 3)}
        if wait:
            try:
                vm = vms.wait_for_state(client, vm["microvmId"], ("RUNNING",), timeout=timeout)
            except BaseException as exc:  # incl. Ctrl-C: the VM must not outlive a failed create
                if not terminate_on_failure:
                    raise
                note = _terminate_after_failed_wait(client, vm["microvmId"])
                if isinstance(exc, vms.WaitError):
                    raise vms.WaitError(f"{exc}; {note}", exc.microvm) from None
                raise
            timings["runningAfterSeconds"] = round(time.monotonic() - started, 3)
        output.emit({**vms.summarize(vm), "timings": timings}, fmt)


def _terminate_after_failed_wait(client, microvm_id: str) -> str:
    """Best effort (the wait's own error is what gets reported); returns a note for it."""
    try:
        client.terminate_microvm(microvmIdentifier=microvm_id)
        return f"terminated {microvm_id} (--terminate-on-failure)"
    except (ClientError, BotoCoreError) as exc:
        return f"could not terminate {microvm_id}: {exc}"


@app.command()
def wait(
    ctx: typer.Context,
    microvm_id: IdArg,
    state: Annotated[str, typer.Option(help="Target state.")] = "RUNNING",
    timeout: TimeoutOpt = 300.0,
    output_format: OutputOpt = None,
) -> None:
    """Wait (with backoff) until a MicroVM reaches a state."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        target = vms.check_state(state)
        started = time.monotonic()
        vm = vms.wait_for_state(_client(ctx), microvm_id, (target,), timeout=timeout)
        output.emit(
            {**vms.summarize(vm), "waitedSeconds": round(time.monotonic() - started, 3)}, fmt
        )


@app.command()
def get(ctx: typer.Context, microvm_id: IdArg, output_format: OutputOpt = None) -> None:
    """GetMicrovm."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        output.emit(vms.summarize(vms.get(_client(ctx), microvm_id)), fmt)


@app.command("ls")
def ls_(
    ctx: typer.Context,
    image: Annotated[
        str | None,
        typer.Option("--image", help="Filter by image ARN.", envvar="MICROVMS_IMAGE_ARN"),
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Filter by image version (needs --image).")
    ] = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Keep only these states; repeat.")
    ] = None,
    older_than: Annotated[
        str | None, typer.Option(help="Only VMs started longer ago than this (90s, 15m, 2h, 1d).")
    ] = None,
    page_size: Annotated[int, typer.Option(help="maxResults per ListMicrovms page (1..50).")] = 50,
    output_format: OutputOpt = None,
) -> None:
    """ListMicrovms (every page): id, image, version, state, age."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        states = [vms.check_state(s) for s in vms.split_list(state)]
        age = vms.parse_duration(older_than)
        if not 1 <= page_size <= 50:
            raise vms.InputError("--page-size", f"must be 1..50, got {page_size}")
        items = vms.list_microvms(
            _client(ctx), image_arn=image, image_version=version, states=states,
            older_than=age, page_size=page_size,
        )  # fmt: skip
        if fmt == "json":
            output.emit(items, fmt)
        else:
            rows = [
                {
                    "id": i["microvmId"],
                    "image": _image_name(i.get("imageArn")),
                    "version": i.get("imageVersion"),
                    "state": i.get("state"),
                    "age": _human_age(i.get("ageSeconds")),
                }
                for i in items
            ]
            output.emit(rows, fmt, columns=["id", "image", "version", "state", "age"])


def _human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait for the resulting state.")]


@app.command()
def suspend(
    ctx: typer.Context, microvm_id: IdArg, wait: WaitOpt = False, timeout: TimeoutOpt = 120.0,
    output_format: OutputOpt = None,
) -> None:  # fmt: skip
    """SuspendMicrovm (``--wait`` until SUSPENDED)."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        output.emit(
            vms.summarize(vms.suspend(_client(ctx), microvm_id, wait=wait, timeout=timeout)), fmt
        )


@app.command()
def resume(
    ctx: typer.Context, microvm_id: IdArg, wait: WaitOpt = False, timeout: TimeoutOpt = 120.0,
    output_format: OutputOpt = None,
) -> None:  # fmt: skip
    """ResumeMicrovm (``--wait`` until RUNNING)."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        output.emit(
            vms.summarize(vms.resume(_client(ctx), microvm_id, wait=wait, timeout=timeout)), fmt
        )


@app.command()
def terminate(
    ctx: typer.Context,
    microvm_ids: Annotated[
        list[str] | None,
        typer.Argument(help="MicroVM ids.", envvar="MICROVMS_MICROVM_ID", show_default=False),
    ] = None,
    from_json_env: Annotated[
        str | None,
        typer.Option(
            help="Read the id from the JSON document in this environment variable "
            "(e.g. PULUMI_COMMAND_STDOUT, the output of `microvms run`).",
        ),
    ] = None,
    wait: WaitOpt = False,
    missing_ok: Annotated[
        bool, typer.Option("--missing-ok", help="Treat an unknown id as already gone.")
    ] = False,
    timeout: TimeoutOpt = 120.0,
    output_format: OutputOpt = None,
) -> None:
    """TerminateMicrovm; idempotent (``--wait`` until TERMINATED)."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        ids = _ids(microvm_ids or [])
        if from_json_env:
            ids.append(_id_from_json_env(from_json_env))
        if not ids:
            raise vms.InputError("MICROVM_ID", "give at least one MicroVM id")
        client = _client(ctx)
        results = [_terminate_one(client, i, wait, timeout, missing_ok) for i in ids]
        output.emit(results[0] if len(results) == 1 else results, fmt)


def _terminate_one(client, microvm_id: str, wait: bool, timeout: float, missing_ok: bool) -> dict:
    try:
        return vms.summarize(vms.terminate(client, microvm_id, wait=wait, timeout=timeout))
    except ClientError as exc:
        if missing_ok and vms.error_code(exc) == "ResourceNotFoundException":
            return {"microvmId": microvm_id, "state": "NOT_FOUND"}
        raise


def _id_from_json_env(name: str) -> str:
    raw = os.environ.get(name, "")
    try:
        doc = json.loads(raw)
        value = doc["microvmId"]
        if not isinstance(value, str) or not value:
            raise TypeError
        return value
    except (ValueError, KeyError, TypeError):
        raise vms.InputError(
            "--from-json-env", f"${name} does not hold a JSON document with a microvmId"
        ) from None


# ------------------------------------------------------------------------------------ tokens & http


@app.command()
def token(
    ctx: typer.Context,
    microvm_id: IdArg,
    shell: Annotated[
        bool, typer.Option("--shell", help="Shell token (needs SHELL_INGRESS).")
    ] = False,
    minutes: Annotated[int, typer.Option(help="Expiry in minutes (1..60).")] = 5,
    port: Annotated[
        list[str] | None,
        typer.Option("--port", help="Allowed guest port or range; repeat. Default 8080."),
    ] = None,
    print_token: Annotated[
        bool, typer.Option("--print", help="Write the token itself to stdout.")
    ] = False,
    output_format: OutputOpt = None,
) -> None:
    """CreateMicrovmAuthToken / CreateMicrovmShellAuthToken. The token is shown only with --print."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        vms.check_minutes(minutes)
        ports = None if shell else vms.parse_ports(port)
        client = _client(ctx)
        if shell:
            secret = vms.create_shell_token(client, microvm_id, minutes=minutes)
        else:
            secret = vms.create_auth_token(client, microvm_id, minutes=minutes, ports=ports)
        if print_token:
            sys.stdout.write(secret.reveal() + "\n")
            sys.stdout.flush()
            return
        output.emit(
            {
                "microvmId": microvm_id,
                "kind": "shell" if shell else "auth",
                "header": "X-aws-proxy-auth",
                "expirationInMinutes": minutes,
                "allowedPorts": ports if ports else [{"port": vms.SHELL_PORT}],
                "tokenLength": len(secret),
                "printed": False,
                "hint": "add --print to write the token to stdout",
            },
            fmt,
        )


@app.command()
def probe(
    ctx: typer.Context,
    microvm_id: IdArg,
    path: Annotated[str, typer.Option(help="Request path.", envvar="MICROVMS_PROBE_PATH")] = "/",
    port: Annotated[
        int, typer.Option(help="Guest port.", envvar="MICROVMS_PROBE_PORT")
    ] = vms.DEFAULT_PORT,
    method: Annotated[str, typer.Option(help="HTTP method.")] = "GET",
    expect_status: Annotated[
        int | None,
        typer.Option(
            help="Exit 0 only on this status (default: any 2xx/3xx).",
            envvar="MICROVMS_EXPECT_STATUS",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds to keep retrying 502s.", envvar="MICROVMS_TIMEOUT_SECONDS"),
    ] = 30.0,
    output_format: OutputOpt = None,
) -> None:
    """HTTP request through the VM endpoint with a fresh token; retries 502 during restore."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        client = _client(ctx)
        vm = vms.get(client, microvm_id)
        secret = vms.create_auth_token(
            client,
            microvm_id,
            minutes=max(1, min(60, int(timeout // 60) + 1)),
            ports=[{"port": port}],
        )
        result = _endpoint.probe(
            vm["endpoint"], secret, path=path, port=port, method=method.upper(),
            expect_status=expect_status, timeout=timeout,
        )  # fmt: skip
        output.emit(
            {"microvmId": microvm_id, "endpoint": vm["endpoint"], "path": path, "port": port,
             **result.to_dict()},
            fmt,
        )  # fmt: skip
        if not result.ok:
            raise CliExit(1)


@app.command()
def smoke(
    ctx: typer.Context,
    image_arn: ImageOpt = None,
    image_version: VersionOpt = None,
    execution_role_arn: RoleOpt = None,
    ingress: IngressOpt = None,
    egress: EgressOpt = None,
    max_duration: MaxDurationOpt = None,
    path: Annotated[str, typer.Option(help="Path to probe.", envvar="MICROVMS_PROBE_PATH")] = "/",
    port: Annotated[
        int, typer.Option(help="Guest port to probe.", envvar="MICROVMS_PROBE_PORT")
    ] = vms.DEFAULT_PORT,
    expect_status: Annotated[
        int, typer.Option(help="Status the probe must answer.", envvar="MICROVMS_EXPECT_STATUS")
    ] = 200,
    timeout: Annotated[
        float,
        typer.Option(help="Total seconds for run + probe.", envvar="MICROVMS_TIMEOUT_SECONDS"),
    ] = 120.0,
    wait_terminated: Annotated[
        bool,
        typer.Option(
            "--wait-terminated/--no-wait-terminated",
            help="Poll until TERMINATED after terminating (default), or read the state once.",
            envvar="MICROVMS_WAIT_TERMINATED",
        ),
    ] = True,
    output_format: OutputOpt = None,
) -> None:
    """run → wait RUNNING → token → probe until expected → terminate (always). One JSON document."""
    with _errors():
        fmt = output.choose_format(output_format or _globals(ctx).output or "json")
        if timeout <= 0:
            raise vms.InputError("--timeout", f"must be > 0 seconds, got {timeout:g}")
        spec = _run_spec(
            image_arn, image_version, execution_role_arn, ingress, egress, None, None, None,
            max_duration, None, None,
        )  # fmt: skip
        options = SmokeOptions(
            spec=spec,
            path=path,
            port=port,
            expect_status=expect_status,
            timeout=timeout,
            wait_terminated=wait_terminated,
        )
        client = _client(ctx)
        log = _stderr_log if sys.stderr.isatty() else None
        with SignalGuard() as guard:
            result = run_smoke(client, options, guard=guard, log=log)
        output.emit(result, fmt)
        if not result["ok"]:
            if result.get("error"):
                output.print_error("smoke test failed", result["error"])
            raise CliExit(result.get("exitCode") or 1)


def _stderr_log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@app.command()
def gc(
    ctx: typer.Context,
    image: Annotated[
        str | None,
        typer.Option(
            "--image", help="Image ARN whose live VMs to terminate.", envvar="MICROVMS_IMAGE_ARN"
        ),
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Only this image version.")
    ] = None,
    older_than: Annotated[
        str | None, typer.Option(help="Only VMs older than this (90s, 15m, 2h, 1d).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be terminated.")
    ] = False,
    wait: WaitOpt = False,
    output_format: OutputOpt = None,
) -> None:
    """Terminate live MicroVMs of an image and/or older than an age."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        result = vms.gc(
            _client(ctx),
            image_arn=image,
            image_version=version,
            older_than=vms.parse_duration(older_than),
            dry_run=dry_run,
            wait=wait,
        )
        if fmt == "json":
            output.emit(result, fmt)
        else:
            output.emit(
                result["candidates"], fmt,
                columns=["microvmId", "state", "imageVersion", "ageSeconds"],
                title=("would terminate" if dry_run else f"terminated {len(result['terminated'])}"),
            )  # fmt: skip
        if result["failed"]:
            raise CliExit(1)


@app.command()
def shell(
    ctx: typer.Context,
    microvm_id: IdArg,
    minutes: Annotated[int, typer.Option(help="Shell token expiry (1..60).")] = 5,
    linger: Annotated[
        float, typer.Option(help="Seconds to wait for output after end of piped input.")
    ] = 2.0,
) -> None:
    """Interactive shell over the WebSocket shell channel (needs SHELL_INGRESS). Ctrl-] quits."""
    from microvms import shell as _shell

    with _errors():
        vms.check_minutes(minutes)
        client = _client(ctx)
        vm = vms.get(client, microvm_id)
        secret = vms.create_shell_token(client, microvm_id, minutes=minutes)
        try:
            ws = _shell.open_connection(vm["endpoint"], secret)
        except Exception as exc:  # websockets raises InvalidStatus/InvalidHandshake etc.
            output.print_error("shell connection failed", _shell_error(exc))
            raise CliExit(1) from None
        del secret
        code = _shell.interact(ws, linger=linger)
    if code:
        raise CliExit(code)


def _shell_error(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if response is not None and getattr(response, "status_code", None):
        body = (getattr(response, "body", b"") or b"").decode("utf-8", "replace").strip()
        return f"HTTP {response.status_code} {body}".strip()
    return f"{type(exc).__name__}: {exc}"


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit code (usage errors exit 2, as click does)."""
    try:
        app(args=argv, prog_name="microvms", standalone_mode=True)
    except CliExit as exc:
        return exc.code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        output.print_error("interrupted")
        return 130
    except Interrupted as exc:  # smoke: a signal before any MicroVM existed
        output.print_error("interrupted", f"by {exc}")
        return exc.exit_code
    return 0
