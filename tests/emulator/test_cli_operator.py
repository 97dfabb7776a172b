"""Operator rules of ``microvms`` against the emulator (in-process under typer's runner; on a
pseudo-terminal and for the modules smoke loads, as real processes): loopback defaults, live
progress on a terminal (and silence off it), tokens minted again after expiry, an unresolvable
endpoint failing at once, gc reporting final states, and which RunMicrovm rate ``--verbose`` used.

Token expiry is real: the guest app's ``/expire`` path advances the emulator's clock past the
token's lifetime (``/_emulator/clock/advance``) and answers 502, so the CLI's retry carries an
expired token and the endpoint proxy answers 403.
"""

from __future__ import annotations

import http.server
import json
import os
import select
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from microvms.client import make_client
from tests.fixtures.cli import run_cli
from tests.fixtures.emulator import built_image, running_vm

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[2]


class App(http.server.BaseHTTPRequestHandler):
    emulator_url = ""
    hits: dict[str, int] = {}

    def do_GET(self):  # noqa: N802
        App.hits[self.path] = App.hits.get(self.path, 0) + 1
        if self.path == "/expire" and App.hits[self.path] == 1:
            # Every token minted so far is now past its lifetime (tokens here live 1 minute).
            req = urllib.request.Request(
                App.emulator_url + "/_emulator/clock/advance",
                data=json.dumps({"seconds": 90}).encode(),
                method="POST",
            )
            urllib.request.urlopen(req, timeout=10).read()
            status, body = 502, b""
        else:
            status, body = 200, b"fresh"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def env(emulator_factory):
    App.hits = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emu = emulator_factory(
        upstreams={8080: f"http://127.0.0.1:{server.server_address[1]}"},
        run_seconds=0.8,
        transition_seconds=0.5,  # a resume outlasts the first poll even on a loaded machine
    )
    App.emulator_url = emu.url
    client = make_client(region="us-east-1", max_attempts=1)
    image = built_image(client, "operator")
    yield emu, client, image
    server.shutdown()
    live = [
        (i["microvmId"], i["state"])
        for i in client.list_microvms()["items"]
        if i["state"] not in ("TERMINATING", "TERMINATED")
    ]
    assert live == [], f"leaked MicroVMs: {live}"


def cli(*args, env=None):
    """``microvms <args>`` in-process; ``env`` replaces the environment for the call."""
    result = run_cli(*args, env=env)
    return result.code, result.stdout, result.stderr


def calls(emu) -> dict:
    with urllib.request.urlopen(emu.url + "/_emulator/calls") as r:
        return json.loads(r.read())


def terminate_all(client, image):
    for item in client.list_microvms(imageIdentifier=image)["items"]:
        if item["state"] not in ("TERMINATING", "TERMINATED"):
            client.terminate_microvm(microvmIdentifier=item["microvmId"])


# ------------------------------------------------------------------------------ loopback defaults


def test_loopback_endpoint_works_without_credentials_or_region(env):
    emu, client, image = env
    bare = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("AWS_") and k != "AWS_ENDPOINT_URL_LAMBDA_MICROVMS")
    }
    bare.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    code, out, err = cli("run", "--image-arn", image, "--wait", env=bare)
    assert code == 0, err
    vm = json.loads(out)
    assert vm["state"] == "RUNNING"
    assert err == (
        f"microvms: local endpoint {emu.url} and no AWS credentials or region configured: "
        "using placeholder credentials and region us-east-1\n"
    )  # said once, though the wait made many calls
    code, out, err = cli("terminate", vm["microvmId"], "--wait", env=bare)
    assert code == 0 and json.loads(out)["state"] == "TERMINATED"
    assert err.count("\n") == 1 and "placeholder credentials" in err


# ------------------------------------------------------------------------------ progress


def _on_a_terminal(*args) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return (exit code, all output)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "microvms", *args],
        stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=REPO, env=dict(os.environ),
    )  # fmt: skip
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow  # four CLI processes on a pseudo-terminal
def test_waits_show_a_live_line_on_a_terminal_and_nothing_off_it(env):
    emu, client, image = env
    code, text = _on_a_terminal("run", "--image-arn", image, "--wait")
    assert code == 0, text
    assert "\r\x1b[2Kwaiting for microvm-" in text
    assert "to be RUNNING: PENDING · " in text
    assert "s elapsed · next poll in " in text
    vm_id = next(i["microvmId"] for i in client.list_microvms()["items"])

    code, out, err = cli("suspend", vm_id, "--wait")  # stdout is a pipe: no line at all
    assert (code, err) == (0, "")
    assert json.loads(out)["state"] == "SUSPENDED"
    code, text = _on_a_terminal("resume", vm_id, "--wait")
    assert code == 0, text
    assert f"waiting for {vm_id} to be RUNNING: " in text

    code, text = _on_a_terminal("probe", vm_id, "--path", "/expire")
    assert code == 0, text
    assert f"\r\x1b[2Kprobing /expire on {vm_id}: attempt 1: 502 · " in text
    assert "s elapsed · next try in " in text

    code, out, err = cli("run", "--image-arn", image, "--wait")
    assert (code, err) == (0, "")
    assert json.loads(out)["state"] == "RUNNING"
    code, text = _on_a_terminal("gc", "--image", image, "--wait")
    assert code == 0, text
    assert "TERMINATED" in text  # the table's final-state column
    terminate_all(client, image)


def test_gc_wait_reports_the_final_state(env):
    emu, client, image = env
    ids = sorted(running_vm(client, image)["microvmId"] for _ in range(2))
    code, out, err = cli("gc", "--image", image, "--wait")
    assert (code, err) == (0, "")
    done = json.loads(out)
    assert sorted(done["terminated"]) == ids and done["failed"] == []
    assert {(c["microvmId"], c["state"], c["finalState"]) for c in done["candidates"]} == {
        (i, "RUNNING", "TERMINATED") for i in ids
    }


# ------------------------------------------------------------------------------ tokens


def test_probe_mints_a_new_token_after_expiry(env):
    emu, client, image = env
    vm_id = running_vm(client, image)["microvmId"]
    before = calls(emu).get("CreateMicrovmAuthToken", 0)
    code, out, err = cli("probe", vm_id, "--path", "/expire", "--timeout", "30")
    assert code == 0, (out, err)
    doc = json.loads(out)
    # 1: 502 (the clock jumps), 2: 403 with the expired token, 3: 200 with a new token
    assert (doc["status"], doc["bodyExcerpt"], doc["attempts"]) == (200, "fresh", 3)
    assert doc["tokensMinted"] == 2
    assert calls(emu)["CreateMicrovmAuthToken"] - before == 2
    for token in emu.state.tokens:
        assert token not in out + err
    terminate_all(client, image)


def test_smoke_mints_a_new_token_after_expiry(env):
    emu, client, image = env
    code, out, err = cli("smoke", "--image-arn", image, "--path", "/expire", "--timeout", "60")
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert (doc["ok"], doc["probeStatus"], doc["tokensMinted"]) == (True, 200, 2)
    assert doc["finalState"] == "TERMINATED"
    for token in emu.state.tokens:
        assert token not in out + err


def test_an_unresolvable_endpoint_fails_at_once_with_a_hint(env):
    emu, client, image = env
    vm = running_vm(client, image)
    no_proxy = {k: v for k, v in os.environ.items() if k != "MICROVMS_PROXY_URL"}
    before = calls(emu).get("CreateMicrovmAuthToken", 0)
    code, out, err = cli("probe", vm["microvmId"], "--timeout", "120", env=no_proxy)
    assert (code, out) == (1, "")
    assert err.startswith(
        f"error: endpoint not reachable: cannot resolve the MicroVM endpoint {vm['endpoint']} ("
    )
    assert err.endswith(
        "); for the local emulator set MICROVMS_PROXY_URL (or --proxy-url) to the emulator's URL\n"
    )
    assert calls(emu)["CreateMicrovmAuthToken"] - before == 1  # one token, no retry loop
    code, out, err = cli(
        "--proxy-url", emu.url, "probe", vm["microvmId"], "--path", "/health", env=no_proxy
    )
    assert code == 0, err
    assert json.loads(out)["status"] == 200
    terminate_all(client, image)

    code, out, err = cli("smoke", "--image-arn", image, "--timeout", "120", env=no_proxy)
    assert code == 1
    doc = json.loads(out)
    assert doc["error"].startswith("cannot resolve the MicroVM endpoint ")
    assert "set MICROVMS_PROXY_URL (or --proxy-url)" in doc["error"]
    assert (doc["probeAttempts"], doc["finalState"]) == (0, "TERMINATED")


def test_shell_reports_an_unresolvable_endpoint_with_a_hint(env):
    emu, client, image = env
    vm = running_vm(client, image, ingressNetworkConnectors=[
        "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:SHELL_INGRESS"
    ])  # fmt: skip
    no_proxy = {k: v for k, v in os.environ.items() if k != "MICROVMS_PROXY_URL"}
    code, out, err = cli("shell", vm["microvmId"], env=no_proxy)
    assert (code, out) == (1, "")
    assert err.startswith("error: endpoint not reachable: cannot resolve the MicroVM endpoint ")
    assert "set MICROVMS_PROXY_URL (or --proxy-url)" in err and err.count("\n") == 1
    terminate_all(client, image)


# ------------------------------------------------------------------------------ RunMicrovm rate


def test_verbose_says_which_run_rate_was_used(env, monkeypatch):
    emu, client, image = env
    code, out, err = cli("--verbose", "run", "--image-arn", image)
    assert code == 0, err
    assert err == (
        "microvms: RunMicrovm rate 5/s (fallback 5/s: local endpoints; Service Quotas not "
        "queried)\n"
    )
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        sq = {**os.environ, "AWS_ENDPOINT_URL_SERVICE_QUOTAS": f"http://{host}:{port}"}
        code, out, err = cli("--verbose", "run", "--image-arn", image, env=sq)
    finally:
        moto.stop()
    assert code == 0, err
    # moto knows no lambda quotas (and no ListServiceQuotas): the lookup falls back, and says so
    assert err.startswith("microvms: RunMicrovm rate 5/s (fallback 5/s: Service Quotas ")
    assert err.count("\n") == 1
    code, out, err = cli("run", "--image-arn", image)
    assert (code, err) == (0, "")  # without --verbose: nothing
    terminate_all(client, image)


def test_smoke_loads_no_boto3_rich_or_websockets(env):
    """``microvms smoke`` builds its client from botocore alone and never draws a table."""
    emu, client, image = env
    code = (
        "import json, sys\n"
        "from microvms.cli import main\n"
        f"rc = main(['smoke', '--image-arn', {image!r}, '--path', '/health'])\n"
        "sys.stderr.write(json.dumps([rc, sorted(sys.modules)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=90
    )
    rc, loaded = json.loads(proc.stderr)
    assert rc == 0 and json.loads(proc.stdout)["ok"] is True
    assert set(loaded) & {"boto3", "s3transfer", "rich", "websockets"} == set()
