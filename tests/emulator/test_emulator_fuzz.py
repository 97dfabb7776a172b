"""Fuzz the running emulator over real HTTP: no request it is sent may make it answer 5xx.

Issue 13 item 7. Hypothesis draws methods, paths (every route of both botocore models with drawn
labels and query strings, the admin API, and garbage), headers, regions and bodies (bodies shaped
like the operation's input with wrong members mixed in, random JSON, deeply nested JSON, non-standard
JSON numbers, random bytes). Each request goes over a fresh TCP connection to an emulator that holds
a built image and a running MicroVM, so valid-looking requests reach the handlers and the lifecycle.

Asserted for every request: the status is below 500, and every error the control plane or the admin
API gives is JSON in the service's error shape. Afterwards the emulator still answers a normal
``ListMicrovmImages``. Injected faults are the only allowed source of trouble, so after an admin call
the faults are set back to none (a drawn ``latencyMs`` must not slow the following examples).

The run is bounded (about 450 requests, derandomised so CI sees the same ones) and prints its
figures: requests sent and answers per status class.
"""

from __future__ import annotations

import base64
import json
import string
from collections import Counter
from urllib.parse import quote, urlencode

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microvms.emulator import urls, wire
from tests.emulator.emulator_http import send
from tests.fixtures.emulator import (
    BASE_IMAGE_ARN,
    BUILD_ROLE_ARN,
    CODE_URI,
    built_image,
    running_vm,
)

pytestmark = pytest.mark.emulator

FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
NO_FAULTS = {"throttleRate": 0, "latencyMs": 0, "failNextBuilds": [], "memoryQuotaMiB": None}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

# ------------------------------------------------------------------ value strategies

small_ints = st.integers(-(2**70), 2**70)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | small_ints | finite_floats | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
junk = st.none() | st.booleans() | small_ints | finite_floats | st.text(max_size=6) | st.just([])


def deep(open_: bytes, middle: bytes, close: bytes):
    return st.integers(1, 5000).map(lambda n: open_ * n + middle + close * n)


nested_bodies = deep(b"[", b"", b"]") | deep(b'{"a":', b"0", b"}") | deep(b'{"tags":[', b"", b"]}")
non_standard_json = st.sampled_from(
    [b"NaN", b"-Infinity", b'{"name": NaN}', b'{"maxResults": 1e999}', b"{", b"nul", b"\xff\xfe"]
)
page_tokens = (
    json_values.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode())
    | st.binary(max_size=30).map(lambda b: base64.urlsafe_b64encode(b).decode())
    | st.text(max_size=30)
)


def pool_strategy(pool: list[str]):
    return one_in(4).flatmap(
        lambda rare: st.text(min_size=1, max_size=40) if rare else st.sampled_from(pool)
    )


def matching(shape, pool: list[str]):
    """Strings for a string shape: the pool's that fit its pattern, else ones drawn from it."""
    pattern = shape.metadata.get("pattern")
    low, high = shape.metadata.get("min", 0), shape.metadata.get("max", 64)
    if not pattern:
        return pool_strategy(pool)
    fitting = [v for v in pool if low <= len(v) <= high and wire.pattern_matches(pattern, v)]
    if "\\p{" in pattern:  # Python's re (and so from_regex) has no Unicode property classes
        drawn = st.text(string.ascii_letters + string.digits + "_.:/=+-@ ", max_size=min(high, 20))
    else:
        drawn = st.from_regex(pattern, fullmatch=True).filter(lambda v: low <= len(v) <= high)
    return st.sampled_from(fitting) | drawn if fitting else drawn


def one_in(n: int):
    """True about once in ``n`` draws (Hypothesis favours small integers, so not ``n == 0``)."""
    return st.sampled_from(range(n)).map(lambda i: i == n - 1)


def mostly(valid, wrong):
    """``valid`` nine times in ten: a request with one wrong member still gets past the rest."""
    return one_in(10).flatmap(lambda rare: wrong if rare else valid)


def shape_values(shape, pool, depth: int = 0):
    """Values of ``shape``, mostly well typed, with wrong types and wrong ranges mixed in."""
    kind = shape.type_name
    if kind == "structure":
        members = {
            name: shape_values(member, pool, depth + 1)
            for name, member in shape.members.items()
            if not member.serialization.get("location")
        }
        if shape.metadata.get("union") and members:
            one = st.one_of([st.fixed_dictionaries({k: v}) for k, v in members.items()])
            return mostly(one, st.fixed_dictionaries({}, optional=members) | junk)
        required = {name: members.pop(name) for name in shape.required_members if name in members}
        valid = mostly(
            st.fixed_dictionaries(required, optional=members),
            st.fixed_dictionaries({}, optional={**required, **members}),
        )
        return valid if depth == 0 else mostly(valid, junk)
    if kind == "list":
        low = min(shape.metadata.get("min", 0), 2)
        items = shape_values(shape.member, pool, depth + 1)
        return mostly(st.lists(items, min_size=low, max_size=max(low, 2)), junk)
    if kind == "map":
        keys = st.sampled_from(["k", "aws:x", "a b", ""]) | st.text(max_size=8)
        return mostly(
            st.dictionaries(keys, shape_values(shape.value, pool, depth + 1), max_size=3), junk
        )
    if kind == "string":
        enum = list(shape.enum or [])
        return mostly(st.sampled_from(enum) if enum else matching(shape, pool), junk)
    if kind in ("integer", "long"):
        edges = st.sampled_from([0, 1, 5, 60, 512, 2048, 28800, 65535, 2**31 - 1, 2**31, 10**20])
        low, high = shape.metadata.get("min", 0), shape.metadata.get("max", 70_000)
        return mostly(st.integers(low, high), edges | junk)
    if kind == "boolean":
        return mostly(st.booleans(), junk)
    return junk


def operations():
    found = []
    for service in (wire.SERVICE_NAME, wire.CORE_SERVICE):
        model = wire.service_model(service)
        names = wire.CORE_OPERATIONS if service == wire.CORE_SERVICE else model.operation_names
        found += [(service, name) for name in names]
    return found


OPERATIONS = operations()


@st.composite
def route_requests(draw, pool, labels):
    """A request aimed at one model route: drawn labels, query string, headers and body."""
    service, operation = draw(st.sampled_from(OPERATIONS))
    op = wire.service_model(service).operation_model(operation)
    uri = op.http["requestUri"].split("?", 1)[0]
    shape = op.input_shape
    query: dict[str, str] = {}
    headers: dict[str, str] = {"Content-Type": "application/json"}
    for name, member in (shape.members if shape is not None else {}).items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            value = draw(pool_strategy(labels.get(wire_name, pool)))
            uri = uri.replace(f"{{{wire_name}}}", quote(value, safe=""))
            uri = uri.replace(f"{{{wire_name}+}}", quote(value, safe="/"))
        elif location == "querystring" and (
            not draw(one_in(4)) if name in ("nextToken", "Marker") else draw(one_in(2))
        ):
            if member.type_name in ("integer", "long"):
                low, high = member.metadata.get("min", 0), member.metadata.get("max", 100)
                odd = st.integers(-5, 200).map(str) | st.sampled_from(["", "x", "1.5", "\u0661"])
                query[wire_name] = draw(mostly(st.integers(low, high).map(str), odd))
            elif name in ("nextToken", "Marker"):
                query[wire_name] = draw(page_tokens)
            elif member.type_name == "string":
                enum = list(member.enum or [])
                valid = st.sampled_from(enum) if enum else matching(member, pool)
                query[wire_name] = draw(mostly(valid, pool_strategy(pool)))
            else:  # a list (tagKeys)
                query[wire_name] = draw(pool_strategy(pool))
    if draw(one_in(10)):
        query[draw(st.text(min_size=1, max_size=8))] = draw(st.text(max_size=8))
    path = uri + ("?" + urlencode(query, quote_via=quote) if query else "")
    method = draw(st.sampled_from(METHODS)) if draw(one_in(10)) else op.http["method"]
    body_shape = shape is not None and any(
        not m.serialization.get("location") for m in shape.members.values()
    )
    shaped = shape_values(shape, pool).map(lambda v: json.dumps(v).encode()) if body_shape else None
    bodies = [
        json_values.map(lambda v: json.dumps(v).encode()),
        nested_bodies,
        non_standard_json,
        st.binary(max_size=64),
        st.just(b""),
    ]
    body = draw(mostly(shaped, st.one_of(*bodies)) if shaped is not None else st.one_of(*bodies))
    return method, path, headers, body


admin_bodies = (
    st.fixed_dictionaries(
        {},
        optional={
            "throttleRate": junk | st.floats(0, 1),
            "latencyMs": junk | st.sampled_from(["nan", 1e9, -1, 0, 5]),
            "failNextBuilds": junk | st.lists(st.text(max_size=5), max_size=3),
            "memoryQuotaMiB": junk | st.integers(-1, 10_000),
            "seconds": junk | st.sampled_from([0, 1, 3600, "inf", 1e308, -1]),
        },
    ).map(lambda v: json.dumps(v).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | nested_bodies
    | non_standard_json
    | st.binary(max_size=32)
)


@st.composite
def admin_requests(draw, exclude: tuple[str, ...] = ()):
    known = sorted({path for _, path in urls.admin_paths} - set(exclude))
    garbage = st.text(max_size=12).map(lambda t: urls.ADMIN_PREFIX + quote(t, safe="/"))
    path = draw(garbage if draw(one_in(4)) else st.sampled_from(known))
    methods = {p: m for m, p in urls.admin_paths}
    method = draw(st.sampled_from(METHODS)) if draw(one_in(5)) else methods.get(path, "GET")
    return method, path, {"Content-Type": "application/json"}, draw(admin_bodies)


token_chars = string.ascii_letters + string.digits + "-"
header_names = st.sampled_from(
    [
        "Content-Type",
        "Content-Encoding",
        "Accept",
        "X-Amz-Target",
        "X-Amz-Date",
        "X-Amz-Security-Token",
        "X-aws-proxy-auth",
        "X-aws-proxy-port",
        "Sec-WebSocket-Protocol",
        "Upgrade",
        "Expect",
        "Authorization",
    ]
) | st.text(token_chars, min_size=1, max_size=20)
header_values = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
).map(str.strip)
garbage_paths = st.text(max_size=40).map(lambda t: "/" + quote(t, safe="/?=&%;:@+$,"))
regions = st.sampled_from(["us-east-1", "us-east-2", "eu-west-1"]) | st.text(
    string.ascii_lowercase + string.digits + "-", min_size=1, max_size=15
)


@st.composite
def fuzz_requests(draw, pool, hosts, labels):
    kind = draw(st.sampled_from(["route"] * 6 + ["admin", "garbage"]))
    if kind == "route":
        method, path, headers, body = draw(route_requests(pool, labels))
    elif kind == "admin":
        # No reset here: it would drop the seeded image and MicroVM (the admin run covers it).
        method, path, headers, body = draw(admin_requests(exclude=("/_emulator/reset",)))
    else:
        method = draw(
            st.sampled_from(METHODS) | st.text(string.ascii_uppercase, min_size=1, max_size=8)
        )
        path, headers, body = draw(garbage_paths), {}, draw(st.binary(max_size=32))
    extra = draw(st.dictionaries(header_names, header_values, max_size=3))
    for name, value in extra.items():
        if name.lower() not in ("content-length", "transfer-encoding", "host", "connection"):
            headers[name] = value
    if draw(one_in(10)):
        headers["Host"] = draw(st.sampled_from(hosts))
    region = draw(st.none() | regions) if draw(one_in(10)) else "us-east-1"
    return method, path, headers, body, region


# ------------------------------------------------------------------ the run


@pytest.fixture
def seeded(emulator, microvms_client):
    """An emulator with a built image, a running MicroVM and a connector.

    Returns ``(emulator, pool, hosts, labels)``: strings to draw from, ``Host`` headers, and the
    identifiers each path label is drawn from (so requests reach real resources).
    """
    image = built_image(microvms_client, "fuzzed")
    vm = running_vm(microvms_client, image)
    build = microvms_client.list_microvm_image_builds(imageIdentifier=image, imageVersion="1.0")
    core = boto3.client("lambda-core", region_name="us-east-1", endpoint_url=emulator.url)
    connector = core.create_network_connector(
        Name="fuzzed-egress",
        OperatorRole="arn:aws:iam::123456789012:role/operator",
        Configuration={
            "VpcEgressConfiguration": {
                "SubnetIds": ["subnet-0a"],
                "SecurityGroupIds": ["sg-0a"],
                "AssociatedComputeResourceTypes": ["MicroVm"],
                "NetworkProtocol": "IPv4",
            }
        },
    )
    labels = {
        "imageIdentifier": [image, BASE_IMAGE_ARN],
        "imageVersion": ["1.0", "1", "2.0"],
        "microvmIdentifier": [vm["microvmId"]],
        "buildId": [item["buildId"] for item in build["items"]],
        "Resource": [image],
        "Identifier": [connector["Id"], connector["Arn"], "fuzzed-egress", "nc-0"],
    }
    pool = [
        image,
        BASE_IMAGE_ARN,
        BUILD_ROLE_ARN,
        CODE_URI,
        vm["microvmId"],
        "1.0",
        "1",
        "fuzzed",
        "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:HTTP_INGRESS",
        "arn:aws:kms:us-east-1:123456789012:key/0e6b8f5c-1111-2222-3333-444455556666",
        "arn:aws:iam::123456789012:role/operator",
        connector["Arn"],
        "subnet-0a",
        "sg-0a",
        "IPv4",
    ]
    hosts = [
        vm["endpoint"],
        "00000000-0000-0000-0000-000000000000.lambda-microvm.us-east-1.on.aws",
        "[::1]",
        "example.com:99999",
        "",
    ]
    return emulator, pool, hosts, labels


def _check(answer, method: str, path: str, headers: dict, host_is_vm: bool, stats: Counter):
    status, answer_headers, data = answer
    stats["sent"] += 1
    stats[f"{status // 100}xx"] += 1
    if status >= 400:
        stats[f"{status} {answer_headers.get('x-amzn-errortype', 'no type')}"] += 1
    assert status < 500, (method, path, headers, status, data[:300])
    if status >= 400 and method != "HEAD" and not host_is_vm:
        body = json.loads(data)
        assert isinstance(body, dict) and ("message" in body or "Message" in body), data[:300]
        assert answer_headers.get("x-amzn-errortype"), (status, data[:300])


def _report(name: str, stats: Counter, record_property) -> None:
    figures = {key: stats[key] for key in sorted(stats)}
    record_property("fuzz", figures)
    print(f"\n{name}: {figures}")


def _still_answers(emulator, microvms_client) -> None:
    send(emulator.url, "POST", "/_emulator/faults", json.dumps(NO_FAULTS).encode(), region=None)
    assert "items" in microvms_client.list_microvm_images()
    status, _, data = send(emulator.url, "GET", "/_emulator/health", region=None)
    assert (status, json.loads(data)) == (200, {"ok": True})


def test_fuzzed_requests_never_get_a_5xx(seeded, microvms_client, record_property):
    emulator, pool, hosts, labels = seeded
    stats: Counter = Counter()

    @settings(FUZZ_SETTINGS, max_examples=350)
    @given(fuzz_requests(pool, hosts, labels))
    def one(request):
        method, path, headers, body, region = request
        answer = send(emulator.url, method, path, body, headers, region=region, timeout=30)
        host = headers.get("Host", "")
        _check(answer, method, path, headers, ".lambda-microvm." in host, stats)
        if path.startswith(urls.ADMIN_PREFIX):
            send(emulator.url, "POST", "/_emulator/faults", json.dumps(NO_FAULTS).encode())

    one()
    _report("fuzzed requests", stats, record_property)
    assert stats["sent"] >= 350 and stats["5xx"] == 0
    assert stats["2xx"] > 0 and stats["4xx"] > 0  # both answers were reached
    _still_answers(emulator, microvms_client)


def test_fuzzed_admin_calls_never_get_a_5xx(seeded, microvms_client, record_property):
    emulator, _, _, _ = seeded
    stats: Counter = Counter()

    @settings(FUZZ_SETTINGS, max_examples=100)
    @given(admin_requests())
    def one(request):
        method, path, headers, body = request
        answer = send(emulator.url, method, path, body, headers, region=None, timeout=30)
        _check(answer, method, path, headers, False, stats)
        send(emulator.url, "POST", "/_emulator/faults", json.dumps(NO_FAULTS).encode())

    one()
    _report("fuzzed admin calls", stats, record_property)
    assert stats["sent"] >= 100 and stats["5xx"] == 0
    _still_answers(emulator, microvms_client)
