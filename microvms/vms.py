"""MicroVM operations for the CLI: input checks, run/wait/terminate/list/gc, tokens.

Everything here takes a botocore ``lambda-microvms`` client (see ``microvms.client.make_client``)
and returns plain dicts. Inputs are validated *before* any API call so bad input never costs a
request, and errors name the field and the allowed values.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from microvms.client import managed_connector_arn
from microvms.waiters import (
    WaitError,
    WaitReporter,
    error_code,
    wait_for_microvm,
    without_metadata,
)

if TYPE_CHECKING:
    from botocore.model import ServiceModel
    from types_boto3_lambda_microvms.type_defs import PortSpecificationTypeDef

    from microvms.client import MicrovmsClient
    from microvms.progress import WaitProgress

STATES = ("PENDING", "RUNNING", "SUSPENDING", "SUSPENDED", "TERMINATING", "TERMINATED")
LIVE_STATES = ("PENDING", "RUNNING", "SUSPENDING", "SUSPENDED")
MAX_PAYLOAD_BYTES = 4096  # live limit (docs/service-facts.md §4.4); the 16 KB in the docs is wrong
MAX_DURATION_SECONDS = 28800  # service default (docs/service-facts.md §4.4); tests check the model
MIN_IDLE_SECONDS = 60  # IdlePolicy.maxIdleDurationSeconds minimum (model)
MAX_IDLE_SECONDS = 28800  # AWS docs; the model has no maximum (the stack's config enforces it)
MAX_TOKEN_MINUTES = 60
MAX_CONNECTORS = 10
SHELL_PORT = 8022
DEFAULT_PORT = 8080


class InputError(ValueError):
    """Bad user input, detected before any API call. ``field`` names the option."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class Secret:
    """A string that never shows itself in repr/str/logs; call ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


# ---------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class IdlePolicy:
    """A MicroVM's idle policy (the API requires all three members); the CLI's and the stack's."""

    max_idle_seconds: int
    suspended_seconds: int
    auto_resume: bool

    def to_api(self) -> dict[str, int | bool]:
        return {
            "maxIdleDurationSeconds": self.max_idle_seconds,
            "suspendedDurationSeconds": self.suspended_seconds,
            "autoResumeEnabled": self.auto_resume,
        }


@dataclass(frozen=True)
class RunSpec:
    image_arn: str
    image_version: str | None = None
    execution_role_arn: str | None = None
    idle_policy: IdlePolicy | None = None
    ingress: tuple[str, ...] = ()
    egress: tuple[str, ...] = ()
    max_duration_seconds: int | None = None
    payload: Secret | None = field(default=None, repr=False)
    client_token: str | None = None


def split_list(values: Iterable[str] | str | None) -> tuple[str, ...]:
    """Accept repeated options and/or comma/space separated strings (env vars)."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        out.extend(p for p in re.split(r"[,\s]+", value or "") if p)
    return tuple(out)


def idle_policy_from(
    max_idle: int | None, suspended: int | None, auto_resume: bool | None
) -> IdlePolicy | None:
    """All three members or none: the service requires every member when idlePolicy is sent."""
    given = {
        "--max-idle-seconds": max_idle,
        "--suspended-seconds": suspended,
        "--auto-resume/--no-auto-resume": auto_resume,
    }
    if all(v is None for v in given.values()):
        return None
    if max_idle is None or suspended is None or auto_resume is None:
        missing = [k for k, v in given.items() if v is None]
        raise InputError(
            "idle policy",
            f"give all three of --max-idle-seconds, --suspended-seconds and "
            f"--auto-resume/--no-auto-resume (missing: {', '.join(missing)})",
        )
    if max_idle < MIN_IDLE_SECONDS:
        raise InputError("--max-idle-seconds", f"must be >= {MIN_IDLE_SECONDS}, got {max_idle}")
    if suspended < 0:
        raise InputError("--suspended-seconds", f"must be >= 0, got {suspended}")
    return IdlePolicy(int(max_idle), int(suspended), bool(auto_resume))


def read_payload(source: str | None, stdin: IO[Any] | None = None) -> Secret | None:
    """Read the run-hook payload from a file path or ``-`` (stdin); never from argv.

    The limit is 4096 bytes (UTF-8), checked here so an oversized payload never reaches the API.
    """
    if source is None or source == "":
        return None
    if source == "-":
        stream = stdin if stdin is not None else sys.stdin
        raw = stream.buffer.read() if hasattr(stream, "buffer") else stream.read()
    else:
        try:
            with open(source, "rb") as fh:
                raw = fh.read(MAX_PAYLOAD_BYTES + 1)
        except OSError as exc:
            raise InputError("--payload-file", f"cannot read {source!r}: {exc.strerror}") from None
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise InputError(
            "--payload-file",
            f"payload is larger than {MAX_PAYLOAD_BYTES} bytes (the service limit)",
        )
    try:
        return Secret(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError("--payload-file", "payload must be UTF-8 text") from None


def _check_arn(field_name: str, value: str | None, kind: str) -> None:
    if value is None:
        return
    if not value.startswith("arn:"):
        raise InputError(field_name, f"must be a full ARN (arn:aws:...:{kind}...), got {value!r}")


def build_run_request(
    spec: RunSpec, region: str, model: ServiceModel | None = None
) -> dict[str, Any]:
    """The RunMicrovm request for ``spec``; raises InputError before any API call.

    With the client's service ``model``, ARNs are also checked against the model's patterns and
    the image's region against ``region`` (see ``microvms.inputs``).
    """
    if not spec.image_arn:
        raise InputError("--image-arn", "is required (or set MICROVMS_IMAGE_ARN)")
    _check_arn("--image-arn", spec.image_arn, "microvm-image:")
    if ":microvm-image:" not in spec.image_arn:
        raise InputError("--image-arn", f"is not a MicroVM image ARN: {spec.image_arn!r}")
    _check_arn("--execution-role-arn", spec.execution_role_arn, "iam::<account>:role/")
    if model is not None:
        from microvms import inputs

        inputs.check_image_arn(model, spec.image_arn, region)
        if spec.execution_role_arn:
            inputs.check_role_arn(model, spec.execution_role_arn)
    request: dict[str, Any] = {"imageIdentifier": spec.image_arn}
    if spec.image_version:
        request["imageVersion"] = spec.image_version
    if spec.execution_role_arn:
        request["executionRoleArn"] = spec.execution_role_arn
    if spec.idle_policy:
        request["idlePolicy"] = spec.idle_policy.to_api()
    for opt, key, values, direction in (
        ("--ingress", "ingressNetworkConnectors", spec.ingress, "ingress"),
        ("--egress", "egressNetworkConnectors", spec.egress, "egress"),
    ):
        if not values:
            continue
        if len(values) > MAX_CONNECTORS:
            raise InputError(opt, f"at most {MAX_CONNECTORS} connectors, got {len(values)}")
        try:
            request[key] = [managed_connector_arn(v, region, direction) for v in values]
        except ValueError as exc:
            raise InputError(opt, str(exc)) from None
    if spec.max_duration_seconds is not None:
        if not 1 <= spec.max_duration_seconds <= MAX_DURATION_SECONDS:
            raise InputError(
                "--max-duration",
                f"must be 1..{MAX_DURATION_SECONDS} seconds, got {spec.max_duration_seconds}",
            )
        request["maximumDurationInSeconds"] = int(spec.max_duration_seconds)
    if spec.payload is not None:
        if len(spec.payload.reveal().encode()) > MAX_PAYLOAD_BYTES:
            raise InputError("--payload-file", f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
        request["runHookPayload"] = spec.payload.reveal()
    if spec.client_token:
        if not 1 <= len(spec.client_token) <= 128:
            raise InputError("--client-token", "must be 1..128 characters")
        request["clientToken"] = spec.client_token
    return request


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)


def parse_duration(text: str | None, field_name: str = "--older-than") -> float | None:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d`` → seconds."""
    if text is None or text == "":
        return None
    match = _DURATION.match(str(text))
    if not match:
        raise InputError(field_name, f"{text!r} is not a duration; use e.g. 90s, 15m, 2h, 1d")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2).lower()]
    return float(match.group(1)) * unit


def parse_ports(
    values: Sequence[str] | None, default: int = DEFAULT_PORT
) -> list[PortSpecificationTypeDef]:
    """``8080`` or ``8000-8100`` → CreateMicrovmAuthToken ``allowedPorts`` entries (explicit only)."""
    values = split_list(values) or (str(default),)
    out: list[PortSpecificationTypeDef] = []
    for value in values:
        try:
            if "-" in value:
                start, end = (int(p) for p in value.split("-", 1))
                if not (1 <= start <= end <= 65535):
                    raise ValueError
                out.append({"range": {"startPort": start, "endPort": end}})
            else:
                port = int(value)
                if not 1 <= port <= 65535:
                    raise ValueError
                out.append({"port": port})
        except ValueError:
            raise InputError(
                "--port", f"{value!r} is not a port (1-65535) or a range like 8000-8100"
            ) from None
    return out


def check_minutes(minutes: int) -> int:
    if not 1 <= int(minutes) <= MAX_TOKEN_MINUTES:
        raise InputError("--minutes", f"must be 1..{MAX_TOKEN_MINUTES}, got {minutes}")
    return int(minutes)


def check_state(value: str, field_name: str = "--state") -> str:
    state = value.strip().upper()
    if state not in STATES:
        raise InputError(field_name, f"{value!r} is not allowed; use one of {', '.join(STATES)}")
    return state


# ---------------------------------------------------------------------------------------- calls


def summarize(vm: Mapping[str, Any]) -> dict[str, Any]:
    """The fields people look at, in a stable order (boto3 drops nulls, so use .get)."""
    keys = (
        "microvmId",
        "state",
        "endpoint",
        "imageArn",
        "imageVersion",
        "executionRoleArn",
        "idlePolicy",
        "ingressNetworkConnectors",
        "egressNetworkConnectors",
        "maximumDurationInSeconds",
        "startedAt",
        "terminatedAt",
        "stateReason",
    )
    return {k: vm.get(k) for k in keys if k in vm}


def run(client: MicrovmsClient, spec: RunSpec) -> dict[str, Any]:
    """RunMicrovm (rate-limited by the client's hook, see ``microvms.ratelimit``)."""
    request = build_run_request(spec, client.meta.region_name, client.meta.service_model)
    return without_metadata(client.run_microvm(**request))


def get(client: MicrovmsClient, microvm_id: str) -> dict[str, Any]:
    return without_metadata(client.get_microvm(microvmIdentifier=microvm_id))


@dataclass(frozen=True)
class Transition:
    """One MicroVM state change: call ``operation``, then wait for ``target`` (``wait``) or read
    the MicroVM once. :data:`terminate`, :data:`suspend` and :data:`resume` are its instances."""

    operation: str
    target: str

    def __call__(
        self,
        client: MicrovmsClient,
        microvm_id: str,
        *,
        wait: bool = False,
        timeout: float = 120.0,
        progress: WaitReporter | None = None,
    ) -> dict[str, Any]:
        getattr(client, self.operation)(microvmIdentifier=microvm_id)
        if wait:
            return wait_for_microvm(
                client, microvm_id, (self.target,), timeout=timeout, progress=progress
            )
        return get(client, microvm_id)


terminate = Transition("terminate_microvm", "TERMINATED")
"""TerminateMicrovm; idempotent (a TERMINATED VM answers 200 no-op, docs/service-facts.md §7)."""
suspend = Transition("suspend_microvm", "SUSPENDED")
"""SuspendMicrovm; with ``wait``, until SUSPENDED."""
resume = Transition("resume_microvm", "RUNNING")
"""ResumeMicrovm; with ``wait``, until RUNNING."""


def _age_seconds(item: Mapping[str, Any], now: _dt.datetime) -> float | None:
    started = item.get("startedAt")
    if not isinstance(started, _dt.datetime):
        return None
    if started.tzinfo is None:
        started = started.replace(tzinfo=_dt.UTC)
    return max(0.0, (now - started).total_seconds())


def check_version_filter(image: str | None, version: str | None) -> None:
    """A version filter needs its image: ListMicrovms filters versions per image."""
    if version and not image:
        raise InputError("--version", "needs --image (ListMicrovms filters versions per image)")


def list_microvms(
    client: MicrovmsClient,
    *,
    image_arn: str | None = None,
    image_version: str | None = None,
    states: Sequence[str] | None = None,
    older_than: float | None = None,
    now: _dt.datetime | None = None,
    page_size: int = 50,
) -> list[dict[str, Any]]:
    """All MicroVMs (every page), filtered; each item gains ``ageSeconds``."""
    check_version_filter(image_arn, image_version)
    params: dict[str, Any] = {"PaginationConfig": {"PageSize": page_size}}
    if image_arn:
        params["imageIdentifier"] = image_arn
    if image_version:
        params["imageVersion"] = image_version
    wanted = {check_state(s) for s in states} if states else None
    now = now or _dt.datetime.now(_dt.UTC)
    out: list[dict[str, Any]] = []
    for page in client.get_paginator("list_microvms").paginate(**params):
        for item in page.get("items", []):
            if wanted and item.get("state") not in wanted:
                continue
            age = _age_seconds(item, now)
            if older_than is not None and (age is None or age < older_than):
                continue
            out.append({**item, "ageSeconds": None if age is None else round(age, 1)})
    return out


def gc(
    client: MicrovmsClient,
    *,
    image_arn: str | None = None,
    image_version: str | None = None,
    older_than: float | None = None,
    dry_run: bool = False,
    wait: bool = False,
    timeout: float = 120.0,
    progress_for: Callable[[str], WaitProgress | None] | None = None,
) -> dict[str, Any]:
    """Terminate live MicroVMs of an image and/or older than an age. One selector is required.

    Every candidate is terminated first, then (with ``wait``) each is polled to TERMINATED. Each
    candidate reports its ``state`` when selected and its ``finalState`` after the terminate (or
    the wait). ``progress_for(label)`` builds a progress reporter for each wait.
    """
    if not image_arn and older_than is None:
        raise InputError(
            "gc", "give --image and/or --older-than (refusing to select every MicroVM)"
        )
    candidates = list_microvms(
        client,
        image_arn=image_arn,
        image_version=image_version,
        states=LIVE_STATES,
        older_than=older_than,
    )
    terminated: list[str] = []
    failed: list[dict[str, str]] = []
    final: dict[str, str | None] = {}

    def _failed(vm_id: str, exc: Exception) -> None:
        if isinstance(exc, ClientError):
            detail = f"{error_code(exc)}: {exc.response['Error'].get('Message', '')}"
        else:
            detail = str(exc)
        failed.append({"microvmId": vm_id, "error": detail})

    if not dry_run:
        for item in candidates:
            try:
                client.terminate_microvm(microvmIdentifier=item["microvmId"])
                terminated.append(item["microvmId"])
            except ClientError as exc:
                _failed(item["microvmId"], exc)
        deadline = time.monotonic() + timeout
        for n, vm_id in enumerate(terminated, 1):
            try:
                if wait:
                    progress = (
                        progress_for(f"gc {n}/{len(terminated)} {vm_id}") if progress_for else None
                    )
                    vm = wait_for_microvm(
                        client, vm_id, ("TERMINATED",), progress=progress,
                        timeout=max(0.0, deadline - time.monotonic()),
                    )  # fmt: skip
                    if progress is not None:
                        progress.line.clear()
                else:
                    vm = get(client, vm_id)
                final[vm_id] = vm.get("state")
            except (ClientError, WaitError) as exc:
                _failed(vm_id, exc)
    return {
        "dryRun": dry_run,
        "candidates": [
            {
                **{
                    k: c.get(k)
                    for k in ("microvmId", "state", "imageArn", "imageVersion", "ageSeconds")
                },
                **({} if dry_run else {"finalState": final.get(c["microvmId"])}),
            }
            for c in candidates
        ],
        "terminated": terminated,
        "failed": failed,
    }


def create_auth_token(
    client: MicrovmsClient,
    microvm_id: str,
    *,
    minutes: int,
    ports: Sequence[PortSpecificationTypeDef],
) -> Secret:
    response = client.create_microvm_auth_token(
        microvmIdentifier=microvm_id,
        expirationInMinutes=check_minutes(minutes),
        allowedPorts=ports,
    )
    return Secret(response["authToken"]["X-aws-proxy-auth"])


def create_shell_token(client: MicrovmsClient, microvm_id: str, *, minutes: int) -> Secret:
    response = client.create_microvm_shell_auth_token(
        microvmIdentifier=microvm_id, expirationInMinutes=check_minutes(minutes)
    )
    return Secret(response["authToken"]["X-aws-proxy-auth"])
