"""The sandbox guest's shell: what answers ``microvms shell`` on guest port 8022.

A real MicroVM serves a PTY shell on its shell port behind the endpoint's ``/shell`` WebSocket
(docs/service-facts.md §9). In the sandbox the emulator's proxy checks the shell token and relays
the WebSocket here; each connection gets its own ``bash`` (or ``sh``) on a fresh PTY, started in
the sandbox workspace with a small, clean environment (none of your AWS settings).

Bytes received are written to the PTY; PTY output is sent back as binary frames. The shell
ends when the WebSocket closes, and the WebSocket closes when the shell exits.

This is a shell on *your* machine, as you: it listens on 127.0.0.1 only and, on Linux, refuses
connections from processes of any other user (the owner of the peer socket is read from
``/proc/net/tcp``). ``GET /health`` answers 200 for the supervisor.

    python -m devkit.sandbox_shell --port 18022 --workdir .pulumi-local/sandbox/workspace
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import shutil
import signal
import socket
import sys
import threading
from http import HTTPStatus
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

SHELL_PATH = "/shell"
HEALTH_PATH = "/health"
PROMPT = r"[sandbox-vm \W]\$ "


def shell_argv() -> list[str]:
    """An interactive shell that reads no rc files (so the prompt and env are ours)."""
    bash = shutil.which("bash")
    if bash:
        return [bash, "--noprofile", "--norc", "-i"]
    return ["/bin/sh", "-i"]


def shell_env(workdir: Path) -> dict[str, str]:
    """The guest shell's environment: no credentials, profiles or endpoints of the host."""
    return {
        "HOME": str(workdir),
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "TERM": "xterm-256color",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PS1": PROMPT,
        "SANDBOX_MICROVM": "1",
    }


# --------------------------------------------------------------------------- peer check


def _hex_endpoint(host: str, port: int) -> str:
    """``/proc/net/tcp`` form of an IPv4 endpoint: little-endian hex address, hex port."""
    packed = socket.inet_aton(host)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def peer_uid(sock: socket.socket, proc_net_tcp: Path = Path("/proc/net/tcp")) -> int | None:
    """The uid owning the other end of a loopback TCP connection, or None when unknown."""
    try:
        ours = sock.getsockname()[:2]
        theirs = sock.getpeername()[:2]
        table = proc_net_tcp.read_text().splitlines()[1:]
    except (OSError, ValueError):
        return None
    want_local, want_remote = _hex_endpoint(*theirs), _hex_endpoint(*ours)
    for line in table:
        fields = line.split()
        if len(fields) > 7 and fields[1] == want_local and fields[2] == want_remote:
            return int(fields[7])
    return None


def _refuse_other_users(connection: ServerConnection, request):
    if request.path == HEALTH_PATH:
        return connection.respond(HTTPStatus.OK, "ok\n")
    if request.path != SHELL_PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, f"only {SHELL_PATH} and {HEALTH_PATH}\n")
    uid = peer_uid(connection.socket)
    if uid is not None and uid != os.getuid():
        return connection.respond(HTTPStatus.FORBIDDEN, "another user's process\n")
    return None


# --------------------------------------------------------------------------- one session


def _spawn(workdir: Path) -> tuple[int, int]:
    """Fork a shell on a new PTY; the child execs at once (nothing else runs after the fork)."""
    argv, env = shell_argv(), shell_env(workdir)
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.chdir(workdir)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid, fd


def _end(pid: int) -> None:
    for sig in (signal.SIGHUP, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        for _ in range(20):
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                return
            threading.Event().wait(0.05)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def session(ws: ServerConnection, workdir: Path) -> None:
    pid, fd = _spawn(workdir)

    def pump_out():
        try:
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the shell exited and the PTY closed
                    break
                if not data:
                    break
                ws.send(data)
        except ConnectionClosed:
            pass
        finally:
            with contextlib.suppress(Exception):
                ws.close()

    reader = threading.Thread(target=pump_out, daemon=True)
    reader.start()
    try:
        for message in ws:
            data = message.encode() if isinstance(message, str) else message
            with contextlib.suppress(OSError):
                os.write(fd, data)
    except ConnectionClosed:
        pass
    finally:
        _end(pid)
        reader.join(timeout=2)
        with contextlib.suppress(OSError):
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.sandbox_shell", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (loopback only)")
    parser.add_argument("--port", type=int, required=True, help="TCP port (0 picks a free one)")
    parser.add_argument("--workdir", required=True, type=Path, help="the shell's working dir")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost"):
        parser.error(f"--host must be a loopback address (127.0.0.1), got {args.host!r}")
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    with serve(
        lambda ws: session(ws, workdir),
        args.host,
        args.port,
        process_request=_refuse_other_users,
    ) as server:
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
        port = server.socket.getsockname()[1]
        print(f"listening on http://{args.host}:{port}", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
