"""Ephemeral MicroVM runs as ``pulumi-command`` commands: ``SmokeTest`` and ``SessionRun``.

Running MicroVMs are runtime things, not infrastructure, so the program never models them as
long-lived resources. Instead a ``local.Command`` runs the operator CLI (``python -m microvms``)
with the interpreter of this very environment:

* ``SmokeTest`` runs ``microvms smoke`` for each new image version (``triggers`` = image ARN and
  version): a throwaway VM, probed, always terminated. A failing smoke exits non-zero, which fails
  ``pulumi up``. Its JSON result is exposed as ``result``.
* ``SessionRun`` (off by default in the stack config) keeps one MicroVM running for the stack:
  create = ``microvms run --wait --terminate-on-failure``, delete = ``microvms terminate --wait`` on the id from the
  create's stdout, so ``pulumi destroy`` leaves nothing running.

Every input reaches the CLI through the command's ``environment`` (``MICROVMS_*``), never argv,
and a run-hook payload only through ``stdin`` (stored as a secret). The CLI prints no token.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_command import local

from components.config import SessionRunSettings, SmokeTestSettings
from microvms import env
from microvms.smoke import backstop_seconds

SMOKE_TEST_TYPE = "lambda-microvms:runs:SmokeTest"
SESSION_RUN_TYPE = "lambda-microvms:runs:SessionRun"
#: Extra time the engine allows the smoke command beyond its own timeout (run + terminate).
COMMAND_TIMEOUT_MARGIN_SECONDS = 120


def cli_command(interpreter: str, *args: str) -> str:
    """The shell line ``<interpreter> -m microvms --output json <args>`` (inputs come via env)."""
    return " ".join(
        shlex.quote(p) for p in (interpreter, "-m", "microvms", "--output", "json", *args)
    )


def _csv(values: Sequence[str] | None) -> str:
    return ",".join(values or ())


@dataclass
class RunArgs:
    """What ``SmokeTestArgs`` and ``SessionRunArgs`` share: which image runs, where, as whom."""

    image_arn: pulumi.Input[str]
    """ARN of the image to run (``arn:aws:lambda:<region>:<account>:microvm-image:<name>``)."""
    region: pulumi.Input[str]
    """Region of the image (also used to expand managed connector names)."""
    image_version: pulumi.Input[str] | None = None
    """The version to run; None runs the image's active version (what a new build makes)."""
    rerun_on: pulumi.Input[str] | None = None
    """A value whose change re-runs the command (default: ``image_version``). The program passes
    the image's build fingerprint: known in a preview, so an update that builds no version (tags)
    previews no re-run, and one that does previews exactly one."""
    execution_role_arn: pulumi.Input[str] | None = None
    """Execution role for the VM (optional; the API allows none)."""
    ingress_connectors: Sequence[str] = SmokeTestSettings.ingress_connectors
    """Managed names or connector ARNs."""
    egress_connectors: Sequence[str] = SmokeTestSettings.egress_connectors
    """Managed names or connector ARNs."""
    max_duration_seconds: pulumi.Input[int] | None = None
    """``maximumDurationInSeconds`` (1..28800; the service default is 28800); for the smoke test
    a ceiling, see ``SmokeTestArgs``."""
    microvms_endpoint: pulumi.Input[str] | None = None
    """Override for the lambda-microvms API (local stack: the emulator URL)."""
    proxy_url: pulumi.Input[str] | None = None
    """Where endpoint traffic goes locally (the emulator URL); live traffic needs none."""
    interpreter: str = field(default_factory=lambda: sys.executable)
    """Python of the project environment (has ``microvms`` importable)."""


def _run_environment(args: RunArgs) -> dict[str, pulumi.Input[str]]:
    """What both commands pass the CLI: the image, its connectors, the role, the endpoints."""
    variables: dict[str, pulumi.Input[str]] = {
        env.REGION: args.region,
        env.IMAGE_ARN: args.image_arn,
        env.INGRESS: _csv(args.ingress_connectors),
        env.EGRESS: _csv(args.egress_connectors),
        env.OUTPUT: "json",
        "PYTHONUNBUFFERED": "1",
    }
    if args.image_version is not None:
        variables[env.IMAGE_VERSION] = args.image_version
    if args.execution_role_arn:
        variables[env.EXECUTION_ROLE_ARN] = args.execution_role_arn
    if args.microvms_endpoint:
        variables[env.AWS_ENDPOINT_URL] = args.microvms_endpoint
    if args.proxy_url:
        variables[env.PROXY_URL] = args.proxy_url
    return variables


def parse_result(stdout: str | None) -> dict[str, Any] | None:
    """The JSON document the CLI printed (None while unknown, e.g. during preview)."""
    if not stdout:
        return None
    try:
        document = json.loads(stdout)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return {"error": "the command did not print a JSON document", "raw": stdout[-500:]}
    return document


# ------------------------------------------------------------------------------------ SmokeTest


@dataclass
class SmokeTestArgs(RunArgs):
    """Inputs of ``SmokeTest``. Defaults are ``components.config.SmokeTestSettings``'s.

    ``max_duration_seconds`` is the stack's ``maximumDurationSeconds`` as a ceiling for the
    throwaway VM: its ``maximumDurationInSeconds`` becomes ``min(this, timeout_seconds + 120)``.
    None (the default) leaves the backstop to the CLI (``timeout_seconds + 120``)."""

    path: pulumi.Input[str] = SmokeTestSettings.path
    """Path probed through the VM endpoint."""
    expected_status: pulumi.Input[int] = SmokeTestSettings.expected_status
    """HTTP status the probe must answer."""
    timeout_seconds: pulumi.Input[int] = SmokeTestSettings.timeout_seconds
    """Budget for run + probe; the VM's ``maximumDurationInSeconds`` backstop is this + 120 s."""
    port: pulumi.Input[int] = 8080
    """Guest port probed."""
    enabled: bool = SmokeTestSettings.enabled
    """False registers the component without a command (``result`` is None)."""


def smoke_max_duration(max_duration_seconds: int, timeout_seconds: float) -> int:
    """The smoke VM's ``maximumDurationInSeconds``: the stack's ceiling or the CLI's backstop,
    whichever is shorter (the VM is terminated long before either in a normal run)."""
    return min(int(max_duration_seconds), backstop_seconds(timeout_seconds))


def smoke_environment(args: SmokeTestArgs) -> dict[str, pulumi.Input[str]]:
    """The command's environment: every CLI input as a ``MICROVMS_*`` variable."""
    variables = _run_environment(args)
    variables[env.PROBE_PATH] = args.path
    variables[env.PROBE_PORT] = pulumi.Output.from_input(args.port).apply(str)
    variables[env.EXPECT_STATUS] = pulumi.Output.from_input(args.expected_status).apply(str)
    variables[env.TIMEOUT_SECONDS] = pulumi.Output.from_input(args.timeout_seconds).apply(str)
    if args.max_duration_seconds is not None:
        # No idle policy on purpose: the VM lives seconds and is always terminated; the duration
        # backstop is far tighter than any idle policy (maxIdle >= 60 s plus the suspended time)
        # and an idle suspend could only make a slow start fail the probe.
        variables[env.MAX_DURATION_SECONDS] = pulumi.Output.all(
            args.max_duration_seconds, args.timeout_seconds
        ).apply(lambda v: str(smoke_max_duration(v[0], v[1])))
    return variables


class SmokeTest(pulumi.ComponentResource):
    """Proves each new image version works: run, probe, always terminate. Fails ``pulumi up``."""

    result: pulumi.Output[Any]
    command: local.Command | None

    def __init__(self, name: str, args: SmokeTestArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(SMOKE_TEST_TYPE, name, None, opts)
        self.command = self._create_command(name, args) if args.enabled else None
        self.result = (
            self.command.stdout.apply(parse_result)
            if self.command
            else pulumi.Output.from_input(None)
        )
        self.register_outputs({"result": self.result})

    def _create_command(self, name: str, args: SmokeTestArgs) -> local.Command:
        return local.Command(
            f"{name}-smoke",
            create=cli_command(args.interpreter, "smoke"),
            environment=smoke_environment(args),
            # A new image version (or a new image) re-runs the smoke test.
            triggers=[args.image_arn, _rerun_key(args.rerun_on, args.image_version)],
            opts=pulumi.ResourceOptions(
                parent=self,
                # stderr is free text from the child; keep it out of plain state.
                additional_secret_outputs=["stderr"],
                custom_timeouts=pulumi.CustomTimeouts(
                    create=f"{_max_seconds(args.timeout_seconds)}s"
                ),
            ),
        )


def _rerun_key(
    rerun_on: pulumi.Input[str] | None, image_version: pulumi.Input[str] | None
) -> pulumi.Input[str] | None:
    return rerun_on if rerun_on is not None else image_version


def _max_seconds(timeout: pulumi.Input[int]) -> int:
    """Engine-side create timeout: the smoke budget plus a margin (an Output budget → 1 h)."""
    base = timeout if isinstance(timeout, int) else 3600
    return base + COMMAND_TIMEOUT_MARGIN_SECONDS


# ------------------------------------------------------------------------------------ SessionRun


@dataclass
class SessionRunArgs(RunArgs):
    """Inputs of ``SessionRun``: one long-lived MicroVM for the stack; a new version (or
    ``rerun_on``) replaces the VM (new one up, old one terminated)."""

    ingress_connectors: Sequence[str] = SessionRunSettings.ingress_connectors
    idle_policy: Mapping[str, Any] | None = None
    """``{"maxIdleDurationSeconds", "suspendedDurationSeconds", "autoResumeEnabled"}`` or None."""
    run_hook_payload: pulumi.Input[str] | None = None
    """Sent on stdin (never argv), stored as a secret."""


def session_environment(args: SessionRunArgs) -> dict[str, pulumi.Input[str]]:
    variables = _run_environment(args)
    if args.max_duration_seconds is not None:
        variables[env.MAX_DURATION_SECONDS] = pulumi.Output.from_input(
            args.max_duration_seconds
        ).apply(str)
    if args.idle_policy:
        policy = args.idle_policy
        variables[env.MAX_IDLE_SECONDS] = str(int(policy["maxIdleDurationSeconds"]))
        variables[env.SUSPENDED_SECONDS] = str(int(policy["suspendedDurationSeconds"]))
        variables[env.AUTO_RESUME] = "true" if policy["autoResumeEnabled"] else "false"
    if args.run_hook_payload is not None:
        variables[env.PAYLOAD_FILE] = "-"
    return variables


class SessionRun(pulumi.ComponentResource):
    """A long-lived MicroVM whose lifetime is the stack's: ``pulumi destroy`` terminates it."""

    microvm_id: pulumi.Output[str | None]
    endpoint: pulumi.Output[str | None]

    def __init__(self, name: str, args: SessionRunArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(SESSION_RUN_TYPE, name, None, opts)
        payload = (
            pulumi.Output.secret(args.run_hook_payload)
            if args.run_hook_payload is not None
            else None
        )
        self.command = local.Command(
            f"{name}-run",
            # A failed wait terminates the VM: a failed create leaves no state to delete from.
            create=cli_command(args.interpreter, "run", "--wait", "--terminate-on-failure"),
            # PULUMI_COMMAND_STDOUT holds the create's JSON (add_previous_output_in_env).
            delete=cli_command(
                args.interpreter,
                "terminate",
                "--wait",
                "--missing-ok",
                "--from-json-env",
                "PULUMI_COMMAND_STDOUT",
            ),  # fmt: skip
            environment=session_environment(args),
            stdin=payload,
            add_previous_output_in_env=True,
            triggers=[args.image_arn, _rerun_key(args.rerun_on, args.image_version)],
            # stdin mirrors the secret payload input; keep it secret in the outputs too.
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stderr", "stdin"]),
        )
        result = self.command.stdout.apply(parse_result)
        self.microvm_id = result.apply(lambda r: (r or {}).get("microvmId"))
        self.endpoint = result.apply(lambda r: (r or {}).get("endpoint"))
        self.register_outputs({"microvmId": self.microvm_id, "endpoint": self.endpoint})
