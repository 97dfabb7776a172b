"""MicroVM images and runs: capabilities, plaintext secrets in the environment, run limits."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from graph import (
    COMMAND,
    IMAGE_TYPES,
    MICROVM,
    ReportViolation,
    Res,
    guarded,
    unverifiable,
)
from iam_docs import is_unknown
from policy_metadata import meta
from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy
from sdk_patches import is_secret

MAX_DURATION_SECONDS = 28800  # L-B430C318 and the RunMicrovm model's maximum
MIN_IDLE_SECONDS = 60  # IdlePolicy.maxIdleDurationSeconds minimum (model)
MAX_IDLE_SECONDS = 28800  # AWS docs; the model has no maximum


# --------------------------------------------------------------------------------------------
# Pure checks
# --------------------------------------------------------------------------------------------

SECRET_NAME = re.compile(
    r"(SECRET|PASSW(OR)?D|PASSPHRASE|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL|AUTH|"
    r"CLIENT_?SECRET|SIGNING_?KEY|CONN(ECTION)?_?STR(ING)?|DSN)",
    re.IGNORECASE,
)
SECRET_VALUE = [
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (
        re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{30,}"),
        "a GitHub token",
    ),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"\bsk-(ant-|proj-)?[A-Za-z0-9_-]{20,}"), "an API secret key"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\."), "a JWT"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "credentials in a URL"),
]
# Values that name where a secret lives rather than containing it.
REFERENCE_VALUE = re.compile(
    r"^(arn:aws[a-z-]*:(secretsmanager|ssm|kms):|\{\{resolve:|\$\{)", re.IGNORECASE
)


def plaintext_secret_findings(variables: Any, where: str) -> list[str]:
    """Environment variables whose name or value looks like a secret and that are not secrets."""
    if variables is None:
        return []
    if is_unknown(variables):
        if is_secret(variables):
            return []
        return [unverifiable(where, "environmentVariables", "use known names")]
    if not isinstance(variables, dict):
        return []
    out = []
    for name, value in sorted(variables.items()):
        if is_secret(value) or not isinstance(value, str):
            continue
        if is_unknown(value):
            if SECRET_NAME.search(name):
                out.append(
                    unverifiable(
                        where, f"environmentVariables.{name}", "pass it as a Pulumi secret"
                    )
                )
            continue
        if not value or REFERENCE_VALUE.match(value):
            continue
        kind = next((label for pattern, label in SECRET_VALUE if pattern.search(value)), None)
        if kind or SECRET_NAME.search(name):
            why = f"its value looks like {kind}" if kind else "its name looks like a secret"
            out.append(
                f"{where}: environmentVariables.{name} is plaintext and {why}; it is stored in the "
                "image definition and the Pulumi state in clear. Fix: move it to the stack's "
                "secretEnvironmentVariables (pulumi config set --secret) so it stays a Pulumi secret."
            )
    return out


def capabilities_findings(capabilities: Any, where: str) -> list[str]:
    if is_unknown(capabilities):
        return [unverifiable(where, "additionalOsCapabilities", "use a literal list")]
    values = capabilities if isinstance(capabilities, list) else []
    if any(isinstance(c, str) and c.upper() == "ALL" for c in values):
        return [
            f"{where}: additionalOsCapabilities ['ALL'] grants the guest every Linux capability "
            "(e.g. CAP_SYS_ADMIN, raw sockets). Fix: remove it unless the workload needs it."
        ]
    return []


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _show(value: Any) -> str:
    """Wire numbers are doubles: show 900.0 as 900."""
    number = _int(value)
    return str(number) if number is not None else repr(value)


def run_limit_findings(idle: Any, max_duration: Any, where: str, duration_key: str) -> list[str]:
    out = []
    if max_duration is not None:
        if is_unknown(max_duration):
            out.append(unverifiable(where, duration_key, "use a literal number"))
        else:
            seconds = _int(max_duration)
            if seconds is None or not 1 <= seconds <= MAX_DURATION_SECONDS:
                out.append(
                    f"{where}: {duration_key}={_show(max_duration)} is outside 1..{MAX_DURATION_SECONDS} "
                    f"seconds (the 8-hour service maximum). Fix: use a value in that range."
                )
    if idle is None:
        return out
    if is_unknown(idle):
        return [*out, unverifiable(where, "idlePolicy", "use literal values")]
    if not isinstance(idle, dict):
        return [*out, f"{where}: idlePolicy must be an object. Fix: set all three members."]
    missing = [
        k
        for k in ("maxIdleDurationSeconds", "suspendedDurationSeconds", "autoResumeEnabled")
        if k not in idle
    ]
    if missing:
        out.append(
            f"{where}: idlePolicy lacks {', '.join(missing)}; the service requires all three members "
            "(autoResumeEnabled is enforced). Fix: set them."
        )
    idle_seconds = idle.get("maxIdleDurationSeconds")
    if idle_seconds is not None and not is_unknown(idle_seconds):
        seconds = _int(idle_seconds)
        if seconds is None or not MIN_IDLE_SECONDS <= seconds <= MAX_IDLE_SECONDS:
            out.append(
                f"{where}: idlePolicy.maxIdleDurationSeconds={_show(idle_seconds)} is outside "
                f"{MIN_IDLE_SECONDS}..{MAX_IDLE_SECONDS}. Fix: use a value in that range."
            )
    suspended = idle.get("suspendedDurationSeconds")
    if suspended is not None and not is_unknown(suspended):
        seconds = _int(suspended)
        if seconds is None or seconds < 0:
            out.append(
                f"{where}: idlePolicy.suspendedDurationSeconds={_show(suspended)} must be >= 0."
            )
    auto = idle.get("autoResumeEnabled")
    if (
        auto is not None
        and not is_unknown(auto)
        and not isinstance(auto, bool)
        and auto not in ("true", "false")
    ):
        out.append(f"{where}: idlePolicy.autoResumeEnabled={auto!r} must be a boolean.")
    if any(
        is_unknown(idle.get(k))
        for k in ("maxIdleDurationSeconds", "suspendedDurationSeconds", "autoResumeEnabled")
    ):
        out.append(unverifiable(where, "idlePolicy", "use literal values"))
    return out


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


def _where(args: ResourceValidationArgs) -> str:
    return f"{args.resource_type} '{args.name}'"


def _image_input_policy(
    name: str, description: str, key: str, findings: Callable[[Any, str], list[str]]
) -> ResourceValidationPolicy:
    """An advisory policy that reports ``findings`` on one input (``key``) of every image."""

    @guarded(name)
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in IMAGE_TYPES:
            return
        res = Res.from_args(args)
        for message in findings(res.get(key), _where(args)):
            report_violation(message)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        enforcement_level=EnforcementLevel.ADVISORY,
        validate=validate,
        **meta(name),
    )


image_capabilities_all = _image_input_policy(
    "image-capabilities-all",
    "Flags MicroVM images that grant the guest every OS capability (additionalOsCapabilities: ['ALL']).",
    "additionalOsCapabilities",
    capabilities_findings,
)

image_env_plaintext_secrets = _image_input_policy(
    "image-env-plaintext-secrets",
    "Flags image environment variables that look like secrets but are not Pulumi secrets.",
    "environmentVariables",
    plaintext_secret_findings,
)

# How components.runs passes run limits to `python -m microvms` (environment, never argv).
COMMAND_DURATION_KEY = "MICROVMS_MAX_DURATION_SECONDS"
COMMAND_IDLE_KEYS = {
    "MICROVMS_MAX_IDLE_SECONDS": "maxIdleDurationSeconds",
    "MICROVMS_SUSPENDED_SECONDS": "suspendedDurationSeconds",
    "MICROVMS_AUTO_RESUME": "autoResumeEnabled",
}


def command_idle_policy(env: dict[str, Any]) -> dict[str, Any] | None:
    """The idle policy a command's MICROVMS_* environment describes (None if it sets none)."""
    if not any(k in env for k in COMMAND_IDLE_KEYS):
        return None
    idle: dict[str, Any] = {}
    for key, member in COMMAND_IDLE_KEYS.items():
        if key in env:
            value = env[key]
            if member == "autoResumeEnabled" and isinstance(value, str) and not is_unknown(value):
                value = {"true": True, "false": False}.get(value.lower(), value)
            idle[member] = value
    return idle


@guarded("run-limits")
def _validate_run_limits(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in (MICROVM, COMMAND):
        return
    res = Res.from_args(args)
    where = _where(args)
    if args.resource_type == MICROVM:
        findings = run_limit_findings(
            res.get("idlePolicy"),
            res.get("maximumDurationInSeconds"),
            where,
            "maximumDurationInSeconds",
        )
    elif args.resource_type == COMMAND:
        env = res.get("environment")
        if not isinstance(env, dict):
            return
        findings = run_limit_findings(
            command_idle_policy(env), env.get(COMMAND_DURATION_KEY), where, COMMAND_DURATION_KEY
        )
    else:
        return
    for message in findings:
        report_violation(message)


run_limits = ResourceValidationPolicy(
    name="run-limits",
    description=(
        "MicroVM idle policies and maximum durations must be within service limits "
        f"(maximum duration 1..{MAX_DURATION_SECONDS} s, idle {MIN_IDLE_SECONDS}..{MAX_IDLE_SECONDS} s, "
        "all three idle members set)."
    ),
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate_run_limits,
    **meta("run-limits"),
)
