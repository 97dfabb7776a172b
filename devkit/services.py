"""The local stack's background services: start, reuse, watch and stop them on loopback ports.

Used by ``python -m devkit.local_stack`` (``make up/preview/down STACK=local``, ``make emulators``),
by the sandbox (``make sandbox``) and by the tests that need the emulators.

Services (all on 127.0.0.1, fixed default ports so ``Pulumi.local.yaml`` can name them):

==========  =====  ==========================  ==========================================
service     port   environment override        what
==========  =====  ==========================  ==========================================
moto        4566   ``LOCAL_MOTO_PORT``          S3, IAM, STS, CloudWatch Logs (moto server)
emulator    4567   ``LOCAL_EMULATOR_PORT``      ``lambda-microvms`` API + per-VM endpoint proxy
app         18080  ``LOCAL_APP_PORT``           the image's app (guest port 8080) ...
hooks       19000  ``LOCAL_HOOK_PORT``          ... and its lifecycle hooks (guest port 9000)
shell       18022  ``LOCAL_SHELL_PORT``         the guest's shell (guest port 8022; ``make sandbox`` only)
==========  =====  ==========================  ==========================================

Each service runs under a small watchdog (``python -m devkit.services _watch``) that stops it after
``LOCAL_STACK_LIFETIME_SECONDS`` (default 7200), when its state file in ``.pulumi-local/services/``
is removed, or when an optional parent process dies. Logs go to ``.pulumi-local/logs/``. Services
get fake AWS credentials only (:func:`fake_aws_env`); no real credential, profile or endpoint from
your shell reaches them.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from devkit import ports

REPO = Path(__file__).resolve().parents[1]
STATE_DIR = Path(os.environ.get("LOCAL_STACK_STATE_DIR") or REPO / ".pulumi-local")
#: ``make sandbox`` keeps its own services (and their records) here, apart from the local stack's.
SANDBOX_DIR = STATE_DIR / "sandbox"
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
    """A free loopback port nobody else was handed lately (see :mod:`devkit.ports`)."""
    return ports.free_port()


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
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        # HTTPException: something else (e.g. a gRPC server) answers on that port — not ours
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
    return "devkit.services _watch " in cmd and f" --name {name} " in cmd


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
        python, "-m", "devkit.services", "_watch",
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


# --------------------------------------------------------------------------- environment


def fake_aws_env() -> dict[str, str]:
    """Fake credentials and region for the services and the local stack's pulumi commands."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


def main(argv: list[str] | None = None) -> int:
    """``_watch``: the watchdog each service runs under (started by :func:`start_services`)."""
    parser = argparse.ArgumentParser(
        prog="python -m devkit.services", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("_watch", help="run one service under the watchdog (internal)")
    w.add_argument("--name", required=True)
    w.add_argument("--state", required=True, type=Path)
    w.add_argument("--lifetime", required=True, type=float)
    w.add_argument("--parent", type=int)
    w.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    return watch(cmd, state=args.state, lifetime=args.lifetime, parent=args.parent, name=args.name)


if __name__ == "__main__":
    raise SystemExit(main())
