"""Typer wiring for ``python -m microvms`` (console script ``microvms``). Logic lives elsewhere.

Every option can also come from an environment variable (``MICROVMS_*``), so the Pulumi command
passes inputs through its environment rather than argv.

Start-up matters (``microvms --help`` and ``microvms smoke`` are run by people and by Pulumi
commands): this module imports only typer and the small pure modules at load time. botocore and the
HTTP/WebSocket code are imported inside the commands that use them, help is rendered by click's
plain formatter (``rich_markup_mode=None``: rich costs ~0.2 s of imports), and rich is imported only
to draw a table.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from microvms import env, output, vms, waiters
from microvms.smoke import Interrupted

if TYPE_CHECKING:
    from microvms.client import MicrovmsClient
    from microvms.endpoint import ProbeResult
    from microvms.endpoint import Progress as ProbeProgress
    from microvms.loopback import Setup
    from microvms.progress import WaitProgress
    from microvms.quota import RateChoice

app = typer.Typer(
    name="microvms",
    help="Operate AWS Lambda MicroVMs: run, inspect, probe, smoke-test, clean up, shell in.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_INPUT = 2
DISTRIBUTION = "lambda-microvms"


@dataclass
class Globals:
    region: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    output: str | None = None
    proxy_url: str | None = None
    verbose: bool = False
    client: MicrovmsClient | None = None
    setup: Setup | None = None
    rate_choice: RateChoice | None = None


class CliExit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


# ------------------------------------------------------------------------------------ plumbing

OutputOpt = Annotated[
    str | None,
    typer.Option("--output", "-o", help="json or table (default: table on a terminal, else json)."),
]
IdArg = Annotated[
    str,
    typer.Argument(help="MicroVM id (microvm-<uuid>).", envvar=env.MICROVM_ID, show_default=False),
]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", help="Seconds to wait.", envvar=env.TIMEOUT_SECONDS),
]


def _globals(ctx: typer.Context) -> Globals:
    return ctx.obj if isinstance(ctx.obj, Globals) else Globals()


def _fmt(ctx: typer.Context, local: str | None) -> str:
    return output.choose_format(local or _globals(ctx).output)


def _note(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _client(ctx: typer.Context, *, runs: bool = False) -> MicrovmsClient:
    """The process's one lambda-microvms client (built on first use, no API call).

    Loopback endpoints without credentials/region get placeholders (``microvms.loopback``, said
    once on stderr); the region must be a launch region. RunMicrovm is spaced at the account's
    quota (``microvms.quota``), looked up only when the rate first matters, or at once with
    ``--verbose`` for commands that run MicroVMs (``runs``) so the choice can be shown.
    """
    from botocore.exceptions import NoRegionError

    from microvms import inputs, loopback
    from microvms.client import make_client
    from microvms.ratelimit import limit_run_microvm

    g = _globals(ctx)
    if g.client is None:
        setup = loopback.resolve(
            endpoint_url=g.endpoint_url, region=g.region, profile=g.profile, proxy_url=g.proxy_url
        )
        try:
            client = make_client(
                # botocore reads only AWS_DEFAULT_REGION; AWS_REGION is what other SDKs read
                region=setup.region or os.environ.get("AWS_REGION") or None,
                endpoint_url=g.endpoint_url,
                profile=g.profile,
                credentials=setup.credentials,
                retry_mode=os.environ.get(env.RETRY_MODE, "standard"),
                max_attempts=_int_env(env.MAX_ATTEMPTS, 5),
            )
        except NoRegionError:
            inputs.check_region(None)
        inputs.check_region(client.meta.region_name, "--region" if g.region else "region")
        if setup.note:  # said once, when the first request goes out (input errors stay one line)
            _say_once_before_send(client, setup.note)
        g.setup = setup
        g.client = limit_run_microvm(client, rate=lambda: _run_rate(g).rate)
    if runs and g.verbose:
        _note(f"microvms: {_run_rate(g).describe()}")
    return g.client


def _say_once_before_send(client: MicrovmsClient, message: str) -> None:
    said: list[bool] = []

    def _before_send(**_kwargs: Any) -> None:
        if not said:
            said.append(True)
            _note(message)

    client.meta.events.register("before-send.lambda-microvms", _before_send)


def _run_rate(g: Globals) -> RateChoice:
    """The RunMicrovm rate choice for this process (one Service Quotas lookup at most)."""
    if g.rate_choice is not None:
        return g.rate_choice
    from microvms import loopback, quota
    from microvms.client import make_client

    setup = g.setup
    if (
        setup is not None
        and setup.local
        and not loopback.is_loopback(quota.service_quotas_endpoint())
    ):
        choice = quota.fallback("local endpoints; Service Quotas not queried")
    else:
        try:
            if g.client is None:  # asked for only once _client has made it
                raise RuntimeError("no lambda-microvms client yet")
            sq = make_client(
                "service-quotas",
                region=g.client.meta.region_name,
                profile=g.profile,
                credentials=setup.credentials if setup else None,
                max_attempts=2,
                connect_timeout=3,
                read_timeout=5,
            )
            choice = quota.read_run_microvm_rate(sq)
        except Exception as exc:  # a quota lookup must never stop a run
            choice = quota.fallback(f"Service Quotas client failed ({type(exc).__name__})")
    g.rate_choice = choice
    return choice


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
def _errors() -> Iterator[None]:
    """Turn every expected failure into one readable line on stderr and a non-zero exit."""
    from botocore.exceptions import BotoCoreError, ClientError

    from microvms.endpoint import EndpointUnresolvable

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
    except waiters.WaitError as exc:
        output.print_error("wait failed", str(exc))
        raise CliExit(1) from None
    except BotoCoreError as exc:
        output.print_error("AWS request failed", str(exc))
        raise CliExit(1) from None
    except EndpointUnresolvable as exc:
        output.print_error("endpoint not reachable", str(exc))
        raise CliExit(1) from None
    except ValueError as exc:
        output.print_error("invalid input", str(exc))
        raise CliExit(EXIT_INPUT) from None
    except (OSError, ConnectionError) as exc:
        output.print_error("connection failed", f"{type(exc).__name__}: {exc}")
        raise CliExit(1) from None


def _ids(values: list[str]) -> list[str]:
    from microvms.inputs import check_microvm_id

    return [check_microvm_id(v) for v in vms.split_list(values)]


def _id(value: str) -> str:
    from microvms.inputs import check_microvm_id

    return check_microvm_id(value)


def _image(client: MicrovmsClient, arn: str | None, field_name: str) -> str | None:
    """Check an image ARN against the model and the client's region (no API call)."""
    if not arn:
        return arn
    from microvms.inputs import check_image_arn

    return check_image_arn(client.meta.service_model, arn, client.meta.region_name, field_name)


@contextlib.contextmanager
def _progress(label: str) -> Iterator[WaitProgress | None]:
    """A live wait line on a terminal (``microvms.progress``); None when not on a terminal."""
    from microvms.progress import LiveLine, WaitProgress

    line = LiveLine(label)
    with line:
        yield WaitProgress(line) if line.enabled else None


def _version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version(DISTRIBUTION)
    except PackageNotFoundError:
        text = "unknown (not installed)"
    sys.stdout.write(f"microvms {text}\n")
    raise typer.Exit(0)


def _image_name(arn: str | None) -> str | None:
    return arn.split(":microvm-image:", 1)[-1] if arn else arn


# ------------------------------------------------------------------------------------ callback


@app.callback()
def _main(
    ctx: typer.Context,
    region: Annotated[
        str | None, typer.Option(help="AWS region (else AWS_REGION).", envvar=env.REGION)
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            help="API endpoint override (else AWS_ENDPOINT_URL_LAMBDA_MICROVMS / AWS_ENDPOINT_URL).",
            envvar=env.ENDPOINT_URL,
        ),
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="AWS profile name.", envvar=env.PROFILE)
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option("--output", "-o", help="json or table.", envvar=env.OUTPUT),
    ] = None,
    proxy_url: Annotated[
        str | None,
        typer.Option(
            help="Endpoint proxy for MicroVM traffic (the local emulator's URL); live endpoints "
            "need none.",
            envvar=env.PROXY_URL,
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Say which RunMicrovm rate is used and why.",
            envvar=env.VERBOSE,
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    ctx.obj = Globals(region, endpoint_url, profile, output_format, proxy_url, verbose)


# ------------------------------------------------------------------------------------ run & co


def _run_spec(
    image_arn: str | None,
    image_version: str | None,
    execution_role_arn: str | None,
    ingress: list[str] | None,
    egress: list[str] | None,
    max_idle_seconds: int | None,
    suspended_seconds: int | None,
    auto_resume: bool | None,
    max_duration: int | None,
    payload_file: str | None,
    client_token: str | None,
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
    typer.Option("--image-arn", metavar="ARN", help="MicroVM image ARN.", envvar=env.IMAGE_ARN),
]
VersionOpt = Annotated[
    str | None,
    typer.Option(
        "--image-version",
        help="Image version (default: latest active).",
        envvar=env.IMAGE_VERSION,
    ),
]
RoleOpt = Annotated[
    str | None,
    typer.Option("--execution-role-arn", help="Execution role ARN.", envvar=env.EXECUTION_ROLE_ARN),
]
IngressOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ingress",
        metavar="NAME|ARN",
        help="Ingress connector ARN or managed name (HTTP_INGRESS, SHELL_INGRESS, ALL_INGRESS, "
        "NO_INGRESS); repeat or comma-separate.",
        envvar=env.INGRESS,
    ),
]
EgressOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--egress",
        metavar="NAME|ARN",
        help="Egress connector ARN or managed name (INTERNET_EGRESS); repeat or comma-separate.",
        envvar=env.EGRESS,
    ),
]
MaxIdleOpt = Annotated[
    int | None,
    typer.Option(
        help="Idle policy: seconds without traffic before suspend (>= 60).",
        envvar=env.MAX_IDLE_SECONDS,
    ),
]
SuspendedOpt = Annotated[
    int | None,
    typer.Option(
        help="Idle policy: seconds suspended before terminate (>= 0).",
        envvar=env.SUSPENDED_SECONDS,
    ),
]
AutoResumeOpt = Annotated[
    bool | None,
    typer.Option(
        "--auto-resume/--no-auto-resume",
        help="Idle policy: resume on traffic.",
        envvar=env.AUTO_RESUME,
    ),
]
MaxDurationOpt = Annotated[
    int | None,
    typer.Option(
        "--max-duration",
        help=f"maximumDurationInSeconds, 1..{vms.MAX_DURATION_SECONDS}. Default: "
        f"{vms.MAX_DURATION_SECONDS} s ({vms.MAX_DURATION_SECONDS // 3600} h), the service's "
        "default; the VM is terminated then, running or suspended.",
        envvar=env.MAX_DURATION_SECONDS,
        show_default=False,
    ),
]
SmokeMaxDurationOpt = Annotated[
    int | None,
    typer.Option(
        "--max-duration",
        help=f"maximumDurationInSeconds, 1..{vms.MAX_DURATION_SECONDS}. Default: --timeout plus "
        "120 s, a backstop so even a killed smoke test cannot leave its VM running for long.",
        envvar=env.MAX_DURATION_SECONDS,
        show_default=False,
    ),
]
PayloadOpt = Annotated[
    str | None,
    typer.Option(
        "--payload-file",
        help="Run-hook payload from a file, or - for stdin (<= 4096 bytes). Never from argv.",
        envvar=env.PAYLOAD_FILE,
    ),
]
ClientTokenOpt = Annotated[
    str | None,
    typer.Option(help="Idempotency token for RunMicrovm.", envvar=env.CLIENT_TOKEN),
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
        bool, typer.Option("--wait", help="Wait until RUNNING.", envvar=env.WAIT)
    ] = False,
    terminate_on_failure: Annotated[
        bool,
        typer.Option(
            "--terminate-on-failure",
            help="With --wait: terminate the new VM if the wait fails or is interrupted "
            "(how SessionRun's create avoids leaving a VM that no state records).",
            envvar=env.TERMINATE_ON_FAILURE,
        ),
    ] = False,
    timeout: TimeoutOpt = 300.0,
    output_format: OutputOpt = None,
) -> None:
    """RunMicrovm; prints microvmId, endpoint, state and timings.

    The MicroVM lives at most --max-duration seconds (default 28800 s = 8 h, the service's default).
    """
    with _errors():
        fmt = _fmt(ctx, output_format)
        spec = _run_spec(
            image_arn, image_version, execution_role_arn, ingress, egress, max_idle_seconds,
            suspended_seconds, auto_resume, max_duration, payload_file, client_token,
        )  # fmt: skip
        # The checks that need no client first (the connector ARNs are built again below).
        vms.build_run_request(spec, "us-east-1")
        client = _client(ctx, runs=True)
        # validate against the model and the client's region, before any call
        vms.build_run_request(spec, client.meta.region_name, client.meta.service_model)
        started = time.monotonic()
        vm = vms.run(client, spec)
        timings = {"runSeconds": round(time.monotonic() - started, 3)}
        if wait:
            try:
                with _progress(f"waiting for {vm['microvmId']} to be RUNNING") as progress:
                    vm = waiters.wait_for_microvm(
                        client, vm["microvmId"], ("RUNNING",), timeout=timeout, progress=progress
                    )
            except BaseException as exc:  # incl. Ctrl-C: the VM must not outlive a failed create
                if not terminate_on_failure:
                    raise
                note = _terminate_after_failed_wait(client, vm["microvmId"])
                if isinstance(exc, waiters.WaitError):
                    raise waiters.WaitError(f"{exc}; {note}", exc.microvm) from None
                raise
            timings["runningAfterSeconds"] = round(time.monotonic() - started, 3)
        output.emit({**vms.summarize(vm), "timings": timings}, fmt)


def _terminate_after_failed_wait(client: MicrovmsClient, microvm_id: str) -> str:
    """Best effort (the wait's own error is what gets reported); returns a note for it."""
    from botocore.exceptions import BotoCoreError, ClientError

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
        _id(microvm_id)
        target = vms.check_state(state)
        client = _client(ctx)
        started = time.monotonic()
        with _progress(f"waiting for {microvm_id} to be {target}") as progress:
            vm = waiters.wait_for_microvm(
                client, microvm_id, (target,), timeout=timeout, progress=progress
            )
        output.emit(
            {**vms.summarize(vm), "waitedSeconds": round(time.monotonic() - started, 3)}, fmt
        )


@app.command()
def get(ctx: typer.Context, microvm_id: IdArg, output_format: OutputOpt = None) -> None:
    """GetMicrovm."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        _id(microvm_id)
        output.emit(vms.summarize(vms.get(_client(ctx), microvm_id)), fmt)


@app.command("ls")
def ls_(
    ctx: typer.Context,
    image: Annotated[
        str | None,
        typer.Option("--image", help="Filter by image ARN.", envvar=env.IMAGE_ARN),
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
        vms.check_version_filter(image, version)
        client = _client(ctx)
        items = vms.list_microvms(
            client, image_arn=_image(client, image, "--image"), image_version=version,
            states=states, older_than=age, page_size=page_size,
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
    """SuspendMicrovm; with --wait, wait until SUSPENDED."""
    _transition(ctx, vms.suspend, microvm_id, wait, timeout, output_format)


@app.command()
def resume(
    ctx: typer.Context, microvm_id: IdArg, wait: WaitOpt = False, timeout: TimeoutOpt = 120.0,
    output_format: OutputOpt = None,
) -> None:  # fmt: skip
    """ResumeMicrovm; with --wait, wait until RUNNING."""
    _transition(ctx, vms.resume, microvm_id, wait, timeout, output_format)


def _transition(
    ctx: typer.Context,
    act: vms.Transition,
    microvm_id: str,
    wait: bool,
    timeout: float,
    output_format: str | None,
) -> None:
    """One MicroVM state change (``vms.suspend``/``vms.resume``), printed as its summary."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        _id(microvm_id)
        client = _client(ctx)
        with _progress(f"waiting for {microvm_id} to be {act.target}") as progress:
            vm = act(client, microvm_id, wait=wait, timeout=timeout, progress=progress)
        output.emit(vms.summarize(vm), fmt)


@app.command()
def terminate(
    ctx: typer.Context,
    microvm_ids: Annotated[
        list[str] | None,
        typer.Argument(help="MicroVM ids.", envvar=env.MICROVM_ID, show_default=False),
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
    """TerminateMicrovm; idempotent. With --wait, wait until TERMINATED."""
    with _errors():
        fmt = _fmt(ctx, output_format)
        ids = _ids(microvm_ids or [])
        if from_json_env:
            ids.append(_id(_id_from_json_env(from_json_env)))
        if not ids:
            raise vms.InputError("MICROVM_ID", "give at least one MicroVM id")
        client = _client(ctx)
        results = [_terminate_one(client, i, wait, timeout, missing_ok) for i in ids]
        output.emit(results[0] if len(results) == 1 else results, fmt)


def _terminate_one(
    client: MicrovmsClient, microvm_id: str, wait: bool, timeout: float, missing_ok: bool
) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        with _progress(f"waiting for {microvm_id} to be TERMINATED") as progress:
            vm = vms.terminate(client, microvm_id, wait=wait, timeout=timeout, progress=progress)
        return vms.summarize(vm)
    except ClientError as exc:
        if missing_ok and waiters.error_code(exc) == "ResourceNotFoundException":
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
        _id(microvm_id)
        vms.check_minutes(minutes)
        ports = None if shell else vms.parse_ports(port)
        client = _client(ctx)
        if ports is None:  # --shell
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
    path: Annotated[str, typer.Option(help="Request path.", envvar=env.PROBE_PATH)] = "/",
    port: Annotated[
        int, typer.Option(help="Guest port.", envvar=env.PROBE_PORT)
    ] = vms.DEFAULT_PORT,
    method: Annotated[str, typer.Option(help="HTTP method.")] = "GET",
    expect_status: Annotated[
        int | None,
        typer.Option(
            help="Exit 0 only on this status (default: any 2xx/3xx).",
            envvar=env.EXPECT_STATUS,
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds to keep retrying 502s.", envvar=env.TIMEOUT_SECONDS),
    ] = 30.0,
    output_format: OutputOpt = None,
) -> None:
    """HTTP request through the VM endpoint; retries 502 during restore.

    The token is minted in-process, reused while fresh and minted again after a 403; it is never
    printed.
    """
    from microvms import endpoint as _endpoint
    from microvms import tokens
    from microvms.smoke import token_minutes

    with _errors():
        fmt = _fmt(ctx, output_format)
        _id(microvm_id)
        if not 1 <= port <= 65535:
            raise vms.InputError("--port", f"must be 1..65535, got {port}")
        client = _client(ctx)
        vm = vms.get(client, microvm_id)
        source = tokens.auth_tokens(client, microvm_id, minutes=token_minutes(timeout), port=port)
        with _progress(f"probing {path} on {microvm_id}") as progress:
            result = _endpoint.probe(
                vm["endpoint"], source, path=path, port=port, method=method.upper(),
                expect_status=expect_status, timeout=timeout, proxy_url=_globals(ctx).proxy_url,
                progress=_probe_progress(progress),
            )  # fmt: skip
        source.forget()
        output.emit(
            {"microvmId": microvm_id, "endpoint": vm["endpoint"], "path": path, "port": port,
             **result.to_dict()},
            fmt,
        )  # fmt: skip
        if not result.ok:
            raise CliExit(1)


def _probe_progress(progress: WaitProgress | None) -> ProbeProgress | None:
    if progress is None:
        return None

    def report(last: ProbeResult, elapsed: float, next_delay: float) -> None:
        seen = last.status if last.status is not None else (last.error or "no answer")
        progress.line.show(
            f"attempt {last.attempts}: {seen} · {elapsed:.1f}s elapsed · next try in "
            f"{next_delay:.1f}s"
        )

    return report


@app.command()
def smoke(
    ctx: typer.Context,
    image_arn: ImageOpt = None,
    image_version: VersionOpt = None,
    execution_role_arn: RoleOpt = None,
    ingress: IngressOpt = None,
    egress: EgressOpt = None,
    max_duration: SmokeMaxDurationOpt = None,
    path: Annotated[str, typer.Option(help="Path to probe.", envvar=env.PROBE_PATH)] = "/",
    port: Annotated[
        int, typer.Option(help="Guest port to probe.", envvar=env.PROBE_PORT)
    ] = vms.DEFAULT_PORT,
    expect_status: Annotated[
        int, typer.Option(help="Status the probe must answer.", envvar=env.EXPECT_STATUS)
    ] = 200,
    timeout: Annotated[
        float,
        typer.Option(help="Total seconds for run + probe.", envvar=env.TIMEOUT_SECONDS),
    ] = 120.0,
    wait_terminated: Annotated[
        bool,
        typer.Option(
            "--wait-terminated/--no-wait-terminated",
            help="Poll until TERMINATED after terminating (default), or read the state once.",
            envvar=env.WAIT_TERMINATED,
        ),
    ] = True,
    output_format: OutputOpt = None,
) -> None:
    """run, wait RUNNING, token, probe until expected, terminate (always). One JSON document."""
    from microvms.smoke import SignalGuard, SmokeOptions, run_smoke

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
            proxy_url=_globals(ctx).proxy_url,
        )
        vms.build_run_request(spec, "us-east-1")  # the checks that need no client
        client = _client(ctx, runs=True)
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
            "--image", help="Image ARN whose live VMs to terminate.", envvar=env.IMAGE_ARN
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
    timeout: TimeoutOpt = 120.0,
    output_format: OutputOpt = None,
) -> None:
    """Terminate live MicroVMs of an image and/or older than an age.

    Reports each MicroVM's state when selected and its final state (TERMINATED with --wait).
    """
    with _errors():
        fmt = _fmt(ctx, output_format)
        age = vms.parse_duration(older_than)
        if not image and age is None:
            raise vms.InputError(
                "gc", "give --image and/or --older-than (refusing to select every MicroVM)"
            )
        vms.check_version_filter(image, version)
        client = _client(ctx)
        result = vms.gc(
            client,
            image_arn=_image(client, image, "--image"),
            image_version=version,
            older_than=age,
            dry_run=dry_run,
            wait=wait,
            timeout=timeout,
            progress_for=_gc_progress,
        )
        if fmt == "json":
            output.emit(result, fmt)
        else:
            output.emit(
                result["candidates"], fmt,
                columns=["microvmId", "state", *([] if dry_run else ["finalState"]),
                         "imageVersion", "ageSeconds"],
                title=("would terminate" if dry_run else f"terminated {len(result['terminated'])}"),
            )  # fmt: skip
        if result["failed"]:
            raise CliExit(1)


def _gc_progress(label: str) -> WaitProgress | None:
    from microvms.progress import LiveLine, WaitProgress

    line = LiveLine(label)
    return WaitProgress(line) if line.enabled else None


# ------------------------------------------------------------------------------------ versions

ImageRefArg = Annotated[
    str,
    typer.Argument(
        metavar="IMAGE",
        help="Image ARN or exact image name.",
        envvar=env.IMAGE_ARN,
        show_default=False,
    ),
]


def _resolved_image(client: MicrovmsClient, value: str) -> str:
    from microvms import image_versions

    try:
        return image_versions.resolve(client, value)
    except image_versions.ImageNotFound as exc:
        output.print_error("IMAGE", str(exc))
        raise CliExit(1) from None


@app.command()
def versions(
    ctx: typer.Context,
    image: ImageRefArg,
    builds: Annotated[
        bool,
        typer.Option("--builds/--no-builds", help="Read each version's build results."),
    ] = True,
    output_format: OutputOpt = None,
) -> None:
    """List an image's versions: state, status (ACTIVE/INACTIVE), which one serves, builds.

    The one that serves is what RunMicrovm starts when no --image-version is given: the newest
    ACTIVE version (GetMicrovmImage's latestActiveImageVersion).
    """
    from microvms import image_versions, images

    with _errors():
        fmt = _fmt(ctx, output_format)
        client = _client(ctx)
        image_versions.check_image(client.meta.service_model, image, client.meta.region_name)
        arn = _resolved_image(client, image)
        rows = images.version_rows(client, arn, with_builds=builds)
        if fmt == "json":
            output.emit(rows, fmt)
        else:
            output.emit(
                image_versions.table_rows(rows), fmt,
                columns=image_versions.TABLE_COLUMNS, title=_image_name(arn),
            )  # fmt: skip


@app.command()
def activate(
    ctx: typer.Context,
    image: ImageRefArg,
    version: Annotated[
        str,
        typer.Argument(
            metavar="VERSION",
            help='The version to serve, "<n>.0" (e.g. "2.0").',
            envvar=env.IMAGE_VERSION,
            show_default=False,
        ),
    ],
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Wait until the image reports it as serving."),
    ] = True,
    timeout: TimeoutOpt = 60.0,
    output_format: OutputOpt = None,
) -> None:
    """Make VERSION the one that serves, without a rebuild (a rollback, or forward again).

    VERSION is marked ACTIVE, then every newer version INACTIVE (RunMicrovm without a version
    starts the newest ACTIVE one). A stack that manages the image pins it with activeVersion
    instead; a change made here shows as drift on its next refresh.
    """
    from microvms import image_versions, images

    with _errors():
        fmt = _fmt(ctx, output_format)
        target = image_versions.check_version(version)
        client = _client(ctx)
        image_versions.check_image(client.meta.service_model, image, client.meta.region_name)
        arn = _resolved_image(client, image)
        started = time.monotonic()
        try:
            changes = images.activate(client, arn, target)
        except images.NotRetained as exc:
            output.print_error("VERSION", str(exc))
            raise CliExit(1) from None
        result: dict[str, Any] = {
            "imageArn": arn,
            "imageVersion": target,
            "changes": [{"imageVersion": v, "status": st} for v, st in changes],
        }
        if wait:
            with _progress(f"waiting for version {target} to serve") as progress:
                live = images.wait_until_serving(
                    client, arn, target, timeout=timeout, progress=progress
                )
            result["serving"] = live.get("latestActiveImageVersion")
            result["waitedSeconds"] = round(time.monotonic() - started, 3)
        output.emit(result, fmt)


@app.command()
def shell(
    ctx: typer.Context,
    microvm_id: IdArg,
    minutes: Annotated[int, typer.Option(help="Shell token expiry (1..60).")] = 5,
    linger: Annotated[
        float, typer.Option(help="Seconds to wait for output after end of piped input.")
    ] = 2.0,
) -> None:
    """Interactive shell over the WebSocket shell channel (needs SHELL_INGRESS). Ctrl-] quits.

    The shell token is minted in-process and minted again if the endpoint refuses it (403).
    """
    from microvms import shell as _shell
    from microvms import tokens
    from microvms.endpoint import EndpointUnresolvable

    with _errors():
        _id(microvm_id)
        vms.check_minutes(minutes)
        client = _client(ctx)
        vm = vms.get(client, microvm_id)
        source = tokens.shell_tokens(client, microvm_id, minutes=minutes)
        source.get()  # mint now: a refusal of the token call is reported as the API error it is
        try:
            ws = _shell.open_with_tokens(vm["endpoint"], source, proxy_url=_globals(ctx).proxy_url)
        except EndpointUnresolvable:
            raise
        except Exception as exc:  # websockets raises InvalidStatus/InvalidHandshake etc.
            output.print_error("shell connection failed", _shell_error(exc))
            raise CliExit(1) from None
        source.forget()
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
