"""The local stack: the whole program on loopback emulators, no AWS account and no Pulumi Cloud.

``make up STACK=local`` / ``make down STACK=local`` call this module::

    python -m scripts.local_stack up               # emulators + pulumi up --policy-pack, outputs, smoke test
    python -m scripts.local_stack preview          # emulators + pulumi preview --diff --policy-pack
    python -m scripts.local_stack down             # pulumi destroy, then stop the emulators
    python -m scripts.local_stack check            # what is running, where, and whether the CLI is there
    python -m scripts.local_stack start-emulators  # only the background services
    python -m scripts.local_stack stop-emulators

Background services (all on 127.0.0.1, fixed default ports so ``Pulumi.local.yaml`` can name them):

==========  =====  ==========================  ==========================================
service     port   environment override        what
==========  =====  ==========================  ==========================================
moto        4566   ``LOCAL_MOTO_PORT``          S3, IAM, STS, CloudWatch Logs (moto server)
emulator    4567   ``LOCAL_EMULATOR_PORT``      ``lambda-microvms`` API + per-VM endpoint proxy
app         18080  ``LOCAL_APP_PORT``           the image's app (guest port 8080) ...
hooks       19000  ``LOCAL_HOOK_PORT``          ... and its lifecycle hooks (guest port 9000)
shell       18022  ``LOCAL_SHELL_PORT``         the guest's shell (guest port 8022; ``make sandbox`` only)
==========  =====  ==========================  ==========================================

Each service runs under a small watchdog (``_watch``) that stops it after
``LOCAL_STACK_LIFETIME_SECONDS`` (default 7200), when its state file in ``.pulumi-local/services/``
is removed, or when an optional parent process dies. Logs go to ``.pulumi-local/logs/``.

Pulumi state lives in ``.pulumi-local/state`` (file backend, selected with ``PULUMI_BACKEND_URL`` so
your global ``pulumi login`` is left alone); secrets use the passphrase provider with the documented,
deliberately public passphrase ``local-only-not-secret``. Fake AWS credentials only; no real
credential, profile or endpoint from your shell reaches the local stack.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE_DIR = Path(os.environ.get("LOCAL_STACK_STATE_DIR") or REPO / ".pulumi-local")
#: ``make sandbox`` keeps its own services (and their records) here, apart from the local stack's.
SANDBOX_DIR = STATE_DIR / "sandbox"
STACK = "local"
PULUMI_CLI_VERSION = "3.272.0"
LOCAL_PASSPHRASE = "local-only-not-secret"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
DEFAULT_PORTS = {"moto": 4566, "emulator": 4567, "app": 18080, "hooks": 19000, "shell": 18022}
PORT_ENV = {
    "moto": "LOCAL_MOTO_PORT",
    "emulator": "LOCAL_EMULATOR_PORT",
    "app": "LOCAL_APP_PORT",
    "hooks": "LOCAL_HOOK_PORT",
    "shell": "LOCAL_SHELL_PORT",
}
#: Guest ports of the image (image/Dockerfile EXPOSE 8080 9000) and the platform's shell port.
GUEST_APP_PORT, GUEST_HOOK_PORT, GUEST_SHELL_PORT = 8080, 9000, 8022
DEFAULT_LIFETIME = 7200.0
EXIT_NO_CLI = 3
EXIT_SETUP = 4
INSTALL_DOCS = "https://www.pulumi.com/docs/iac/download-install/"
# pulumi-aws endpoint keys the local stack must override (CloudWatch Logs accepts either name).
AWS_ENDPOINT_KEYS = ("s3", "iam", "sts", ("cloudwatchlogs", "logs"))


class LocalStackError(RuntimeError):
    """Setup failed before or while starting services; the message says what to do."""


# --------------------------------------------------------------------------- ports and URLs


@dataclass(frozen=True)
class Ports:
    moto: int = DEFAULT_PORTS["moto"]
    emulator: int = DEFAULT_PORTS["emulator"]
    app: int = DEFAULT_PORTS["app"]
    hooks: int = DEFAULT_PORTS["hooks"]
    #: The guest's shell server (devkit.sandbox_shell); None = no shell upstream (``make up``).
    shell: int | None = None

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator}"

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app}"

    @property
    def hooks_url(self) -> str:
        return f"http://127.0.0.1:{self.hooks}"

    @property
    def shell_url(self) -> str | None:
        return None if self.shell is None else f"http://127.0.0.1:{self.shell}"


def ports_from_env(env: dict[str, str] | None = None) -> Ports:
    """Ports from ``LOCAL_*_PORT`` variables, defaulting to the fixed ports ``Pulumi.local.yaml`` uses."""
    env = os.environ if env is None else env
    values = {}
    for name, var in PORT_ENV.items():
        if name == "shell":
            continue  # only the sandbox runs a shell; it picks the port (devkit.sandbox)
        raw = env.get(var, "")
        if raw == "":
            values[name] = DEFAULT_PORTS[name]
            continue
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            raise LocalStackError(f"{var} must be a TCP port from 1 to 65535, got {raw!r}")
        values[name] = int(raw)
    return Ports(**values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports() -> Ports:
    """Four distinct free loopback ports (tests; the real stack uses the fixed defaults)."""
    seen: set[int] = set()
    while len(seen) < 4:
        seen.add(free_port())
    a, b, c, d = sorted(seen)
    return Ports(moto=a, emulator=b, app=c, hooks=d)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


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


# --------------------------------------------------------------------------- services


@dataclass
class Service:
    name: str
    pid: int
    port: int
    url: str
    log: str
    started_at: float
    lifetime: float
    reused: bool = False


def _services_dir(state_dir: Path) -> Path:
    return state_dir / "services"


def _state_file(state_dir: Path, name: str) -> Path:
    return _services_dir(state_dir) / f"{name}.json"


def _health_url(name: str, ports: Ports) -> str:
    return {
        "moto": f"{ports.moto_url}/moto-api/data.json",
        "emulator": f"{ports.emulator_url}/_emulator/calls",
        "app": f"{ports.app_url}/health",
        "shell": f"{ports.shell_url}/health",
    }[name]


def healthy(name: str, ports: Ports, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(_health_url(name, ports), timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _command(name: str, ports: Ports, python: str, env: dict[str, str]) -> list[str]:
    if name == "moto":
        return [python, "-m", "devkit.moto_server", "-H", "127.0.0.1", "-p", str(ports.moto)]
    if name == "app":
        return [python, str(REPO / "image" / "app" / "main.py")]
    if name == "emulator":
        return [
            python, "-m", "microvms.emulator",
            "--host", "127.0.0.1", "--port", str(ports.emulator),
            "--account-id", env.get("LOCAL_ACCOUNT_ID", ACCOUNT_ID),
            "--build-seconds", env.get("LOCAL_EMULATOR_BUILD_SECONDS", "2"),
            "--run-seconds", env.get("LOCAL_EMULATOR_RUN_SECONDS", "1"),
            "--upstream", f"{GUEST_APP_PORT}={ports.app_url}",
            "--upstream", f"{GUEST_HOOK_PORT}={ports.hooks_url}",
            *(["--upstream", f"{GUEST_SHELL_PORT}={ports.shell_url}"] if ports.shell else []),
            "--s3-endpoint", ports.moto_url,
            "--iam-endpoint", ports.moto_url,
        ]  # fmt: skip
    if name == "shell":
        return [
            python, "-m", "devkit.sandbox_shell", "--port", str(ports.shell),
            "--workdir", env.get("SANDBOX_SHELL_WORKDIR") or str(SANDBOX_DIR / "workspace"),
        ]  # fmt: skip
    raise ValueError(f"unknown service {name!r}: one of {', '.join(ALL_SERVICES)}")


def _service_env(name: str, ports: Ports, base: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("AWS_") and k != "MICROVMS_PROXY_URL"}
    env.update(fake_aws_env())
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + base.get("PYTHONPATH", "")
    if name == "app":
        env.update(HOST="127.0.0.1", PORT=str(ports.app), HOOK_PORT=str(ports.hooks))
    return env


def _cmdline(pid: int) -> str:
    """The process's command line, from /proc on Linux or ``ps`` elsewhere (macOS)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return " ".join(a.decode(errors="replace") for a in raw.split(b"\0") if a)
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return ""  # Linux: no such process
    except OSError:
        return ""
    try:
        proc = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip()


def _is_our_watcher(pid: int, name: str) -> bool:
    cmd = _cmdline(pid) + " "
    return "scripts.local_stack _watch " in cmd and f" --name {name} " in cmd


def read_service(state_dir: Path, name: str) -> Service | None:
    try:
        data = json.loads(_state_file(state_dir, name).read_text())
        return Service(**{k: data[k] for k in Service.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def service_alive(svc: Service) -> bool:
    return _is_our_watcher(svc.pid, svc.name)


def _start_one(
    name: str,
    ports: Ports,
    state_dir: Path,
    *,
    lifetime: float,
    parent_pid: int | None,
    python: str,
    env: dict[str, str],
    timeout: float,
) -> Service:
    port = ports.hooks if name == "hooks" else getattr(ports, name)
    if port_open(port):
        if state_dir != SANDBOX_DIR and any(
            (svc := read_service(SANDBOX_DIR, n)) and svc.port == port for n in ALL_SERVICES
        ):
            raise LocalStackError(
                f"port {port} (service {name}) is held by the sandbox (`make sandbox`); "
                "stop it first with `make down`"
            )
        raise LocalStackError(
            f"port {port} (service {name}) is already in use by a process this tool did not start; "
            f"stop it or choose another port with {PORT_ENV[name]}=<port> "
            "(then Pulumi.local.yaml's endpoints must match)"
        )
    if name == "app" and port_open(ports.hooks):
        raise LocalStackError(
            f"port {ports.hooks} (app hooks) is already in use; choose another with LOCAL_HOOK_PORT"
        )
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    state = _state_file(state_dir, name)
    state.parent.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    cmd = _command(name, ports, python, env)
    watch = [
        python, "-m", "scripts.local_stack", "_watch",
        "--name", name, "--state", str(state), "--lifetime", str(lifetime),
    ]  # fmt: skip
    if parent_pid:
        watch += ["--parent", str(parent_pid)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [*watch, "--", *cmd],
            cwd=REPO,
            env=_service_env(name, ports, env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    svc = Service(
        name=name,
        pid=proc.pid,
        port=port,
        url=f"http://127.0.0.1:{port}",
        log=str(log_path),
        started_at=time.time(),
        lifetime=lifetime,
    )
    state.write_text(json.dumps(asdict(svc), indent=2))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            state.unlink(missing_ok=True)
            raise LocalStackError(
                f"{name} exited with code {proc.returncode} while starting; last log lines:\n"
                + _tail(log_path)
            )
        if healthy(name, ports):
            return svc
        time.sleep(0.2)
    stop_service(state_dir, name)
    raise LocalStackError(
        f"{name} did not answer {_health_url(name, ports)} within {timeout:.0f}s:\n"
        + _tail(log_path)
    )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


START_ORDER = ("moto", "app", "emulator")  # the emulator's upstreams and S3/IAM must be up first
#: Every service this module can run, in start order (the sandbox adds the guest's shell).
ALL_SERVICES = ("moto", "app", "shell", "emulator")


def start_services(
    ports: Ports | None = None,
    *,
    state_dir: Path = STATE_DIR,
    lifetime: float | None = None,
    parent_pid: int | None = None,
    python: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    names: tuple[str, ...] = START_ORDER,
) -> dict[str, Service]:
    """Start (or reuse, when healthy) ``names`` (default moto, the image app and the emulator)
    in that order; return their records."""
    ports = ports or ports_from_env()
    env = dict(os.environ if env is None else env)
    if lifetime is None:
        lifetime = float(env.get("LOCAL_STACK_LIFETIME_SECONDS", DEFAULT_LIFETIME))
    python = python or sys.executable
    out: dict[str, Service] = {}
    for name in names:
        existing = read_service(state_dir, name)
        want_port = getattr(ports, name)
        if (
            existing
            and service_alive(existing)
            and existing.port == want_port
            and healthy(name, ports)
        ):
            existing.reused = True
            out[name] = existing
            continue
        if existing:
            stop_service(state_dir, name)
        out[name] = _start_one(
            name, ports, state_dir,
            lifetime=lifetime, parent_pid=parent_pid, python=python, env=env, timeout=timeout,
        )  # fmt: skip
    return out


def stop_service(state_dir: Path, name: str, timeout: float = 10.0) -> bool:
    """Stop one service by the pid recorded in its state file. True if something was stopped."""
    svc = read_service(state_dir, name)
    state = _state_file(state_dir, name)
    if svc is None:
        state.unlink(missing_ok=True)
        return False
    stopped = False
    if service_alive(svc):
        with contextlib.suppress(ProcessLookupError):
            os.kill(svc.pid, signal.SIGTERM)
            stopped = True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_exists(svc.pid):
            _reap(svc.pid)
            time.sleep(0.1)
        if _pid_exists(svc.pid) and _is_our_watcher(svc.pid, name):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(svc.pid, signal.SIGKILL)
            _reap(svc.pid)
    state.unlink(missing_ok=True)
    return stopped


def stop_services(state_dir: Path = STATE_DIR) -> list[str]:
    """Stop every service recorded in ``state_dir``, last started first; the names stopped."""
    return [n for n in reversed(ALL_SERVICES) if stop_service(state_dir, n)]


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def watch(cmd: list[str], *, state: Path, lifetime: float, parent: int | None, name: str) -> int:
    """Run ``cmd`` until it exits, the lifetime ends, the state file goes, or ``parent`` dies."""
    child = subprocess.Popen(cmd)
    stop = {"why": ""}

    def on_signal(signum, _frame):
        stop["why"] = f"signal {signum}"

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    deadline = started + lifetime
    me = os.getpid()
    seen_state = False
    while not stop["why"]:
        if child.poll() is not None:
            return child.returncode
        if time.monotonic() > deadline:
            stop["why"] = f"lifetime of {lifetime:.0f}s reached"
        elif parent and not _pid_exists(parent):
            stop["why"] = f"parent process {parent} is gone"
        else:
            try:
                owner = json.loads(state.read_text()).get("pid")
                seen_state = True
                if owner not in (me, None):
                    stop["why"] = "state file now belongs to another process"
            except FileNotFoundError:
                # The launcher writes the file just after starting us: allow it a moment.
                if seen_state or time.monotonic() - started > 10:
                    stop["why"] = "state file removed"
            except (OSError, ValueError):
                pass
        time.sleep(0.25)
    print(f"[watchdog] stopping {name}: {stop['why']}", flush=True)
    child.terminate()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    with contextlib.suppress(OSError, ValueError):
        if json.loads(state.read_text()).get("pid") == me:
            state.unlink()
    return 0


# --------------------------------------------------------------------------- pulumi environment


def fake_aws_env() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


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
    """``Pulumi.local.yaml`` (``LOCAL_STACK_PULUMI_CONFIG`` points the preflight check elsewhere;
    the tests use it to pair a copy of the file with free ports)."""
    return Path(os.environ.get("LOCAL_STACK_PULUMI_CONFIG") or REPO / "Pulumi.local.yaml")


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
    ]  # fmt: skip
    if refresh:
        # Fresh emulators have no resources: let the engine notice before it plans.
        cmd.append("--refresh")
    return cmd


def preview_command(pulumi: str) -> list[str]:
    return [
        pulumi, "preview", "--diff", "--stack", STACK, NON_INTERACTIVE,
        "--policy-pack", "policies", "--policy-pack-config", _policy_config(),
    ]  # fmt: skip


def destroy_command(pulumi: str, *, refresh: bool) -> list[str]:
    cmd = [pulumi, "destroy", "--yes", "--skip-preview", "--stack", STACK, NON_INTERACTIVE]
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
        prog="python -m scripts.local_stack", description=__doc__.split("\n\n")[0]
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
    w = sub.add_parser("_watch", help=argparse.SUPPRESS)
    w.add_argument("--name", required=True)
    w.add_argument("--state", required=True, type=Path)
    w.add_argument("--lifetime", required=True, type=float)
    w.add_argument("--parent", type=int)
    w.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "_watch":
        cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
        return watch(
            cmd, state=args.state, lifetime=args.lifetime, parent=args.parent, name=args.name
        )
    try:
        return args.fn(args)
    except LocalStackError as exc:
        print(f"local stack: {exc}", file=sys.stderr)
        return EXIT_SETUP


if __name__ == "__main__":
    raise SystemExit(main())
