"""Auth tokens and the per-VM endpoint proxy (HTTP and WebSocket) against the emulator."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from microvms.client import proxy_target
from microvms.emulator import FrozenClock
from tests.fixtures.emulator import built_image, running_vm, wait_vm

pytestmark = pytest.mark.emulator

ALL_PORTS = [{"allPorts": {}}]
SHELL = "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:SHELL_INGRESS"


def call_endpoint(
    endpoint: str, path: str = "/", headers: dict | None = None, method="GET", body=None
):
    """Reach a VM endpoint the way local clients do: proxy URL + the endpoint as ``Host``."""
    base, host = proxy_target(endpoint)
    target = urlsplit(base)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        conn.close()


def token_for(client, vm_id: str, ports=ALL_PORTS, minutes: int = 60) -> str:
    answer = client.create_microvm_auth_token(
        microvmIdentifier=vm_id, expirationInMinutes=minutes, allowedPorts=ports
    )
    return answer["authToken"]["X-aws-proxy-auth"]


def error_of(excinfo) -> tuple[str, str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def app(upstream):
    return upstream()


@pytest.fixture
def emu_with_app(emulator_factory, app):
    emulator = emulator_factory(upstreams={8080: app.url})
    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    return emulator, client


def test_token_has_live_shape(microvms_client):
    client = microvms_client
    vm = running_vm(client, built_image(client, "tok"))
    answer = client.create_microvm_auth_token(
        microvmIdentifier=vm["microvmId"], expirationInMinutes=60, allowedPorts=ALL_PORTS
    )
    assert list(answer["authToken"]) == ["X-aws-proxy-auth"]
    token = answer["authToken"]["X-aws-proxy-auth"]
    parts = token.split(".")
    assert len(parts) == 5 and parts[1] == ""
    header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    assert set(header) == {"kid", "alg", "enc"} and header["enc"] == "A256GCM"
    assert 700 <= len(token) <= 800


def test_token_validation(emulator, microvms_client):
    from tests.fixtures.emulator import raw_client

    client = microvms_client
    vm_id = running_vm(client, built_image(client, "tokv"))["microvmId"]
    with pytest.raises(ClientError) as excinfo:
        client.create_microvm_auth_token(
            microvmIdentifier=vm_id, expirationInMinutes=61, allowedPorts=ALL_PORTS
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value '61' at 'expirationInMinutes' failed to satisfy "
        "constraint: Member must have value less than or equal to 60",
        400,
    )
    raw = raw_client(emulator)
    with pytest.raises(ClientError) as excinfo:
        raw.create_microvm_auth_token(
            microvmIdentifier=vm_id, expirationInMinutes=0, allowedPorts=ALL_PORTS
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value '0' at 'expirationInMinutes' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1",
        400,
    )
    with pytest.raises(ClientError) as excinfo:
        raw.create_microvm_auth_token(
            microvmIdentifier=vm_id, expirationInMinutes=5, allowedPorts=[{"port": 70000}]
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value '70000' at 'allowedPorts.1.member.port' failed to "
        "satisfy constraint: Member must have value less than or equal to 65535",
        400,
    )
    with pytest.raises(ClientError) as excinfo:
        raw.create_microvm_auth_token(
            microvmIdentifier=vm_id, expirationInMinutes=5, allowedPorts=[]
        )
    assert error_of(excinfo) == (
        "ValidationException",
        "1 validation error detected: Value '[]' at 'allowedPorts' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        400,
    )


def test_shell_token_needs_shell_ingress(microvms_client):
    client = microvms_client
    arn = built_image(client, "shell")
    plain = running_vm(client, arn)["microvmId"]
    with pytest.raises(ClientError) as excinfo:
        client.create_microvm_shell_auth_token(microvmIdentifier=plain, expirationInMinutes=60)
    assert error_of(excinfo) == (
        "ValidationException",
        "Shell access requires SHELL_INGRESS network connector to be configured on the MicroVM.",
        400,
    )
    shell_vm = running_vm(client, arn, ingressNetworkConnectors=[SHELL])
    assert shell_vm["ingressNetworkConnectors"] == [SHELL]
    token = client.create_microvm_shell_auth_token(
        microvmIdentifier=shell_vm["microvmId"], expirationInMinutes=60
    )["authToken"]["X-aws-proxy-auth"]
    assert token.count(".") == 4


def test_token_for_suspended_vm_is_issued(microvms_client):
    client = microvms_client
    vm_id = running_vm(client, built_image(client, "susp-token"))["microvmId"]
    client.suspend_microvm(microvmIdentifier=vm_id)
    wait_vm(client, vm_id, "SUSPENDED")
    token = token_for(client, vm_id)
    assert token.count(".") == 4 and token.split(".")[1] == ""
    assert client.get_microvm(microvmIdentifier=vm_id)["state"] == "SUSPENDED"


def test_endpoint_auth_answers(emu_with_app, app):
    emulator, client = emu_with_app
    arn = built_image(client, "auth")
    vm_a = running_vm(client, arn)
    vm_b = running_vm(client, arn)
    token_a = token_for(client, vm_a["microvmId"])
    token_b = token_for(client, vm_b["microvmId"])
    assert call_endpoint(vm_a["endpoint"])[:2] == (403, b"Request missing authentication")
    malformed = call_endpoint(vm_a["endpoint"], headers={"X-aws-proxy-auth": "not-a-token"})
    assert malformed[:2] == (403, b"Request missing authentication")
    foreign = call_endpoint(vm_a["endpoint"], headers={"X-aws-proxy-auth": token_b})
    assert foreign[:2] == (403, b"Token authentication failed")
    unknown = call_endpoint(
        "00000000-0000-0000-0000-000000000000.lambda-microvm.us-east-1.on.aws",
        headers={"X-aws-proxy-auth": token_a},
    )
    assert unknown[:2] == (403, b"Token authentication failed")
    status, body, _ = call_endpoint(
        vm_a["endpoint"], "/hello?x=1", headers={"X-aws-proxy-auth": token_a}
    )
    assert status == 200 and json.loads(body)["path"] == "/hello"
    seen = app.calls("/hello")[-1]
    assert seen["query"] == "x=1"
    assert not any(k.lower().startswith("x-aws-proxy") for k in seen["headers"])
    assert seen["headers"]["Host"] == urlsplit(app.url).netloc


def test_endpoint_forwards_methods_and_bodies(emu_with_app, app):
    _, client = emu_with_app
    vm = running_vm(client, built_image(client, "post"))
    token = token_for(client, vm["microvmId"])
    app.answers["/items"] = (201, '{"created": true}')
    status, body, headers = call_endpoint(
        vm["endpoint"], "/items", method="POST", body=b'{"a": 1}',
        headers={"X-aws-proxy-auth": token, "Content-Type": "application/json"},
    )  # fmt: skip
    assert (status, json.loads(body)) == (201, {"created": True})
    assert app.calls("/items")[-1]["body"] == b'{"a": 1}'
    assert headers["Content-Type"] == "application/json"


def test_port_routing_and_grants(emulator_factory, upstream):
    app, admin = upstream(), upstream()
    emulator = emulator_factory(upstreams={8080: app.url, 9090: admin.url})
    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    vm = running_vm(client, built_image(client, "ports"))
    only_8080 = token_for(client, vm["microvmId"], ports=[{"port": 8080}])
    ranged = token_for(
        client, vm["microvmId"], ports=[{"range": {"startPort": 9000, "endPort": 9100}}]
    )
    assert call_endpoint(vm["endpoint"], headers={"X-aws-proxy-auth": only_8080})[0] == 200
    denied = call_endpoint(
        vm["endpoint"], headers={"X-aws-proxy-auth": only_8080, "X-aws-proxy-port": "9090"}
    )
    assert denied[:2] == (403, b"Token authentication failed")
    routed = call_endpoint(
        vm["endpoint"], "/admin", headers={"X-aws-proxy-auth": ranged, "X-aws-proxy-port": "9090"}
    )
    assert routed[0] == 200 and admin.calls("/admin") and not app.calls("/admin")
    assert call_endpoint(vm["endpoint"], headers={"X-aws-proxy-auth": ranged})[0] == 403
    nothing = call_endpoint(
        vm["endpoint"], headers={"X-aws-proxy-auth": ranged, "X-aws-proxy-port": "9001"}
    )
    assert nothing[:2] == (502, b"")  # granted, but nothing listens on guest port 9001
    bad = call_endpoint(
        vm["endpoint"], headers={"X-aws-proxy-auth": ranged, "X-aws-proxy-port": "x"}
    )
    assert bad[:2] == (400, b"Invalid port: x")


def test_endpoint_states(emulator_factory, app):
    emulator = emulator_factory(
        upstreams={8080: app.url}, clock=FrozenClock(), build_seconds=1, run_seconds=1
    )
    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    arn = client.create_microvm_image(
        name="states",
        baseImageArn="arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1",
        buildRoleArn="arn:aws:iam::123456789012:role/build",
        codeArtifact={"uri": "s3://bucket/app.zip"},
    )["imageArn"]
    emulator.clock.advance(1)
    policy = {"maxIdleDurationSeconds": 900, "suspendedDurationSeconds": 1800}
    vm_a = client.run_microvm(imageIdentifier=arn, idlePolicy={**policy, "autoResumeEnabled": True})
    vm_b = client.run_microvm(
        imageIdentifier=arn, idlePolicy={**policy, "autoResumeEnabled": False}
    )
    token_a, token_b = token_for(client, vm_a["microvmId"]), token_for(client, vm_b["microvmId"])
    pending = call_endpoint(vm_a["endpoint"], headers={"X-aws-proxy-auth": token_a})
    assert pending[:2] == (502, b"")
    emulator.clock.advance(1)
    for vm in (vm_a, vm_b):
        client.suspend_microvm(microvmIdentifier=vm["microvmId"])
    emulator.clock.advance(0.1)
    assert call_endpoint(vm_b["endpoint"], headers={"X-aws-proxy-auth": token_b})[:2] == (502, b"")
    assert client.get_microvm(microvmIdentifier=vm_b["microvmId"])["state"] == "SUSPENDED"
    resumed = call_endpoint(vm_a["endpoint"], headers={"X-aws-proxy-auth": token_a})
    assert resumed[0] == 200
    assert client.get_microvm(microvmIdentifier=vm_a["microvmId"])["state"] == "RUNNING"
    client.terminate_microvm(microvmIdentifier=vm_a["microvmId"])
    emulator.clock.advance(0.1)
    assert client.get_microvm(microvmIdentifier=vm_a["microvmId"])["state"] == "TERMINATED"
    assert call_endpoint(vm_a["endpoint"], headers={"X-aws-proxy-auth": token_a})[:2] == (502, b"")


def test_endpoint_traffic_resets_idle_timer_and_tokens_expire(emulator_factory, app):
    emulator = emulator_factory(
        upstreams={8080: app.url}, clock=FrozenClock(), build_seconds=1, run_seconds=1
    )
    client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
    arn = client.create_microvm_image(
        name="idle",
        baseImageArn="arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1",
        buildRoleArn="arn:aws:iam::123456789012:role/build",
        codeArtifact={"uri": "s3://bucket/app.zip"},
    )["imageArn"]
    emulator.clock.advance(1)
    vm = client.run_microvm(
        imageIdentifier=arn,
        idlePolicy={
            "maxIdleDurationSeconds": 60,
            "suspendedDurationSeconds": 600,
            "autoResumeEnabled": False,
        },
    )
    emulator.clock.advance(1)
    token = token_for(client, vm["microvmId"], minutes=2)
    emulator.clock.advance(50)
    assert call_endpoint(vm["endpoint"], headers={"X-aws-proxy-auth": token})[0] == 200
    emulator.clock.advance(50)
    assert client.get_microvm(microvmIdentifier=vm["microvmId"])["state"] == "RUNNING"
    emulator.clock.advance(30)
    assert client.get_microvm(microvmIdentifier=vm["microvmId"])["state"] == "SUSPENDED"
    expired = call_endpoint(vm["endpoint"], headers={"X-aws-proxy-auth": token})
    assert expired[:2] == (403, b"Token authentication failed")


def test_no_upstream_answers_like_a_vm_with_nothing_listening(microvms_client):
    client = microvms_client
    vm = running_vm(client, built_image(client, "empty"))
    token = token_for(client, vm["microvmId"])
    assert call_endpoint(vm["endpoint"], headers={"X-aws-proxy-auth": token})[:2] == (502, b"")


def test_websocket_shell_is_authenticated_and_relayed(emulator_factory):
    from websockets.sync.client import connect
    from websockets.sync.server import serve

    seen: dict = {}

    def handler(ws):
        seen["path"] = ws.request.path
        seen["headers"] = dict(ws.request.headers.raw_items())
        for message in ws:
            ws.send(f"echo:{message}")

    server = serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        shell_url = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        emulator = emulator_factory(upstreams={8022: shell_url})
        client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
        vm = running_vm(client, built_image(client, "ws"), ingressNetworkConnectors=[SHELL])
        token = client.create_microvm_shell_auth_token(
            microvmIdentifier=vm["microvmId"], expirationInMinutes=10
        )["authToken"]["X-aws-proxy-auth"]
        base, host = proxy_target(vm["endpoint"])
        address = urlsplit(base)
        protocols = [
            "lambda-microvms",
            f"lambda-microvms.authentication.{token}",
            "lambda-microvms.port.8022",
        ]
        sock = socket.create_connection((address.hostname, address.port))
        with connect(f"ws://{host}/shell", sock=sock, subprotocols=protocols, open_timeout=5) as ws:
            assert ws.subprotocol == "lambda-microvms"
            ws.send("ls")
            assert ws.recv(timeout=5) == "echo:ls"
        assert seen["path"] == "/shell"
        assert not any("authentication" in v for v in seen["headers"].values())
        # Without the token subprotocol the proxy refuses the handshake.
        sock = socket.create_connection((address.hostname, address.port))
        with pytest.raises(Exception) as excinfo:
            connect(
                f"ws://{host}/shell", sock=sock, subprotocols=["lambda-microvms"], open_timeout=5
            )
        refused = excinfo.value.response
        assert (refused.status_code, refused.body) == (403, b"Request missing authentication")
        # An HTTP token (port 8080 only) does not open the shell port.
        http_token = token_for(client, vm["microvmId"], ports=[{"port": 8080}])
        sock = socket.create_connection((address.hostname, address.port))
        with pytest.raises(Exception) as excinfo:
            connect(
                f"ws://{host}/shell",
                sock=sock,
                subprotocols=[
                    "lambda-microvms",
                    f"lambda-microvms.authentication.{http_token}",
                    "lambda-microvms.port.8022",
                ],
                open_timeout=5,
            )
        refused = excinfo.value.response
        assert (refused.status_code, refused.body) == (403, b"Token authentication failed")
    finally:
        server.shutdown()


def test_websocket_messages_count_as_endpoint_traffic(emulator_factory):
    """An open WebSocket that keeps sending keeps the VM out of its idle suspend."""
    from websockets.sync.client import connect
    from websockets.sync.server import serve

    def handler(ws):
        for message in ws:
            ws.send(f"echo:{message}")

    server = serve(handler, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        app_url = f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        emulator = emulator_factory(
            upstreams={8080: app_url}, clock=FrozenClock(), build_seconds=1, run_seconds=1
        )
        client = boto3.client("lambda-microvms", region_name="us-east-1", endpoint_url=emulator.url)
        arn = client.create_microvm_image(
            name="ws-idle",
            baseImageArn="arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1",
            buildRoleArn="arn:aws:iam::123456789012:role/build",
            codeArtifact={"uri": "s3://bucket/app.zip"},
        )["imageArn"]
        emulator.clock.advance(1)
        vm = client.run_microvm(
            imageIdentifier=arn,
            idlePolicy={
                "maxIdleDurationSeconds": 60,
                "suspendedDurationSeconds": 600,
                "autoResumeEnabled": False,
            },
        )
        emulator.clock.advance(1)
        token = token_for(client, vm["microvmId"], ports=[{"port": 8080}])
        base, host = proxy_target(vm["endpoint"])
        address = urlsplit(base)
        sock = socket.create_connection((address.hostname, address.port))
        protocols = ["lambda-microvms", f"lambda-microvms.authentication.{token}"]
        with connect(f"ws://{host}/", sock=sock, subprotocols=protocols, open_timeout=5) as ws:
            for _ in range(3):  # 3 x 50 s: past the 60 s idle limit only without the messages
                emulator.clock.advance(50)
                ws.send("ping")
                assert ws.recv(timeout=5) == "echo:ping"
                state = client.get_microvm(microvmIdentifier=vm["microvmId"])["state"]
                assert state == "RUNNING"
            emulator.clock.advance(61)
            state = client.get_microvm(microvmIdentifier=vm["microvmId"])["state"]
            assert state == "SUSPENDED"
    finally:
        server.shutdown()
