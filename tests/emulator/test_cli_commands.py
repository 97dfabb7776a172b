"""Every ``microvms`` subcommand through the real entry point (``microvms.cli.main``) against the
emulator over HTTP, with JSON output parsed and asserted: in-process under typer's runner, and as a
``python -m microvms`` subprocess where the process boundary is the point (no payload or token in
argv, a shell on a pseudo-terminal).

The endpoint proxy forwards guest port 8080 to a tiny loopback HTTP app, hooks (port 9000) to the
same app, and the shell port 8022 to a loopback WebSocket echo server.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.sync.server import serve

from microvms.client import make_client
from tests.fixtures.cli import CliResult, run_cli
from tests.fixtures.emulator import create_image, wait_image

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[2]
HOOKS = {
    "port": 9000,
    "microvmImageHooks": {"ready": "ENABLED", "readyTimeoutInSeconds": 5},
    "microvmHooks": {"run": "ENABLED", "runTimeoutInSeconds": 5},
}
CONNECTOR = "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:"


# ------------------------------------------------------------------------------------ upstreams


class App(http.server.BaseHTTPRequestHandler):
    """Guest app: /health → 200 ok, /status/N → N, /flaky → 502 twice then 200; hooks → 200."""

    server_version = "guest/1"
    hits: dict[str, int] = {}
    run_payloads: list[str] = []
    seen_headers: list[dict] = []

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        App.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
        App.hits[self.path] = App.hits.get(self.path, 0) + 1
        if self.path == "/health":
            self._send(200, b"ok")
        elif self.path.startswith("/status/"):
            self._send(int(self.path.rsplit("/", 1)[1]), b"status page")
        elif self.path.startswith("/flaky"):
            self._send(
                502 if App.hits[self.path] <= 2 else 200,
                b"" if App.hits[self.path] <= 2 else b"recovered",
            )
        else:
            self._send(404, b"not here")

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.endswith("/run"):
            App.run_payloads.append(json.loads(body or b"{}").get("runHookPayload"))
        self._send(200, b"{}")

    def log_message(self, *args):
        pass


def _serve_http():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _serve_shell():
    def handler(ws):
        for message in ws:
            data = message.encode() if isinstance(message, str) else message
            ws.send(b"echo:" + data)

    server = serve(handler, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Env:
    emulator: object
    client: object
    image: str
    hooked_image: str

    def calls(self) -> dict:
        import urllib.request

        with urllib.request.urlopen(self.emulator.url + "/_emulator/calls") as r:
            return json.loads(r.read())

    def faults(self, **body) -> None:
        import urllib.request

        req = urllib.request.Request(
            self.emulator.url + "/_emulator/faults", data=json.dumps(body).encode(), method="POST"
        )
        urllib.request.urlopen(req).read()


@pytest.fixture
def env(emulator_factory):
    App.hits, App.run_payloads, App.seen_headers = {}, [], []
    app = _serve_http()
    shell_server = _serve_shell()
    app_url = f"http://127.0.0.1:{app.server_address[1]}"
    shell_url = f"http://127.0.0.1:{shell_server.socket.getsockname()[1]}"
    emu = emulator_factory(upstreams={8080: app_url, 9000: app_url, 8022: shell_url})
    client = make_client(region="us-east-1", max_attempts=1)
    # Both builds run at once (the emulator builds images in parallel, as the service does).
    image = create_image(client, "cli-plain")["imageArn"]
    hooked = create_image(client, "cli-hooked", hooks=HOOKS)["imageArn"]
    for arn in (image, hooked):
        wait_image(client, arn, "CREATED")
    yield Env(emu, client, image, hooked)
    app.shutdown()
    shell_server.shutdown()


@pytest.fixture(autouse=True)
def no_leaked_vms(env):
    """After every test, ListMicrovms shows no RUNNING/PENDING VM: zero leaks."""
    yield
    items = env.client.list_microvms()["items"]
    live = [(i["microvmId"], i["state"]) for i in items if i["state"] in ("RUNNING", "PENDING")]
    assert live == [], f"leaked MicroVMs: {live}"


# ------------------------------------------------------------------------------------ helpers


def cli(*args: str, stdin: str | None = None, extra_env: dict | None = None) -> CliResult:
    """``microvms <args>`` in-process (the subprocess-only checks below use ``python -m``)."""
    return run_cli(*args, stdin=stdin, extra_env=extra_env)


def ok(*args: str, **kwargs) -> CliResult:
    result = cli(*args, **kwargs)
    assert result.code == 0, (result.code, result.stdout, result.stderr)
    return result


def _run_vm(env: Env, *extra: str) -> dict:
    return ok("run", "--image-arn", env.image, "--wait", *extra).json


# ------------------------------------------------------------------------------------ tests


def test_run_wait_get_ls_terminate(env):
    vm = _run_vm(
        env,
        "--ingress", "HTTP_INGRESS", "--egress", "INTERNET_EGRESS",
        "--max-idle-seconds", "600", "--suspended-seconds", "60", "--auto-resume",
        "--max-duration", "300",
    )  # fmt: skip
    vm_id = vm["microvmId"]
    assert vm_id.startswith("microvm-")
    assert vm["state"] == "RUNNING"
    assert vm["endpoint"].endswith(".lambda-microvm.us-east-1.on.aws")
    assert vm["imageArn"] == env.image and vm["imageVersion"] == "1.0"
    assert vm["ingressNetworkConnectors"] == [CONNECTOR + "HTTP_INGRESS"]
    assert vm["egressNetworkConnectors"] == [CONNECTOR + "INTERNET_EGRESS"]
    assert vm["idlePolicy"] == {
        "maxIdleDurationSeconds": 600,
        "suspendedDurationSeconds": 60,
        "autoResumeEnabled": True,
    }
    assert vm["maximumDurationInSeconds"] == 300
    assert vm["timings"]["runningAfterSeconds"] >= vm["timings"]["runSeconds"] > 0

    got = ok("get", vm_id).json
    assert (got["microvmId"], got["state"]) == (vm_id, "RUNNING")
    waited = ok("wait", vm_id, "--state", "running", "--timeout", "5").json
    assert waited["state"] == "RUNNING" and waited["waitedSeconds"] >= 0

    listed = ok("ls", "--image", env.image, "--state", "RUNNING").json
    assert [i["microvmId"] for i in listed] == [vm_id]
    assert listed[0]["ageSeconds"] >= 0 and listed[0]["imageVersion"] == "1.0"

    gone = ok("terminate", vm_id, "--wait").json
    assert (gone["microvmId"], gone["state"]) == (vm_id, "TERMINATED")
    again = ok("terminate", vm_id).json  # idempotent
    assert again["state"] == "TERMINATED"
    assert [i["state"] for i in env.client.list_microvms()["items"]] == ["TERMINATED"]


def test_inputs_from_environment_and_payload_from_stdin_only(env):
    payload = json.dumps({"task": "secret-task-4711"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "microvms", "run", "--wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={
            **os.environ,
            "MICROVMS_IMAGE_ARN": env.hooked_image,
            "MICROVMS_INGRESS": "HTTP_INGRESS, SHELL_INGRESS",
            "MICROVMS_MAX_DURATION_SECONDS": "120",
            "MICROVMS_PAYLOAD_FILE": "-",
        },
    )
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    out, err = proc.communicate(payload, timeout=90)
    assert proc.returncode == 0, err
    assert b"secret-task-4711" not in cmdline
    vm = json.loads(out)
    assert vm["ingressNetworkConnectors"] == [
        CONNECTOR + "HTTP_INGRESS",
        CONNECTOR + "SHELL_INGRESS",
    ]
    assert vm["maximumDurationInSeconds"] == 120
    assert App.run_payloads == [payload]  # the /run hook got it, byte for byte
    assert "secret-task-4711" not in out + err
    ok("terminate", vm["microvmId"], "--wait")


def test_oversized_payload_is_refused_before_any_api_call(env, tmp_path):
    big = tmp_path / "payload"
    big.write_bytes(b"x" * 4097)
    before = env.calls().get("RunMicrovm", 0)
    result = cli("run", "--image-arn", env.hooked_image, "--payload-file", str(big))
    assert result.code == 2
    assert result.stderr == (
        "error: --payload-file: payload is larger than 4096 bytes (the service limit)\n"
    )
    assert env.calls().get("RunMicrovm", 0) == before


def test_suspend_and_resume(env):
    vm_id = _run_vm(env)["microvmId"]
    assert ok("suspend", vm_id, "--wait").json["state"] == "SUSPENDED"
    assert ok("resume", vm_id, "--wait").json["state"] == "RUNNING"
    ok("terminate", vm_id, "--wait")
    result = cli("suspend", vm_id)
    assert result.code == 1
    assert result.stderr == (
        f"error: SuspendMicrovm failed (ValidationException): The MicroVM {vm_id} has been "
        "terminated and its state cannot be changed.\n"
    )


def test_token_is_printed_only_on_request_and_works(env):
    vm = _run_vm(env)
    vm_id = vm["microvmId"]
    meta = ok("token", vm_id, "--minutes", "2", "--port", "8080").json
    assert meta == {
        "microvmId": vm_id,
        "kind": "auth",
        "header": "X-aws-proxy-auth",
        "expirationInMinutes": 2,
        "allowedPorts": [{"port": 8080}],
        "tokenLength": meta["tokenLength"],
        "printed": False,
        "hint": "add --print to write the token to stdout",
    }
    assert meta["tokenLength"] > 100
    printed = ok("token", vm_id, "--print")
    token = printed.stdout.strip()
    assert len(token) == meta["tokenLength"] and printed.stdout.count("\n") == 1
    assert token not in printed.stderr
    # The printed token really opens the endpoint.
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", env.emulator.port, timeout=10)
    conn.request("GET", "/health", headers={"Host": vm["endpoint"], "X-aws-proxy-auth": token})
    assert conn.getresponse().status == 200
    shell = cli("token", vm_id, "--shell")
    assert shell.code == 1
    assert shell.stderr == (
        "error: CreateMicrovmShellAuthToken failed (ValidationException): Shell access requires "
        "SHELL_INGRESS network connector to be configured on the MicroVM.\n"
    )
    ok("terminate", vm_id, "--wait")


def test_probe_reports_status_latency_body_and_retries_502(env):
    vm_id = _run_vm(env)["microvmId"]
    health = ok("probe", vm_id, "--path", "/health").json
    assert (health["status"], health["bodyExcerpt"], health["ok"]) == (200, "ok", True)
    assert health["latencyMs"] > 0 and health["attempts"] == 1
    flaky = ok("probe", vm_id, "--path", "/flaky", "--timeout", "10").json
    assert (flaky["status"], flaky["bodyExcerpt"], flaky["attempts"]) == (200, "recovered", 3)
    bad = cli("probe", vm_id, "--path", "/status/404", "--expect-status", "200")
    assert bad.code == 1
    assert (bad.json["status"], bad.json["ok"], bad.json["attempts"]) == (404, False, 1)
    # The guest never sees the proxy's auth header.
    assert all("x-aws-proxy-auth" not in h for h in App.seen_headers)
    ok("terminate", vm_id, "--wait")


def test_gc_dry_run_then_for_real(env):
    ids = sorted(_run_vm(env)["microvmId"] for _ in range(2))
    dry = ok("gc", "--image", env.image, "--dry-run").json
    assert dry["dryRun"] is True and dry["terminated"] == []
    assert sorted(c["microvmId"] for c in dry["candidates"]) == ids
    assert {i["state"] for i in env.client.list_microvms()["items"]} == {"RUNNING"}
    paged = ok("ls", "--image", env.image, "--page-size", "1").json  # two pages, both listed
    assert sorted(i["microvmId"] for i in paged) == ids
    done = ok("gc", "--image", env.image, "--wait").json
    assert sorted(done["terminated"]) == ids and done["failed"] == []
    assert {i["state"] for i in env.client.list_microvms()["items"]} == {"TERMINATED"}
    assert ok("gc", "--older-than", "1h").json["candidates"] == []


def test_shell_over_websocket(env):
    vm_id = _run_vm(env, "--ingress", "SHELL_INGRESS")["microvmId"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "microvms", "shell", vm_id, "--linger", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=REPO, env=dict(os.environ),
    )  # fmt: skip
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    out, err = proc.communicate(b"whoami\n", timeout=90)
    assert proc.returncode == 0, err
    assert out == b"echo:whoami\n"
    assert b"lambda-microvms.authentication" not in cmdline + err
    ok("terminate", vm_id, "--wait")


def test_shell_refused_without_shell_ingress(env):
    vm_id = _run_vm(env)["microvmId"]
    result = cli("shell", vm_id)
    assert result.code == 1
    assert result.stderr == (
        "error: CreateMicrovmShellAuthToken failed (ValidationException): Shell access requires "
        "SHELL_INGRESS network connector to be configured on the MicroVM.\n"
    )
    ok("terminate", vm_id, "--wait")


def test_service_errors_are_one_line_with_the_service_message(env):
    missing = "microvm-00000000-0000-0000-0000-000000000000"
    result = cli("get", missing)
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: GetMicrovm failed (ResourceNotFoundException): MicroVM not found: {missing}\n"
    )
    gone = "arn:aws:lambda:us-east-1:123456789012:microvm-image:does-not-exist"
    result = cli("run", "--image-arn", gone)
    assert result.code == 1
    assert result.stderr == (
        "error: RunMicrovm failed (ResourceNotFoundException): "
        f"No active version found for MicroVM image {gone}\n"
    )
    assert ok("terminate", missing, "--missing-ok").json == {
        "microvmId": missing,
        "state": "NOT_FOUND",
    }


def test_table_output_and_throttling_is_retried(env, monkeypatch):
    # botocore's throttling backoff is rand(0, 1) * 1 s * 2**attempt (up to 20 s); the CLI runs
    # in-process here, so scale it down: which calls are retried, and how often, stays botocore's.
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setitem(ExponentialBackoff._DEFAULT_BACKOFF_CONFIG, "throttling_base_scale", 0.02)
    vm_id = _run_vm(env)["microvmId"]
    table = ok("--output", "table", "ls", "--image", env.image, extra_env={"COLUMNS": "200"})
    header = table.stdout.splitlines()[1]
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == [
        "id",
        "image",
        "version",
        "state",
        "age",
    ]
    assert vm_id in table.stdout and "cli-plain" in table.stdout
    env.faults(throttleRate=1.0)
    denied = cli("get", vm_id, extra_env={"MICROVMS_MAX_ATTEMPTS": "1"})
    assert denied.code == 1
    assert denied.stderr == "error: GetMicrovm failed (ThrottlingException): Rate exceeded\n"
    # Half of all calls throttled: botocore's standard retry mode still gets every call through.
    env.faults(throttleRate=0.5)
    before = env.calls()
    done = ok("terminate", *[vm_id] * 5, "--wait", extra_env={"MICROVMS_MAX_ATTEMPTS": "12"})
    after = env.calls()
    env.faults(throttleRate=0.0)
    assert [d["state"] for d in done.json] == ["TERMINATED"] * 5
    attempts = sum(
        after.get(op, 0) - before.get(op, 0) for op in ("TerminateMicrovm", "GetMicrovm")
    )
    assert attempts > 10  # at least 5 terminates + 5 gets, plus the throttled retries


def test_shell_on_a_terminal_goes_raw_and_ctrl_bracket_quits(env):
    import termios

    vm_id = _run_vm(env, "--ingress", "SHELL_INGRESS")["microvmId"]
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "microvms", "shell", vm_id],
        stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=dict(os.environ),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # The CLI switches the terminal to raw mode only once the WebSocket is open.
        while termios.tcgetattr(slave)[3] & termios.ICANON:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "shell never put the terminal in raw mode"
            time.sleep(0.05)
        os.write(master, b"id\r")
        time.sleep(0.5)
        os.write(master, b"\x1d")  # Ctrl-] ends the session
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        lflag = termios.tcgetattr(slave)[3]
        os.close(master)
        os.close(slave)
    assert proc.returncode == 0, err
    assert out == b"echo:id\r"
    assert lflag & termios.ICANON  # the terminal was restored
    ok("terminate", vm_id, "--wait")
