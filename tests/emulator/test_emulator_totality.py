"""No 5xx without an injected fault: every malformed request gets a 4xx in the service's error shape.

Issue 13 item 7. Each class of bad input is sent as raw HTTP to a running emulator: pagination tokens
that decode to anything but one of our own tokens, bodies nested too deep to parse, bodies that are
not JSON objects, a wrong JSON type or an out-of-range number at every member the model names,
labels that trip Python's ``int()``, and malformed admin-API bodies and settings. The answer must be
a 4xx with a JSON body and the ``X-Amzn-Errortype`` header, and the emulator must keep answering.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from urllib.parse import quote

import pytest

from microvms.emulator import wire
from microvms.emulator.server import EmulatorServer
from tests.emulator.emulator_http import error_of, send
from tests.fixtures.emulator import BASE_IMAGE_ARN, BUILD_ROLE_ARN, CODE_URI, built_image

pytestmark = pytest.mark.emulator

IMAGES = "/2025-09-09/microvm-images"
CONNECTORS = "/2026-04-04/network-connectors"
VALID_CREATE = {
    "name": "img",
    "baseImageArn": BASE_IMAGE_ARN,
    "buildRoleArn": BUILD_ROLE_ARN,
    "codeArtifact": {"uri": CODE_URI},
}


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def still_answers(emulator) -> None:
    status, _, data = send(emulator.url, "GET", IMAGES)
    assert status == 200 and "items" in json.loads(data)


# ------------------------------------------------------------------------- pagination tokens

BAD_TOKENS = {
    "a list": b64(b"[1, 2]"),
    "a number": b64(b"7"),
    "null": b64(b"null"),
    "a string": b64(b'"o"'),
    "Infinity": b64(b'{"o": Infinity, "op": "ListMicrovmImages"}'),
    "NaN": b64(b'{"o": NaN, "op": "ListMicrovmImages"}'),
    "an overflowing float": b64(b'{"o": 1e400, "op": "ListMicrovmImages"}'),
    "a float offset": b64(b'{"o": 1.5, "op": "ListMicrovmImages"}'),
    "a boolean offset": b64(b'{"o": true, "op": "ListMicrovmImages"}'),
    "a negative offset": b64(b'{"o": -3, "op": "ListMicrovmImages"}'),
    "an offset list": b64(b'{"o": [1], "op": "ListMicrovmImages"}'),
    "a huge integer": b64(b'{"o": ' + b"9" * 5000 + b', "op": "ListMicrovmImages"}'),
    "another operation's": b64(b'{"o": 1, "op": "ListMicrovms"}'),
    "not UTF-8": b64(b"\xff\xfe\xfd"),
    "not base64": "%25%25%25",
    "deeply nested": b64(b"[" * 10_000 + b"]" * 10_000),  # the request line stays < 64 KiB
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_malformed_next_tokens_are_a_400(emulator, kind):
    token = BAD_TOKENS[kind]
    status, headers, data = send(emulator.url, "GET", f"{IMAGES}?nextToken={token}")
    code, message = error_of(headers, data)
    assert (status, code) == (400, "ValidationException"), (kind, data[:200])
    assert message.startswith("Invalid nextToken: ")
    assert len(message) <= len("Invalid nextToken: ") + 64 + 3  # a long token is not echoed whole
    still_answers(emulator)


@pytest.mark.parametrize("kind", ["a list", "null", "Infinity", "a negative offset", "not UTF-8"])
def test_malformed_connector_markers_are_a_400(emulator, kind):
    status, headers, data = send(
        emulator.url, "GET", f"{CONNECTORS}?Marker={BAD_TOKENS[kind]}", region="us-east-1"
    )
    assert status == 400
    assert error_of(headers, data) == (
        "InvalidParameterValueException",
        f"Invalid Marker: {BAD_TOKENS[kind][:64]}" + ("..." if len(BAD_TOKENS[kind]) > 64 else ""),
    )
    assert json.loads(data)["Type"] == "User"


def test_a_real_token_still_pages(emulator, microvms_client):
    for name in ("a", "b", "c"):
        microvms_client.create_microvm_image(**{**VALID_CREATE, "name": name})
    first = microvms_client.list_microvm_images(maxResults=2)
    second = microvms_client.list_microvm_images(maxResults=2, nextToken=first["nextToken"])
    assert [i["name"] for i in first["items"] + second["items"]] == ["a", "b", "c"]
    assert second.get("nextToken") is None  # botocore drops the explicit null


# ------------------------------------------------------------------------- bodies

NOT_OBJECTS = {
    "an array": b"[]",
    "a string": b'"body"',
    "a number": b"12",
    "null": b"null",
    "true": b"true",
    "NaN": b"NaN",
    "a NaN member": b'{"name": NaN}',
    "an Infinity member": b'{"name": -Infinity}',
    "an overflowing float": b'{"name": 1e999}',
    "not UTF-8": b"\xff\xfe\x00{",
    "truncated": b'{"name": "x"',
    "a 5000-digit integer": b'{"name": ' + b"1" * 5000 + b"}",
    "nested arrays": b"[" * 100_000 + b"]" * 100_000,
    "nested objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "nested under a member": b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}


@pytest.mark.parametrize("kind", sorted(NOT_OBJECTS))
def test_bodies_that_are_not_json_objects_are_a_400(emulator, kind):
    status, headers, data = send(
        emulator.url, "POST", IMAGES, NOT_OBJECTS[kind], {"Content-Type": "application/json"}
    )
    assert status == 400, (kind, data[:200])
    assert error_of(headers, data) == (
        "SerializationException",
        "Expected a JSON object as the request body"
        if kind in ("an array", "a string", "a number", "null", "true")
        else "Could not parse request body into json",
    )
    still_answers(emulator)


def test_a_mis_chunked_body_is_a_400(emulator):
    status, headers, data = send(
        emulator.url,
        "POST",
        IMAGES,
        b"zz\r\n{}\r\n0\r\n\r\n",
        {"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
    )
    assert status == 400
    assert error_of(headers, data) == ("SerializationException", "Could not read the request body")


def test_deep_unknown_members_are_dropped_not_copied(emulator):
    """The service ignores members it does not model; nested 400 deep they must not crash a copy."""
    deep = "[" * 400 + "]" * 400
    body = json.dumps({**VALID_CREATE, "clientToken": "t-1"})[:-1]
    body += f', "codeArtifact": {{"uri": "{CODE_URI}", "extra": {deep}}}, "unmodelled": {deep}}}'
    status, _, data = send(
        emulator.url, "POST", IMAGES, body.encode(), {"Content-Type": "application/json"}
    )
    assert status == 201, data[:300]
    answer = json.loads(data)
    assert answer["codeArtifact"] == {"uri": CODE_URI}
    assert "unmodelled" not in answer
    # The same token with the same (cleaned) request replays the first answer.
    again = send(emulator.url, "POST", IMAGES, body.encode(), {"Content-Type": "application/json"})
    assert again[0] == 201 and json.loads(again[2])["imageArn"] == answer["imageArn"]


# ------------------------------------------------------------------------- every member, wrong type


def _body_members(shape, path=""):
    """``(path, shape)`` for every body member of an input shape, nested ones included."""
    for name, member in shape.members.items():
        if member.serialization.get("location"):
            continue
        here = f"{path}.{name}" if path else name
        yield here, member
        if member.type_name == "structure":
            yield from _body_members(member, here)
        elif member.type_name == "list" and member.member.type_name == "structure":
            yield from _body_members(member.member, f"{here}[]")
        elif member.type_name == "map" and member.value.type_name == "structure":
            yield from _body_members(member.value, f"{here}{{}}")


WRONG_VALUES = {
    "structure": [[], "x", 1, True],
    "list": [{}, "x", 1, False],
    "map": [[], "x", 1, True],
    "string": [[], {}, 1, 1.5, True],
    "integer": ["1", 1.5, True, [], {}, 2**31, -(2**31) - 1, 10**400],
    "long": ["1", 1.5, True, [], {}, 2**63, 10**400],
    "boolean": ["true", 0, 1, [], {}],
}


def _place(path: str, value) -> dict:
    """A body with ``value`` at ``path`` (``a.b`` nests objects, ``a[]`` a one-element list)."""
    body: dict = {}
    cursor = body
    parts = path.split(".")
    for part in parts[:-1]:
        if part.endswith("[]"):
            item: dict = {}
            cursor[part[:-2]] = [item]
            cursor = item
        elif part.endswith("{}"):
            item = {}
            cursor[part[:-2]] = {"k": item}
            cursor = item
        else:
            cursor[part] = {}
            cursor = cursor[part]
    cursor[parts[-1]] = value
    return body


def _wrong_type_cases():
    for service in (wire.SERVICE_NAME, wire.CORE_SERVICE):
        model = wire.service_model(service)
        names = wire.CORE_OPERATIONS if service == wire.CORE_SERVICE else model.operation_names
        for operation in names:
            shape = model.operation_model(operation).input_shape
            if shape is None:
                continue
            for path, member in _body_members(shape):
                for value in WRONG_VALUES.get(member.type_name, []):
                    yield service, operation, path, path, value
                # A wrong type inside a list of scalars or as a map value is refused too.
                if member.type_name == "list" and member.member.type_name != "structure":
                    for value in WRONG_VALUES.get(member.member.type_name, []):
                        yield service, operation, path, f"{path}.1.member", [value]
                if member.type_name == "map" and member.value.type_name != "structure":
                    for value in WRONG_VALUES.get(member.value.type_name, []):
                        yield service, operation, path, path, {"k": value}


WRONG_TYPE_CASES = list(_wrong_type_cases())


def test_every_body_member_is_covered():
    members = {(op, path) for _, op, path, _, _ in WRONG_TYPE_CASES}
    assert ("CreateMicrovmImage", "hooks.microvmHooks.runTimeoutInSeconds") in members
    assert ("RunMicrovm", "idlePolicy.maxIdleDurationSeconds") in members
    assert ("CreateMicrovmAuthToken", "allowedPorts[].range.startPort") in members
    assert ("CreateNetworkConnector", "Configuration.VpcEgressConfiguration.SubnetIds") in members
    assert len(WRONG_TYPE_CASES) > 400


def _route(service: str, operation: str) -> tuple[str, str]:
    op = wire.service_model(service).operation_model(operation)
    uri = op.http["requestUri"].split("?", 1)[0]
    for label in ("imageIdentifier", "microvmIdentifier", "Resource", "Identifier"):
        uri = uri.replace(
            f"{{{label}}}", quote(f"arn:aws:lambda:us-east-1:123456789012:x:{label}", safe="")
        )
    uri = uri.replace("{imageVersion}", "1.0").replace("{buildId}", "b")
    return op.http["method"], uri


def test_a_wrong_type_or_range_at_any_member_is_a_400_naming_it():
    """Every body member of every operation, every wrong JSON type: 400, the member named."""
    answers: dict[int, int] = {}
    with EmulatorServer(build_seconds=0.05, run_seconds=0.05) as emulator:
        for service, operation, path, reported, value in WRONG_TYPE_CASES:
            method, uri = _route(service, operation)
            body = json.dumps(_place(path, value)).encode()
            status, headers, data = send(
                emulator.url, method, uri, body, {"Content-Type": "application/json"}
            )
            answers[status] = answers.get(status, 0) + 1
            assert status == 400, (operation, path, value, data[:300])
            code, message = error_of(headers, data)
            assert code == "SerializationException", (operation, path, value, data[:300])
            wire_path = reported.replace("[]", ".1.member").replace("{}", "")
            if service == wire.CORE_SERVICE:
                wire_path = ".".join(p[0].lower() + p[1:] for p in wire_path.split("."))
            if message != "Expected null":  # the unit member allPorts keeps the live wording
                assert f"'{wire_path}'" in message, (operation, path, value, message)
        still_answers(emulator)
    assert answers == {400: len(WRONG_TYPE_CASES)}


def test_an_unbounded_integer_cannot_overflow_the_lifecycle(emulator, microvms_client):
    """``maxIdleDurationSeconds`` has no modelled maximum; a 400-digit one used to crash every Get."""
    arn = built_image(microvms_client, "idle")
    body = json.dumps(
        {
            "imageIdentifier": arn,
            "idlePolicy": {
                "maxIdleDurationSeconds": 10**400,
                "suspendedDurationSeconds": 60,
                "autoResumeEnabled": True,
            },
        }
    ).encode()
    status, headers, data = send(emulator.url, "POST", "/2025-09-09/microvms", body)
    assert status == 400
    assert error_of(headers, data) == (
        "SerializationException",
        "Numeric value out of range of integer for 'idlePolicy.maxIdleDurationSeconds': "
        + "1"
        + "0" * 63
        + "...",
    )
    still_answers(emulator)


# ------------------------------------------------------------------------- labels and queries


@pytest.mark.parametrize("version", ["\u00b2", "\u00b9\u00b2", "\u0661", "1\u00b2"])
def test_version_labels_python_int_refuses_are_a_404(emulator, microvms_client, version):
    arn = built_image(microvms_client, "ver")
    path = f"{IMAGES}/{quote(arn, safe='')}/versions/{quote(version)}"
    status, headers, data = send(emulator.url, "GET", path)
    assert status == 404
    assert error_of(headers, data) == (
        "ResourceNotFoundException",
        f"MicroVMImage not found for MicroVMImage: {arn}, Version: {version}",
    )


@pytest.mark.parametrize(
    "raw", ["%D9%A1", "1_0", "+5", "%205", "5.0", "0x10", "99999999999999999999", "", "abc"]
)  # Arabic-Indic 1, underscores, sign, space, float, hex, beyond Java's int, empty, text
def test_query_integers_are_ascii_digits_in_range(emulator, raw):
    status, headers, data = send(emulator.url, "GET", f"{IMAGES}?maxResults={raw}")
    assert status == 400
    code, message = error_of(headers, data)
    assert code == "SerializationException"
    assert (
        message.startswith("Failed to parse 'maxResults': '")
        and "is not a valid integer" in message
    )


# ------------------------------------------------------------------------- admin API

ADMIN_REFUSALS = [
    # (path, body, status, error type, message)
    (
        "faults",
        b"[" * 100_000 + b"]" * 100_000,
        400,
        "SerializationException",
        "admin body is not valid JSON: JSON nested too deeply",
    ),
    ("faults", b"[]", 400, "SerializationException", "admin body must be a JSON object"),
    (
        "faults",
        b"not json",
        400,
        "SerializationException",
        "admin body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
    ),
    (
        "faults",
        b'{"latencyMs": NaN}',
        400,
        "SerializationException",
        "admin body is not valid JSON: non-standard JSON number NaN",
    ),
    (
        "faults",
        b"\xff\xfe{",
        400,
        "SerializationException",
        "admin body is not valid JSON: 'utf-16-le' codec can't decode byte 0x7b in position 2: "
        "truncated data",
    ),
    ("clock/advance", b"[]", 400, "SerializationException", "admin body must be a JSON object"),
    ("clock/advance", b'"3600"', 400, "SerializationException", "admin body must be a JSON object"),
    (
        "faults",
        b'{"latencyMs": "nan"}',
        400,
        "ValidationException",
        "latencyMs must be a number from 0 to 60000 (milliseconds), got 'nan'",
    ),
    (
        "faults",
        b'{"latencyMs": 1e9}',
        400,
        "ValidationException",
        "latencyMs must be a number from 0 to 60000 (milliseconds), got 1000000000.0",
    ),
    (
        "faults",
        b'{"latencyMs": -0.5}',
        400,
        "ValidationException",
        "latencyMs must be a number from 0 to 60000 (milliseconds), got -0.5",
    ),
    (
        "faults",
        b'{"latencyMs": true}',
        400,
        "ValidationException",
        "latencyMs must be a number from 0 to 60000 (milliseconds), got true",
    ),
    (
        "faults",
        b'{"throttleRate": "0.5"}',
        400,
        "ValidationException",
        "throttleRate must be a number from 0 to 1, got '0.5'",
    ),
    (
        "faults",
        b'{"throttleRate": null}',
        400,
        "ValidationException",
        "throttleRate must be a number from 0 to 1, got null",
    ),
    (
        "faults",
        b'{"memoryQuotaMiB": 1.5}',
        400,
        "ValidationException",
        "memoryQuotaMiB must be null or an integer from 0 to 2147483647, got 1.5",
    ),
    (
        "faults",
        b'{"memoryQuotaMiB": true}',
        400,
        "ValidationException",
        "memoryQuotaMiB must be null or an integer from 0 to 2147483647, got true",
    ),
    (
        "faults",
        b'{"failNextBuilds": [""]}',
        400,
        "ValidationException",
        "failNextBuilds must be a list of at most 100 stateReason strings of 1 to 1024 characters, "
        "got an array",
    ),
    (
        "faults",
        b'{"failNextBuilds": {"a": 1}}',
        400,
        "ValidationException",
        "failNextBuilds must be a list of at most 100 stateReason strings of 1 to 1024 characters, "
        "got an object",
    ),
    (
        "faults",
        b'{"latency": 5}',
        400,
        "ValidationException",
        "unknown faults setting 'latency'; accepted: throttleRate, failNextBuilds, latencyMs, "
        "memoryQuotaMiB",
    ),
    (
        "clock/advance",
        b'{"seconds": "inf"}',
        400,
        "ValidationException",
        "seconds must be a number from 0 to 31622400 (seconds), got 'inf'",
    ),
    (
        "clock/advance",
        b'{"seconds": 1e308}',
        400,
        "ValidationException",
        "seconds must be a number from 0 to 31622400 (seconds), got 1e+308",
    ),
    (
        "clock/advance",
        b'{"secs": 1}',
        400,
        "ValidationException",
        "unknown clock/advance setting 'secs'; accepted: seconds",
    ),
    (
        "reset",
        b'{"all": true}',
        400,
        "ValidationException",
        "unknown reset setting 'all'; accepted: no settings (send {} or no body)",
    ),
    ("calls/reset", b"[1]", 400, "SerializationException", "admin body must be a JSON object"),
]


@pytest.mark.parametrize(("path", "body", "status", "code", "message"), ADMIN_REFUSALS)
def test_admin_refuses_malformed_bodies_and_settings(emulator, path, body, status, code, message):
    before = send(emulator.url, "GET", "/_emulator/faults", region=None)
    answer = send(emulator.url, "POST", f"/_emulator/{path}", body, region=None)
    assert (answer[0], *error_of(answer[1], answer[2])) == (status, code, message)
    # Nothing was applied: the faults are as they were and the API still answers at once.
    assert send(emulator.url, "GET", "/_emulator/faults", region=None)[2] == before[2]
    still_answers(emulator)


def test_a_refused_setting_applies_none_of_the_body(emulator):
    body = json.dumps({"throttleRate": 1, "latencyMs": "nan"}).encode()
    assert send(emulator.url, "POST", "/_emulator/faults", body, region=None)[0] == 400
    status, _, data = send(emulator.url, "GET", "/_emulator/faults", region=None)
    assert json.loads(data)["throttleRate"] == 0.0


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/_emulator/"), ("DELETE", "/_emulator/faults"), ("GET", "/_emulator/faults/x")],
)
def test_unknown_admin_calls_are_a_404_in_the_error_shape(emulator, method, path):
    status, headers, data = send(emulator.url, method, path, region=None)
    assert status == 404
    assert error_of(headers, data) == (
        "UnknownOperationException",
        f"unknown admin call {method} {path}",
    )


def test_start_up_faults_have_the_admin_limits():
    with pytest.raises(ValueError, match=r"latencyMs must be a number from 0 to 60000"):
        EmulatorServer(latency_ms=float("nan"), start=False)
    with pytest.raises(ValueError, match=r"throttleRate must be a number from 0 to 1, got 2"):
        EmulatorServer(throttle_rate=2, start=False)


@pytest.mark.parametrize("value", ["nan", "1e9", "-1", "inf", "fast"])
def test_the_cli_refuses_latencies_outside_the_limits(value):
    done = subprocess.run(
        [sys.executable, "-m", "microvms.emulator", "--latency-ms", value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"--latency-ms must be a number from 0 to 60000, got {value}" in done.stderr
