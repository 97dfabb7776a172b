"""The image's app (``image/app/main.py``) as a real process on loopback ephemeral ports.

Every app endpoint and lifecycle hook is exercised over HTTP, as the MicroVM platform and the
smoke test would call them. The snapshot is modelled with ``os.fork()`` after initialisation:
two children share the parent's memory exactly as two MicroVMs share one snapshot, and only
``/run`` may make them differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devkit.ports import free_port

REPO = Path(__file__).resolve().parents[2]
MAIN = REPO / "image" / "app" / "main.py"
HOOK = "/aws/lambda-microvms/runtime/v1/"
START_TIMEOUT = 20.0

pytestmark = pytest.mark.emulator


# --------------------------------------------------------------------------- helpers


def call(method: str, url: str, body: bytes | None = None, timeout: float = 10.0):
    """``(status, json_body, headers)`` for one request; HTTP errors are answers, not raises."""
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def hook(app: RunningApp, name: str, body: bytes | None = b"{}"):
    status, doc, _ = call("POST", app.hook_url + HOOK + name, body)
    return status, doc


def read_line(stream, timeout: float) -> str:
    """One line from a child's stdout, or fail after ``timeout`` (never hangs the suite)."""
    box: list[str] = []
    t = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    t.start()
    t.join(timeout)
    assert box and box[0], "the app did not print its listening line in time"
    return box[0].strip()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


@dataclass
class RunningApp:
    proc: subprocess.Popen
    app_url: str
    hook_url: str
    stderr_path: Path

    def logs(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr_path.read_text().splitlines() if line]

    def health(self) -> dict:
        status, doc, _ = call("GET", self.app_url + "/health")
        assert status == 200
        return doc


def _parse_listening(line: str) -> tuple[str, str]:
    words = dict(w.split("=", 1) for w in line.split()[1:])
    assert line.startswith("listening "), line
    return words["app"], words["hooks"]


@pytest.fixture
def start_app(tmp_path) -> Iterator:
    procs: list[subprocess.Popen] = []

    def _start(**env_overrides: str) -> RunningApp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "PORT", "HOOK_"))}
        env.update(HOST="127.0.0.1", PORT="0", HOOK_PORT="0", APP_INIT_SECONDS="0")
        env.update(APP_LOG_FLUSH_SECONDS="0.05", PYTHONUNBUFFERED="1")
        env.update(env_overrides)
        stderr_path = tmp_path / f"app-{len(procs)}.log"
        proc = subprocess.Popen(
            [sys.executable, str(MAIN)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr_path.open("w"),
            text=True,
        )
        procs.append(proc)
        app_url, hook_url = _parse_listening(read_line(proc.stdout, START_TIMEOUT))
        return RunningApp(proc, app_url, hook_url, stderr_path)

    yield _start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout:
            proc.stdout.close()


def ready_app(start_app, **env: str) -> RunningApp:
    app = start_app(**env)
    wait_until(lambda: hook(app, "ready")[0] == 200)
    return app


# --------------------------------------------------------------------------- ports and startup


def test_honours_explicit_port_and_hook_port(start_app):
    port, hook_port = free_port(), free_port()  # leased: never the same port twice
    app = start_app(PORT=str(port), HOOK_PORT=str(hook_port))
    assert app.app_url == f"http://127.0.0.1:{port}"
    assert app.hook_url == f"http://127.0.0.1:{hook_port}"
    assert app.health()["status"] == "ok"
    # The two servers are separate: hooks are not served on the app port, nor the app on 9000.
    assert call("POST", app.app_url + HOOK + "ready", b"{}")[0] == 404
    assert call("GET", app.hook_url + "/health")[0] == 404


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "eighty"}, "error: PORT must be an integer from 0 to 65535, got 'eighty'"),
        (
            {"APP_BREAK_READY": "sometimes"},
            "error: APP_BREAK_READY must be one of '4xx', '5xx' or unset, got 'sometimes'",
        ),
    ],
)
def test_bad_environment_exits_with_a_clear_error(env, message):
    full = {**os.environ, "HOST": "127.0.0.1", "PORT": "0", "HOOK_PORT": "0", **env}
    out = subprocess.run(
        [sys.executable, str(MAIN)], env=full, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2
    assert out.stderr.strip() == message
    assert out.stdout == ""


def test_sigterm_stops_cleanly(start_app):
    app = ready_app(start_app)
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(10) == 0


# --------------------------------------------------------------------------- /ready and /validate


def test_ready_answers_503_until_initialised_then_200(start_app):
    app = start_app(APP_INIT_SECONDS="1.5")
    status, doc = hook(app, "ready")
    assert (status, doc) == (503, {"hook": "ready", "ready": False, "reason": "initializing"})
    assert app.health()["initialized"] is False
    statuses = [status]

    def ready() -> bool:
        s, _ = hook(app, "ready")
        statuses.append(s)
        return s == 200

    wait_until(ready, timeout=15)
    assert set(statuses[:-1]) == {503} and statuses[-1] == 200
    assert hook(app, "ready") == (200, {"hook": "ready", "ready": True, "version": "1.0.0"})
    assert app.health()["initialized"] is True


def test_validate_runs_a_request_through_the_app(start_app):
    app = start_app(APP_INIT_SECONDS="1.5")
    assert hook(app, "validate") == (
        503,
        {"hook": "validate", "valid": False, "reason": "initializing"},
    )
    wait_until(lambda: hook(app, "ready")[0] == 200, timeout=15)
    before = app.health()["workServed"]
    assert hook(app, "validate") == (200, {"hook": "validate", "valid": True, "version": "1.0.0"})
    assert app.health()["workServed"] == before + 1, "validate went through the app port"


@pytest.mark.parametrize(("knob", "status"), [("4xx", 400), ("5xx", 500)])
def test_break_ready_knob(start_app, knob, status):
    app = start_app(APP_BREAK_READY=knob)
    code, doc = hook(app, "ready")
    assert code == status
    assert doc == {
        "hook": "ready",
        "ready": False,
        "error": f"APP_BREAK_READY={knob} (test knob) is set",
    }


# --------------------------------------------------------------------------- /health and /run


def test_health_before_and_after_run(start_app):
    app = ready_app(start_app)
    doc = app.health()
    assert doc["version"] == "1.0.0" and doc["service"] == "claude-code-sandbox"
    assert doc["instanceId"] is None and doc["ran"] is False and doc["microvmId"] is None
    assert doc["uptimeSeconds"] >= 0
    status, run = hook(app, "run", json.dumps({"microvmId": "microvm-a"}).encode())
    assert status == 200
    after = app.health()
    assert after["ran"] is True
    assert after["instanceId"] == run["instanceId"]
    assert after["microvmId"] == "microvm-a"
    assert after["uptimeSeconds"] >= doc["uptimeSeconds"]
    assert after["hookCalls"]["run"] == 1


PAYLOAD_4096 = "x" * 4096
JSON_4096 = json.dumps({"k": "v" * 4087})
assert len(JSON_4096) == 4096


def _run_body(payload: str | None = None, **extra: str) -> str:
    doc: dict[str, str] = {"microvmId": "m-1", **extra}
    if payload is not None:
        doc["runHookPayload"] = payload
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("body", "fmt", "size"),
    [
        (_run_body('{"tenant": "t-9"}'), "json", len('{"tenant": "t-9"}')),
        (_run_body("tenant t-9, secret-ish"), "text", len("tenant t-9, secret-ish")),
        (_run_body(), "absent", 0),
        ("", "absent", 0),
        (None, "absent", 0),
        ("raw words, not JSON at all", "text", len("raw words, not JSON at all")),
        (_run_body(PAYLOAD_4096), "text", 4096),
        (_run_body(JSON_4096), "json", 4096),
    ],
    ids=[
        "json",
        "text",
        "no-payload",
        "empty-body",
        "no-body",
        "non-json-body",
        "4096",
        "4096-json",
    ],
)
def test_run_payload_handling(start_app, body, fmt, size):
    app = ready_app(start_app, APP_LOG_FLUSH_SECONDS="3600")
    raw = None if body is None else body.encode()
    status, doc = hook(app, "run", raw)
    assert status == 200
    assert doc["payloadFormat"] == fmt and doc["payloadBytes"] == size
    assert doc["replayed"] is False
    assert len(doc["instanceId"]) == 36
    expected_id = "m-1" if body and body.startswith("{") else None
    assert doc["microvmId"] == expected_id
    # The payload is sensitive (API model): its size is logged, never its content.
    assert hook(app, "terminate")[0] == 200
    logs = app.logs()
    (run_log,) = [entry for entry in logs if entry["msg"] == "run"]
    assert run_log["payloadBytes"] == size
    text = app.stderr_path.read_text()
    for secret in ("t-9", "secret-ish", "raw words", "x" * 64, "v" * 64):
        assert secret not in text


def test_run_is_idempotent_for_the_same_microvm(start_app):
    app = ready_app(start_app)
    body = json.dumps({"microvmId": "microvm-1", "runHookPayload": "p"}).encode()
    status1, first = hook(app, "run", body)
    status2, second = hook(app, "run", body)
    assert status1 == status2 == 200
    assert second["instanceId"] == first["instanceId"]
    assert (first["replayed"], second["replayed"]) == (False, True)
    assert app.health()["hookCalls"]["run"] == 2


def test_oversized_hook_body_is_refused(start_app):
    app = ready_app(start_app)
    status, doc, _ = call("POST", app.hook_url + HOOK + "run", b"{" + b" " * 70_000 + b"}")
    assert (status, doc) == (413, {"error": "body larger than 65536 bytes"})
    assert app.health()["ran"] is False


# --------------------------------------------------------------------------- snapshot uniqueness

_FORK_DRIVER = r"""
import importlib.util, json, os, random, sys
spec = importlib.util.spec_from_file_location("sandbox_main", sys.argv[1])
m = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = m
spec.loader.exec_module(m)
m.configure_logging("INFO")
app = m.Application(m.Config.from_env({"HOST": "127.0.0.1", "PORT": "0", "HOOK_PORT": "0",
                                       "APP_INIT_SECONDS": "0"}))
app.initialize()                    # the build's boot work: now the "snapshot" is taken
random.random(); app.rng.random()   # random state used at build time is part of it
snapshot_state = random.getstate()
children = []
for i in range(2):
    pid = os.fork()                 # two MicroVMs restored from the same memory image
    if pid == 0:
        # CPython re-seeds the random module in a fork child (os.register_at_fork); restoring a
        # MicroVM snapshot runs no such hook, so put the shared state back to model it faithfully.
        random.setstate(snapshot_state)
        app.start()
        a, h = app.urls()
        os.write(1, (json.dumps({"app": a, "hooks": h}) + "\n").encode())  # one atomic write
        app.wait(120)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
"""


@pytest.fixture
def snapshot_pair(tmp_path):
    driver = tmp_path / "fork_driver.py"
    driver.write_text(_FORK_DRIVER)
    proc = subprocess.Popen(
        [sys.executable, str(driver), str(MAIN)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        apps = []
        for _ in range(2):
            doc = json.loads(read_line(proc.stdout, START_TIMEOUT))
            apps.append(RunningApp(proc, doc["app"], doc["hooks"], tmp_path / "unused"))
        yield apps
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()


def test_two_runs_from_one_snapshot_get_different_identity_and_random_streams(snapshot_pair):
    a, b = snapshot_pair
    before_a, before_b = a.health(), b.health()
    # Control: the fork really shares state, random streams included (the snapshot hazard).
    assert before_a["rngFingerprint"] == before_b["rngFingerprint"]
    assert before_a["instanceId"] is None and before_b["instanceId"] is None
    work = "/work?ms=0"
    ids_before = [call("GET", vm.app_url + work)[1]["requestId"] for vm in (a, b)]
    assert ids_before[0] == ids_before[1], "same snapshot, same stream: the hazard is real"
    # The very same /run input to both: uniqueness must come from fresh entropy, not the input.
    body = json.dumps({"microvmId": "microvm-same", "runHookPayload": "p"}).encode()
    (sa, ra), (sb, rb) = hook(a, "run", body), hook(b, "run", body)
    assert sa == sb == 200
    assert ra["instanceId"] != rb["instanceId"]
    ids_after = [call("GET", vm.app_url + work)[1]["requestId"] for vm in (a, b)]
    assert ids_after[0] != ids_after[1]
    after_a, after_b = a.health(), b.health()
    for key in ("app", "module"):
        assert after_a["rngFingerprint"][key] != after_b["rngFingerprint"][key], key
        assert after_a["rngFingerprint"][key] != before_a["rngFingerprint"][key], key


# --------------------------------------------------------------------------- /resume /suspend /terminate


def test_resume_reseeds_and_refreshes_time_state(start_app):
    app = ready_app(start_app)
    hook(app, "run", json.dumps({"microvmId": "microvm-r"}).encode())
    before = app.health()
    status, doc = hook(app, "resume")
    assert (status, doc) == (
        200,
        {"hook": "resume", "resumed": True, "instanceId": before["instanceId"]},
    )
    after = app.health()
    assert after["instanceId"] == before["instanceId"], "identity survives a suspend/resume"
    assert after["rngFingerprint"]["app"] != before["rngFingerprint"]["app"]
    assert after["rngFingerprint"]["module"] != before["rngFingerprint"]["module"]
    assert abs(after["time"] - time.time()) < 5, "wall clock re-anchored"


def test_every_hook_is_idempotent(start_app):
    app = ready_app(start_app)
    before = app.health()["hookCalls"]
    for name in ("ready", "validate", "resume", "suspend", "terminate"):
        first = hook(app, name)
        second = hook(app, name)
        assert first[0] == second[0] == 200, name
        if name != "resume":
            assert first == second, name
    after = app.health()["hookCalls"]
    assert {k: after[k] - before[k] for k in after} == {
        "ready": 2,
        "validate": 2,
        "run": 0,
        "resume": 2,
        "suspend": 2,
        "terminate": 2,
    }
    # The app keeps serving after every hook (a retried /terminate must not break anything).
    assert call("GET", app.app_url + "/work?ms=0")[0] == 200


def test_suspend_waits_for_in_flight_request(start_app):
    app = ready_app(start_app)
    events: list[str] = []

    def slow_request() -> None:
        status, doc, _ = call("GET", app.app_url + "/work?ms=700")
        events.append(f"work {status} {doc['slept_ms']}")

    worker = threading.Thread(target=slow_request)
    worker.start()
    wait_until(lambda: app.health()["inflight"] == 1)
    served = app.health()["workServed"]
    status, doc = hook(app, "suspend")
    # Causal, not timed: the app counts the request as served before it leaves the in-flight
    # set, and /suspend answers only once that set is empty.
    assert app.health()["workServed"] == served + 1
    assert (status, doc) == (
        200,
        {"hook": "suspend", "drained": True, "inflight": 0, "inflightAtStart": 1},
    )
    worker.join(10)
    assert events == ["work 200 700"], "the in-flight request completed normally"


def test_suspend_gives_up_draining_at_its_own_timeout(start_app):
    app = ready_app(start_app, APP_SUSPEND_DRAIN_SECONDS="0.2")
    events: list[str] = []

    def slow_request() -> None:
        status, _, _ = call("GET", app.app_url + "/work?ms=1500")
        events.append(f"work {status}")

    worker = threading.Thread(target=slow_request)
    worker.start()
    wait_until(lambda: app.health()["inflight"] == 1)
    status, doc = hook(app, "suspend")
    events.append(f"suspend {status}")
    assert doc == {"hook": "suspend", "drained": False, "inflight": 1, "inflightAtStart": 1}
    worker.join(10)
    assert events == ["suspend 200", "work 200"]
    logs = app.logs()
    assert any(
        e["msg"] == "suspend: in-flight work did not drain in time" and e["level"] == "WARNING"
        for e in logs
    )


def test_terminate_flushes_buffered_logs(start_app):
    app = ready_app(start_app, APP_LOG_FLUSH_SECONDS="3600")
    hook(app, "run", json.dumps({"microvmId": "microvm-t"}).encode())
    assert [e for e in app.logs() if e["msg"] == "run"] == [], "INFO lines are buffered"
    assert hook(app, "terminate") == (200, {"hook": "terminate", "terminated": True})
    msgs = [e["msg"] for e in app.logs()]
    assert msgs[-2:] == ["run", "terminate"]


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("method", "where", "path", "status", "doc"),
    [
        ("GET", "app", "/nope", 404, {"error": "not found", "path": "/nope"}),
        ("GET", "app", "/health/extra", 404, {"error": "not found", "path": "/health/extra"}),
        ("POST", "app", "/health", 405, {"error": "method not allowed", "allowed": "GET"}),
        ("POST", "hooks", HOOK + "reboot", 404, {"error": "not found", "path": HOOK + "reboot"}),
        ("POST", "hooks", "/run", 404, {"error": "not found", "path": "/run"}),
        ("GET", "hooks", HOOK + "ready", 405, {"error": "method not allowed", "allowed": "POST"}),
        (
            "GET",
            "app",
            "/work?ms=soon",
            400,
            {"error": "ms must be an integer from 0 to 10000, got 'soon'"},
        ),
        (
            "GET",
            "app",
            "/work?ms=10001",
            400,
            {"error": "ms must be an integer from 0 to 10000, got '10001'"},
        ),
    ],
)
def test_routing_errors_are_json(start_app, method, where, path, status, doc):
    app = start_app()
    base = app.app_url if where == "app" else app.hook_url
    code, body, headers = call(method, base + path, b"{}" if method == "POST" else None)
    assert (code, body) == (status, doc)
    assert headers["Content-Type"] == "application/json"
    if status == 405:
        assert headers["Allow"] == doc["allowed"]


def test_index_and_work_endpoints(start_app):
    app = start_app()
    status, doc, _ = call("GET", app.app_url + "/")
    assert status == 200 and doc["endpoints"] == ["/health", "/work?ms=N"]
    status, doc, _ = call("GET", app.app_url + "/work?ms=5")
    assert (status, doc["slept_ms"], doc["version"]) == (200, 5, "1.0.0")
