"""``microvms smoke`` end to end: a real subprocess against the emulator, the endpoint proxy
forwarding to a loopback HTTP app. Pass, probe failure, timeout, SIGTERM/SIGINT mid-wait and run
failure all leave nothing running; tokens and payloads never reach argv or output."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from microvms.client import make_client
from tests.fixtures.emulator import built_image

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[2]


class App(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        status = 200 if self.path == "/health" else int(self.path.rsplit("/", 1)[-1] or 404)
        body = b"healthy" if status == 200 else b"broken"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def app_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def make_env(emulator_factory, app_url):
    """Start an emulator (custom options) with the app on guest port 8080 and one built image."""
    started = {}

    def factory(**options):
        emu = emulator_factory(upstreams={8080: app_url}, **options)
        client = make_client(region="us-east-1", max_attempts=1)
        started["client"] = client
        return emu, client, built_image(client, "smoke-img")

    yield factory
    client = started.get("client")
    if client is not None:  # zero leaks after every test
        items = client.list_microvms()["items"]
        live = [(i["microvmId"], i["state"]) for i in items if i["state"] in ("RUNNING", "PENDING")]
        assert live == [], f"leaked MicroVMs: {live}"


def smoke(*args, **env):
    environ = {**os.environ, **env}
    return subprocess.Popen(
        [sys.executable, "-m", "microvms", "smoke", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=environ,
    )


def finish(proc, timeout=90):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, json.loads(out), err


def test_smoke_passes_and_terminates(make_env):
    _, client, image = make_env()
    code, doc, err = finish(smoke(MICROVMS_IMAGE_ARN=image, MICROVMS_PROBE_PATH="/health",
                                  MICROVMS_TIMEOUT_SECONDS="30"))  # fmt: skip
    assert code == 0, err
    assert doc["ok"] is True and doc["error"] is None
    assert doc["microvmId"].startswith("microvm-")
    assert (doc["imageArn"], doc["imageVersion"]) == (image, "1.0")
    assert (doc["probeStatus"], doc["probePath"], doc["expectedStatus"]) == (200, "/health", 200)
    assert doc["probeLatencyMs"] > 0 and doc["probeAttempts"] >= 1
    assert 0 < doc["timeToRunningSeconds"] <= doc["totalSeconds"]
    assert doc["finalState"] == "TERMINATED"
    assert doc["maximumDurationInSeconds"] == 150  # backstop: timeout + 120 s
    vm = client.get_microvm(microvmIdentifier=doc["microvmId"])
    assert vm["state"] == "TERMINATED" and vm["maximumDurationInSeconds"] == 150
    assert err == ""


def test_probe_failure_exits_non_zero_and_terminates(make_env):
    _, client, image = make_env()
    code, doc, err = finish(smoke("--image-arn", image, "--path", "/status/500", "--timeout", "2"))
    assert code == 1
    assert doc["ok"] is False
    assert doc["probeStatus"] == 500 and doc["probeBodyExcerpt"] == "broken"
    assert doc["finalState"] == "TERMINATED"
    assert doc["error"].startswith("probe of /status/500 on port 8080 answered 500, expected 200")
    assert err == f"error: smoke test failed: {doc['error']}\n"
    assert client.get_microvm(microvmIdentifier=doc["microvmId"])["state"] == "TERMINATED"


def test_timeout_while_pending_terminates(make_env):
    _, client, image = make_env(run_seconds=60)
    code, doc, err = finish(smoke("--image-arn", image, "--timeout", "1.5"))
    assert code == 1
    assert doc["error"] == (
        f"timed out after 1.5s waiting for {doc['microvmId']} to be RUNNING (last state: PENDING)"
    )
    assert doc["timeToRunningSeconds"] is None and doc["probeStatus"] is None
    assert doc["finalState"] == "TERMINATED"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_wait_terminates(make_env, sig):
    _, client, image = make_env(run_seconds=60)
    proc = smoke("--image-arn", image, "--timeout", "60")
    deadline = time.monotonic() + 60
    while not [i for i in client.list_microvms()["items"] if i["state"] == "PENDING"]:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "smoke never started a VM"
        time.sleep(0.05)
    time.sleep(0.3)  # well inside the wait loop
    proc.send_signal(sig)
    code, doc, err = finish(proc)
    assert code == 128 + sig
    assert doc["ok"] is False
    assert doc["interrupted"] == sig.name
    assert doc["error"] == f"interrupted by {sig.name}"
    assert doc["finalState"] == "TERMINATED"
    assert client.get_microvm(microvmIdentifier=doc["microvmId"])["state"] == "TERMINATED"


def test_run_failure_leaves_nothing_running(make_env):
    _, client, image = make_env()
    missing = image.replace("smoke-img", "no-such-image")
    code, doc, err = finish(smoke("--image-arn", missing))
    assert code == 1
    assert doc["microvmId"] is None and doc["finalState"] is None
    assert doc["error"] == (
        f"RunMicrovm failed: ResourceNotFoundException: No active version found for MicroVM image {missing}"
    )
    assert client.list_microvms()["items"] == []


def test_bad_input_is_refused_before_any_call(make_env):
    emu, client, image = make_env()
    proc = smoke("--image-arn", image, "--ingress", "PUBLIC")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == ""
    assert err == (
        "error: --ingress: unknown ingress network connector 'PUBLIC': give a connector ARN or one "
        "of HTTP_INGRESS, SHELL_INGRESS, ALL_INGRESS, NO_INGRESS\n"
    )
    assert client.list_microvms()["items"] == []


def test_tokens_never_reach_argv_or_output(make_env):
    emu, client, image = make_env()
    proc = smoke(MICROVMS_IMAGE_ARN=image, MICROVMS_PROBE_PATH="/health")
    cmdlines = []
    while proc.poll() is None:
        try:
            cmdlines.append(Path(f"/proc/{proc.pid}/cmdline").read_bytes())
        except OSError:
            break
        time.sleep(0.02)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    tokens = list(emu.state.tokens)
    assert tokens, "the smoke test minted no token?"
    for token in tokens:
        assert token not in out and token not in err
        assert all(token.encode() not in c for c in cmdlines)
    assert json.loads(out)["ok"] is True
