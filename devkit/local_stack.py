"""The local stack: the whole program on loopback emulators, no AWS account and no Pulumi Cloud.

``make up STACK=local`` / ``make down STACK=local`` call this module, which drives the Pulumi CLI;
the emulators it needs are started, reused and stopped by :mod:`devkit.services`::

    python -m devkit.local_stack up               # emulators + pulumi up --policy-pack, outputs, smoke test
    python -m devkit.local_stack preview          # emulators + pulumi preview --diff --policy-pack
    python -m devkit.local_stack down             # pulumi destroy, then stop the emulators
    python -m devkit.local_stack check            # what is running, where, and whether the CLI is there
    python -m devkit.local_stack start-emulators  # only the background services
    python -m devkit.local_stack stop-emulators

Pulumi state lives in ``.pulumi-local/state`` (file backend, selected with ``PULUMI_BACKEND_URL`` so
your global ``pulumi login`` is left alone); secrets use the passphrase provider with the documented,
deliberately public passphrase ``local-only-not-secret``. Fake AWS credentials only; no real
credential, profile or endpoint from your shell reaches the local stack.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from devkit.services import (
    REPO,
    SANDBOX_DIR,
    START_ORDER,
    STATE_DIR,
    LocalStackError,
    Ports,
    Service,
    fake_aws_env,
    healthy,
    ports_from_env,
    read_service,
    service_alive,
    start_services,
    stop_services,
)

STACK = "local"
PULUMI_CLI_VERSION = "3.272.0"
LOCAL_PASSPHRASE = "local-only-not-secret"
EXIT_NO_CLI = 3
EXIT_SETUP = 4
EXIT_NO_PLUGINS = 6
#: The Python packages whose resource plugins the program needs (each ships pulumi-plugin.json).
PLUGIN_PACKAGES = ("pulumi_aws", "pulumi_command")
INSTALL_DOCS = "https://www.pulumi.com/docs/iac/download-install/"
# pulumi-aws endpoint keys the local stack must override (CloudWatch Logs accepts either name).
AWS_ENDPOINT_KEYS = ("s3", "iam", "sts", ("cloudwatchlogs", "logs"))


# --------------------------------------------------------------------------- the Pulumi CLI


def find_pulumi(path: str | None = None) -> str | None:
    return shutil.which("pulumi", path=path)


def missing_cli_message() -> str:
    return (
        "The Pulumi CLI is not installed: `pulumi` was not found on PATH.\n"
        f"`make up STACK=local` needs the Pulumi CLI {PULUMI_CLI_VERSION} (the version the pinned "
        "Python SDK is built for). Install it with:\n"
        f"    curl -fsSL https://get.pulumi.com | sh -s -- --version {PULUMI_CLI_VERSION}\n"
        '    export PATH="$HOME/.pulumi/bin:$PATH"\n'
        f"or see {INSTALL_DOCS}\n"
        "No account is needed: the local stack uses a file backend in .pulumi-local/ and loopback "
        "emulators. Nothing was started.\n"
        "Without the CLI you still get the offline picture: `make test` and "
        "`make policy-check STACK=local`."
    )


# --------------------------------------------------------------------------- resource plugins


def required_plugins(packages: tuple[str, ...] = PLUGIN_PACKAGES) -> list[tuple[str, str]]:
    """(name, version) of the resource plugin each installed SDK package is built for, read from
    its ``pulumi-plugin.json`` (the file the engine reads; the package itself is not imported)."""
    import importlib.util

    found = []
    for package in packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        meta = Path(next(iter(spec.submodule_search_locations))) / "pulumi-plugin.json"
        if meta.is_file():
            data = json.loads(meta.read_text())
            if data.get("resource", True) and data.get("name") and data.get("version"):
                found.append((str(data["name"]), str(data["version"]).removeprefix("v")))
    return found


def missing_plugins(required: list[tuple[str, str]], listed: list[dict]) -> list[tuple[str, str]]:
    """The ``required`` resource plugins absent from ``pulumi plugin ls --json``'s answer."""
    have = {
        (str(p.get("name")), str(p.get("version", "")).removeprefix("v"))
        for p in listed
        if p.get("kind", "resource") == "resource"
    }
    return [plugin for plugin in required if plugin not in have]


def missing_plugins_message(failures: list[tuple[str, str, str]]) -> str:
    lines = [
        "The Pulumi resource plugins this program needs are not installed"
        + (", and could not be downloaded:" if any(why for *_, why in failures) else ":")
    ]
    for name, version, why in failures:
        lines.append(f"  - pulumi-resource-{name} v{version}" + (f": {why}" if why else ""))
    lines.append(
        "`make up STACK=local` runs the real Pulumi engine, which loads them from "
        "$PULUMI_HOME/plugins (default ~/.pulumi/plugins). Install them where get.pulumi.com "
        "is reachable:"
    )
    lines += [f"    pulumi plugin install resource {n} v{v}" for n, v, _ in failures]
    lines.append("or from a release archive you copied to this machine:")
    lines += [
        f"    pulumi plugin install resource {n} v{v} --file pulumi-resource-{n}-v{v}-<os>-<arch>.tar.gz"
        for n, v, _ in failures
    ]
    lines.append(
        "Nothing was started. Without them: `make sandbox` runs a MicroVM locally, and "
        "`make policy-check STACK=local` and `make test` give the offline picture."
    )
    return "\n".join(lines)


def ensure_plugins(pulumi: str, env: dict[str, str]) -> None:
    """Install the missing resource plugins (``pulumi plugin install``, with progress), or exit
    :data:`EXIT_NO_PLUGINS` with :func:`missing_plugins_message` before any service starts.

    Without this the engine discovers a missing plugin halfway through the preview and prints a
    page of tracebacks. ``PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true`` means: never download.
    """
    listed = _run([pulumi, "plugin", "ls", "--json"], env, check=False, capture=True)
    try:
        plugins = json.loads(listed.stdout or "[]") if listed.returncode == 0 else []
    except json.JSONDecodeError:
        plugins = []
    missing = missing_plugins(required_plugins(), plugins or [])
    if not missing:
        return
    no_download = env.get("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "").lower() in (
        "1",
        "true",
    )
    failures = []
    for name, version in missing:
        if no_download:
            failures.append((name, version, ""))
            continue
        print(f"Installing the Pulumi plugin pulumi-resource-{name} v{version} (first run only)...")
        sys.stdout.flush()
        proc = _run(
            [pulumi, "plugin", "install", "resource", name, f"v{version}"],
            env,
            check=False,
            capture=True,
        )
        if proc.returncode != 0:
            text = (proc.stderr or proc.stdout or "").strip().splitlines()
            failures.append((name, version, text[-1] if text else f"exit {proc.returncode}"))
    if failures:
        print(missing_plugins_message(failures), file=sys.stderr)
        raise SystemExit(EXIT_NO_PLUGINS)


# --------------------------------------------------------------------------- pulumi environment


def pulumi_env(
    ports: Ports, *, state_dir: Path = STATE_DIR, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment every pulumi command of the local stack runs with."""
    base = dict(os.environ if base is None else base)
    env = {k: v for k, v in base.items() if not k.startswith("AWS_") and k != "MICROVMS_PROXY_URL"}
    env.update(fake_aws_env())
    env.update(
        {
            "PULUMI_BACKEND_URL": f"file://{state_dir / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": LOCAL_PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Our provider, the operator CLI and the smoke test reach the emulator through these.
            "AWS_ENDPOINT_URL_LAMBDA_MICROVMS": ports.emulator_url,
            "MICROVMS_PROXY_URL": ports.emulator_url,
            # boto3 code (CLI, provider helpers) that talks to the plain AWS services.
            "AWS_ENDPOINT_URL_S3": ports.moto_url,
            "AWS_ENDPOINT_URL_IAM": ports.moto_url,
            "AWS_ENDPOINT_URL_STS": ports.moto_url,
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": ports.moto_url,
        }
    )
    env.pop("PULUMI_CONFIG_PASSPHRASE_FILE", None)
    return env


def _load_yaml(path: Path) -> dict:
    import yaml  # pyyaml ships with the pulumi SDK

    return yaml.safe_load(path.read_text()) or {}


def local_config_path() -> Path:
    """``Pulumi.local.yaml``, or the stack file ``LOCAL_STACK_PULUMI_CONFIG`` names (a copy with
    other ports, say): the preflight checks it and every pulumi command gets it as
    ``--config-file``."""
    return Path(os.environ.get("LOCAL_STACK_PULUMI_CONFIG") or REPO / "Pulumi.local.yaml")


def config_file_args() -> list[str]:
    """``--config-file <file>`` when ``LOCAL_STACK_PULUMI_CONFIG`` names another stack file."""
    return (
        ["--config-file", str(local_config_path())]
        if os.environ.get("LOCAL_STACK_PULUMI_CONFIG")
        else []
    )


def config_endpoint_problems(ports: Ports, config_path: Path | None = None) -> list[str]:
    """Where ``Pulumi.local.yaml`` does not send a service to the emulators on ``ports``."""
    path = config_path or local_config_path()
    if not path.exists():
        return [f"{path.name} is missing"]
    cfg = _load_yaml(path).get("config") or {}
    problems = []
    aws_eps = cfg.get("aws:endpoints")
    merged: dict[str, str] = {}
    if isinstance(aws_eps, list):
        for item in aws_eps:
            if isinstance(item, dict):
                merged.update({k: str(v) for k, v in item.items()})
    elif isinstance(aws_eps, dict):
        merged = {k: str(v) for k, v in aws_eps.items()}
    else:
        problems.append("aws:endpoints is not set (a list of {service: url} maps)")
    for key in AWS_ENDPOINT_KEYS:
        names = key if isinstance(key, tuple) else (key,)
        got = [merged[n] for n in names if n in merged]
        if not got:
            problems.append(
                f"aws:endpoints has no {' / '.join(names)} entry (want {ports.moto_url})"
            )
        elif any(g.rstrip("/") != ports.moto_url for g in got):
            problems.append(f"aws:endpoints {names[0]} = {got[0]} (want {ports.moto_url})")
    ours = cfg.get("lambda-microvms:endpoints") or {}
    if not isinstance(ours, dict):
        problems.append("lambda-microvms:endpoints is not a map")
        ours = {}
    for key in ("microvms", "proxy"):
        got = ours.get(key)
        if got is None:
            problems.append(
                f"lambda-microvms:endpoints.{key} is not set (want {ports.emulator_url})"
            )
        elif str(got).rstrip("/") != ports.emulator_url:
            problems.append(f"lambda-microvms:endpoints.{key} = {got} (want {ports.emulator_url})")
    for key in ("s3", "iam", "sts", "logs"):
        got = ours.get(key)
        if got is not None and str(got).rstrip("/") != ports.moto_url:
            problems.append(f"lambda-microvms:endpoints.{key} = {got} (want {ports.moto_url})")
    return problems


def passphrase_matches_salt(salt: str, passphrase: str = LOCAL_PASSPHRASE) -> bool:
    """Whether a stack file's ``encryptionsalt`` was made with ``passphrase``.

    The passphrase provider stores ``v1:<salt>:v1:<nonce>:<AES-256-GCM("pulumi")>`` with a key of
    PBKDF2-SHA256(passphrase, salt, 1,000,000 rounds, 32 bytes) (pulumi's symmetric crypter).
    """
    import base64
    import hashlib

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    parts = salt.split(":")
    if len(parts) != 5 or parts[0] != "v1" or parts[2] != "v1":
        return False
    try:
        raw_salt, nonce, sealed = (base64.b64decode(p) for p in (parts[1], parts[3], parts[4]))
        key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), raw_salt, 1_000_000, 32)
        return AESGCM(key).decrypt(nonce, sealed, None) == b"pulumi"
    except (ValueError, InvalidTag):
        return False


def _policy_config() -> str:
    local = REPO / "policies" / "config" / "local.json"
    return str(
        (local if local.exists() else REPO / "policies" / "config" / "dev.json").relative_to(REPO)
    )


def _run(cmd: list[str], env: dict[str, str], *, check: bool = True, capture: bool = False):
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=REPO, env=env, text=True, capture_output=capture)
    if check and proc.returncode != 0:
        if capture:
            sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(proc.returncode)
    return proc


# Global flag on every pulumi command: never prompt (a missing answer fails instead of hanging).
NON_INTERACTIVE = "--non-interactive"


def select_command(pulumi: str) -> list[str]:
    return [pulumi, "stack", "select", STACK, NON_INTERACTIVE]


def init_command(pulumi: str) -> list[str]:
    return [pulumi, "stack", "init", STACK, "--secrets-provider", "passphrase", NON_INTERACTIVE]


def up_command(pulumi: str, *, refresh: bool) -> list[str]:
    cmd = [
        pulumi, "up", "--yes", "--stack", STACK, NON_INTERACTIVE,
        "--policy-pack", "policies", "--policy-pack-config", _policy_config(),
        *config_file_args(),
    ]  # fmt: skip
    if refresh:
        # Fresh emulators have no resources: let the engine notice before it plans.
        cmd.append("--refresh")
    return cmd


def preview_command(pulumi: str) -> list[str]:
    return [
        pulumi, "preview", "--diff", "--stack", STACK, NON_INTERACTIVE,
        "--policy-pack", "policies", "--policy-pack-config", _policy_config(),
        *config_file_args(),
    ]  # fmt: skip


def destroy_command(pulumi: str, *, refresh: bool) -> list[str]:
    cmd = [pulumi, "destroy", "--yes", "--skip-preview", "--stack", STACK, NON_INTERACTIVE]
    cmd += config_file_args()
    if refresh:
        cmd.append("--refresh")
    return cmd


def output_command(pulumi: str) -> list[str]:
    return [pulumi, "stack", "output", "--json", "--stack", STACK, NON_INTERACTIVE]


def _select_stack(pulumi: str, env: dict[str, str]) -> bool:
    """Select ``local``, creating it with the passphrase provider; True if it already existed."""
    (STATE_DIR / "state").mkdir(parents=True, exist_ok=True)
    found = _run(select_command(pulumi), env, check=False, capture=True)
    if found.returncode == 0:
        return True
    created = _run(init_command(pulumi), env, check=False, capture=True)
    if created.returncode != 0:
        sys.stderr.write(
            "could not select or create the local stack:\n"
            + found.stdout
            + found.stderr
            + created.stdout
            + created.stderr
        )
        raise SystemExit(created.returncode)
    return False


EXIT_SMOKE_FAILED = 5


def smoke_verdict(outputs: dict) -> tuple[str, bool]:
    """One line on the ``smokeTest`` output (``microvms smoke-test --output json``) and whether
    it passed. A missing/None result means the smoke test is disabled: not a failure."""
    result = outputs.get("smokeTest")
    if result is None:
        return "Smoke test: not run (smokeTest is disabled or not exported).", True
    if result == "[secret]":
        # The command's own exit status already gated `pulumi up`; only the display is hidden.
        return (
            "Smoke test: result is secret in the stack outputs; see it with "
            "`pulumi stack output smokeTest --show-secrets --stack local`.",
            True,
        )
    if not isinstance(result, dict):
        return f"Smoke test: FAILED (unexpected result {json.dumps(result)})", False
    if result.get("ok") is True:
        return (
            f"Smoke test: PASSED — GET {result.get('probePath')} on MicroVM "
            f"{result.get('microvmId')} answered {result.get('probeStatus')} "
            f"(expected {result.get('expectedStatus')}) in {result.get('totalSeconds')} s; "
            f"final state {result.get('finalState')}."
        ), True
    return (
        f"Smoke test: FAILED — {result.get('error') or json.dumps(result, sort_keys=True)}",
        False,
    )


def _print_outputs(pulumi: str, env: dict[str, str]) -> int:
    proc = _run(output_command(pulumi), env, check=False, capture=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        return proc.returncode
    outputs = json.loads(proc.stdout or "{}")
    print("\nStack outputs (local):")
    print(json.dumps(outputs, indent=2, sort_keys=True))
    line, ok = smoke_verdict(outputs)
    print("\n" + line)
    return 0 if ok else EXIT_SMOKE_FAILED


# --------------------------------------------------------------------------- commands


def _preflight(ports: Ports) -> str:
    pulumi = find_pulumi()
    if pulumi is None:
        print(missing_cli_message(), file=sys.stderr)
        raise SystemExit(EXIT_NO_CLI)
    problems = config_endpoint_problems(ports)
    if problems:
        print(
            "Pulumi.local.yaml does not point at the local emulators:\n  - "
            + "\n  - ".join(problems)
            + "\nUse the default ports (unset LOCAL_*_PORT) or make the file match.",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_SETUP)
    ensure_plugins(pulumi, pulumi_env(ports))
    return pulumi


def _start_and_report(ports: Ports) -> dict[str, Service]:
    services = start_services(ports)
    for svc in services.values():
        state = "reused" if svc.reused else "started"
        print(f"{svc.name:9s} {state:8s} {svc.url}  (pid {svc.pid}, log {svc.log})")
    return services


def cmd_up(args) -> int:
    ports = ports_from_env()
    pulumi = _preflight(ports)
    services = _start_and_report(ports)
    env = pulumi_env(ports)
    existed = _select_stack(pulumi, env)
    refresh = existed and not all(s.reused for s in services.values())
    rc = _run(up_command(pulumi, refresh=refresh), env, check=False).returncode
    if rc != 0:
        print(
            f"pulumi up failed with exit code {rc}; emulator logs in {STATE_DIR / 'logs'}",
            file=sys.stderr,
        )
        return rc
    return _print_outputs(pulumi, env)


def cmd_preview(args) -> int:
    ports = ports_from_env()
    pulumi = _preflight(ports)
    _start_and_report(ports)
    env = pulumi_env(ports)
    _select_stack(pulumi, env)
    return _run(preview_command(pulumi), env, check=False).returncode


def _stop_everything() -> str:
    """Stop the local stack's services and the sandbox's; one line saying what stopped."""
    stopped = stop_services()
    sandboxed = stop_services(SANDBOX_DIR)
    (SANDBOX_DIR / "sandbox.json").unlink(missing_ok=True)
    parts = [", ".join(stopped) and f"local stack: {', '.join(stopped)}"]
    parts.append(", ".join(sandboxed) and f"sandbox: {', '.join(sandboxed)}")
    return "Stopped: " + ("; ".join(p for p in parts if p) or "nothing was running") + "."


def cmd_down(args) -> int:
    ports = ports_from_env()
    pulumi = find_pulumi()
    if pulumi is None:
        # Nothing to destroy without the CLI; the emulators' resources lived in their memory.
        print(_stop_everything())
        kept = (STATE_DIR / "state").exists()
        print(
            "Note: the Pulumi CLI is not installed, so no `pulumi destroy` ran"
            + (
                "; the local stack's state in .pulumi-local/state is kept (the next "
                "`make up STACK=local` refreshes it against the fresh emulators)."
                if kept
                else " (there was no local stack to destroy)."
            )
        )
        return 0
    rc = 0
    if (STATE_DIR / "state").exists():
        services = _start_and_report(ports)
        env = pulumi_env(ports)
        if _run(select_command(pulumi), env, check=False, capture=True).returncode == 0:
            refresh = not all(s.reused for s in services.values())
            rc = _run(destroy_command(pulumi, refresh=refresh), env, check=False).returncode
    print(_stop_everything())
    return rc


def cmd_check(args) -> int:
    ports = ports_from_env()
    pulumi = find_pulumi()
    ok = True
    print(f"pulumi CLI: {pulumi or 'NOT FOUND (' + INSTALL_DOCS + ')'}")
    for name in START_ORDER:
        svc = read_service(STATE_DIR, name)
        alive = bool(svc and service_alive(svc))
        good = alive and healthy(name, ports)
        ok &= good
        where = getattr(ports, name)
        print(
            f"{name:9s} {'healthy' if good else 'running, not answering' if alive else 'stopped'}"
            f"  port {where}" + (f"  pid {svc.pid}" if alive and svc else "")
        )
    for problem in config_endpoint_problems(ports):
        ok = False
        print(f"Pulumi.local.yaml: {problem}")
    salt = (_load_yaml(local_config_path()) or {}).get("encryptionsalt")
    if salt and not passphrase_matches_salt(salt):
        ok = False
        print(f"Pulumi.local.yaml: encryptionsalt was not made with {LOCAL_PASSPHRASE!r}")
    return 0 if ok else 1


def cmd_start(args) -> int:
    _start_and_report(ports_from_env())
    return 0


def cmd_stop(args) -> int:
    print(_stop_everything())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.local_stack", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, text in (
        ("up", cmd_up, "start the emulators and deploy the local stack"),
        ("preview", cmd_preview, "start the emulators and preview the local stack"),
        ("down", cmd_down, "destroy the local stack, stop the emulators and the sandbox"),
        ("check", cmd_check, "report the CLI, the services and Pulumi.local.yaml"),
        ("start-emulators", cmd_start, "start (or reuse) only the background services"),
        ("stop-emulators", cmd_stop, "stop the background services"),
    ):
        sub.add_parser(name, help=text).set_defaults(fn=fn)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except LocalStackError as exc:
        print(f"local stack: {exc}", file=sys.stderr)
        return EXIT_SETUP


if __name__ == "__main__":
    raise SystemExit(main())
