"""The model-driven wire layer: routes from botocore, constraint messages, property-based checks."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microvms.emulator import wire
from microvms.emulator.exceptions import SerializationException, ValidationErrors

pytestmark = pytest.mark.emulator

VALID_CREATE = {
    "name": "image-1",
    "baseImageArn": "arn:aws:lambda:us-east-1:aws:microvm-image:al2023-1",
    "buildRoleArn": "arn:aws:iam::123456789012:role/build",
    "codeArtifact": {"uri": "s3://bucket/app.zip"},
}


def test_every_model_operation_has_a_route():
    model = wire.service_model()
    routed = {route.operation for route in wire.routes()}
    assert routed == set(model.operation_names)
    assert len(routed) == 24


@pytest.mark.parametrize(
    ("method", "path", "operation", "labels"),
    [
        ("POST", "/2025-09-09/microvm-images", "CreateMicrovmImage", {}),
        (
            "GET",
            "/2025-09-09/microvm-images/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Amicrovm-image%3Ax/versions/1.0/builds",
            "ListMicrovmImageBuilds",
            {
                "imageIdentifier": "arn:aws:lambda:us-east-1:1:microvm-image:x",
                "imageVersion": "1.0",
            },
        ),
        (
            "GET",
            "/2025-09-09/microvm-images/arn:aws:lambda:us-east-1:1:microvm-image:x/versions/2.0",
            "GetMicrovmImageVersion",
            {
                "imageIdentifier": "arn:aws:lambda:us-east-1:1:microvm-image:x",
                "imageVersion": "2.0",
            },
        ),
        (
            "DELETE",
            "/2025-09-09/microvms/microvm-1",
            "TerminateMicrovm",
            {"microvmIdentifier": "microvm-1"},
        ),
        (
            "POST",
            "/2025-09-09/microvms/m/shell-auth-token",
            "CreateMicrovmShellAuthToken",
            {"microvmIdentifier": "m"},
        ),
        ("DELETE", "/2017-03-31/tags/arn%3Ax?tagKeys=a", "UntagResource", {"Resource": "arn:x"}),
    ],
)
def test_routes_decode_labels(method, path, operation, labels):
    assert wire.match_route(method, path) == (operation, labels)


def test_unknown_route():
    assert wire.match_route("PATCH", "/2025-09-09/microvms") is None


def test_recorded_bad_name_message():
    with pytest.raises(ValidationErrors) as excinfo:
        wire.validate_input("CreateMicrovmImage", {**VALID_CREATE, "name": "bad name!"})
    assert str(excinfo.value) == (
        "1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+"
    )


def test_recorded_missing_required_message_and_order():
    with pytest.raises(ValidationErrors) as excinfo:
        wire.validate_input("CreateMicrovmImage", {"name": "m80-missing-required"})
    assert excinfo.value.message == (
        "3 validation errors detected: Value null at 'baseImageArn' failed to satisfy constraint: "
        "Member must not be null; Value null at 'codeArtifact' failed to satisfy constraint: Member "
        "must not be null; Value null at 'buildRoleArn' failed to satisfy constraint: Member must "
        "not be null"
    )


def test_sensitive_values_are_not_echoed():
    messages = wire.validation_messages(
        "RunMicrovm", {"imageIdentifier": "arn:x", "runHookPayload": "secret" * 1000}
    )
    assert messages == [
        "Value at 'runHookPayload' failed to satisfy constraint: Member must have length less "
        "than or equal to 4096"
    ]
    env = wire.validation_messages(
        "CreateMicrovmImage", {**VALID_CREATE, "environmentVariables": {"K": "v" * 5000}}
    )
    assert env and all("vvvv" not in m for m in env)


def test_nested_and_enum_paths():
    messages = wire.validation_messages(
        "CreateMicrovmImage",
        {
            **VALID_CREATE,
            "cpuConfigurations": [{"architecture": "RISC_V"}],
            "hooks": {"port": 0, "microvmHooks": {"runTimeoutInSeconds": 61}},
        },
    )
    assert sorted(messages) == sorted(
        [
            "Value 'RISC_V' at 'cpuConfigurations.1.member.architecture' failed to satisfy "
            "constraint: Member must satisfy enum value set: [ARM_64, X86_64]",
            "Value '0' at 'hooks.port' failed to satisfy constraint: Member must have value "
            "greater than or equal to 1",
            "Value '61' at 'hooks.microvmHooks.runTimeoutInSeconds' failed to satisfy constraint: "
            "Member must have value less than or equal to 60",
        ]
    )


def test_union_needs_exactly_one_member():
    messages = wire.validation_messages(
        "CreateMicrovmAuthToken",
        {
            "microvmIdentifier": "m",
            "expirationInMinutes": 5,
            "allowedPorts": [{"port": 1, "allPorts": {}}],
        },
    )
    assert messages == [
        "Value '{port=1, allPorts={}}' at 'allowedPorts.1.member' failed to satisfy constraint: "
        "Member must have exactly one member set"
    ]


def test_all_ports_must_be_an_object():
    with pytest.raises(SerializationException) as excinfo:
        wire.validate_input(
            "CreateMicrovmAuthToken",
            {
                "microvmIdentifier": "m",
                "expirationInMinutes": 5,
                "allowedPorts": [{"allPorts": True}],
            },
        )
    assert excinfo.value.body() == {"Message": "Expected null"}


def test_tag_map_constraints():
    messages = wire.validation_messages(
        "TagResource",
        {
            "Resource": "arn:aws:lambda:us-east-1:123456789012:microvm-image:x",
            "Tags": {"k" * 129: "v"},
        },
    )
    assert len(messages) == 1
    assert (
        "at 'Tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128]"
        in messages[0]
    )


def test_java_hashmap_order_is_stable_for_collisions():
    # baseImageArn and codeArtifact share a bucket; insertion order decides between them.
    assert wire.java_hashmap_order(["baseImageArn", "buildRoleArn", "codeArtifact"]) == [0, 2, 1]
    assert wire.java_hashmap_order(["codeArtifact", "baseImageArn"]) == [0, 1]


def test_serialisation_keeps_explicit_nulls_and_unmodelled_members():
    status, headers, body = wire.serialize_output(
        "GetMicrovmImage",
        {
            "imageArn": "a",
            "name": "n",
            "state": "CREATED",
            "createdAt": 1.23456,
            "latestFailedImageVersion": None,
            "id": "u",
        },
    )
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == (
        b'{"imageArn": "a", "name": "n", "state": "CREATED", "createdAt": 1.235, '
        b'"latestFailedImageVersion": null, "id": "u"}'
    )
    assert wire.serialize_output("TagResource", None) == (204, {}, b"")


def test_error_status_comes_from_the_model():
    assert wire.error_status("ServiceQuotaExceededException", 400) == 402
    assert wire.error_status("ThrottlingException", 400) == 429
    assert wire.error_status("NotAShape", 418) == 418


# --------------------------------------------------------------------------- property-based

NAME_CHARS = string.ascii_letters + string.digits + "-_"
names = st.text(alphabet=NAME_CHARS, min_size=1, max_size=64)
bad_names = st.one_of(
    st.text(alphabet=NAME_CHARS, min_size=65, max_size=80),
    st.text(min_size=1, max_size=20).filter(lambda s: any(c not in NAME_CHARS for c in s)),
)
memory = st.sampled_from([512, 1024, 2048, 4096, 8192])
hook_state = st.sampled_from(["ENABLED", "DISABLED"])


@st.composite
def valid_create(draw):
    params = {**VALID_CREATE, "name": draw(names)}
    if draw(st.booleans()):
        params["resources"] = [{"minimumMemoryInMiB": draw(memory)}]
    if draw(st.booleans()):
        params["description"] = draw(st.text(max_size=200))
    if draw(st.booleans()):
        params["hooks"] = {
            "port": draw(st.integers(1, 65535)),
            "microvmImageHooks": {
                "ready": draw(hook_state),
                "readyTimeoutInSeconds": draw(st.integers(1, 3600)),
            },
            "microvmHooks": {
                "run": draw(hook_state),
                "runTimeoutInSeconds": draw(st.integers(1, 60)),
            },
        }
    if draw(st.booleans()):
        params["tags"] = draw(
            st.dictionaries(
                st.text(alphabet=string.ascii_letters + "_.:/=+-@", min_size=1, max_size=128),
                st.text(alphabet=string.ascii_letters + " _.", max_size=256),
                max_size=5,
            )
        )
    if draw(st.booleans()):
        params["clientToken"] = draw(st.text(alphabet=string.printable, min_size=1, max_size=128))
    return params


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_create())
def test_valid_create_requests_pass(params):
    assert wire.validation_messages("CreateMicrovmImage", params) == []


@settings(max_examples=60, deadline=None)
@given(bad_names)
def test_invalid_names_are_rejected_naming_the_member(name):
    messages = wire.validation_messages("CreateMicrovmImage", {**VALID_CREATE, "name": name})
    assert messages
    assert all(" at 'name' failed to satisfy constraint: " in m for m in messages)
    if len(name) > 64:
        assert any(m.endswith("Member must have length less than or equal to 64") for m in messages)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(
        [
            # Within Java's int: beyond it the deserialiser answers first (test_emulator_totality).
            (
                "maximumDurationInSeconds",
                st.integers(-(2**31), 0) | st.integers(28801, 2**31 - 1),
            ),
            ("runHookPayload", st.text(min_size=4097, max_size=4200)),
            ("clientToken", st.text(min_size=129, max_size=140) | st.just("")),
            ("executionRoleArn", st.text(alphabet=string.ascii_letters, min_size=20, max_size=40)),
        ]
    ).flatmap(lambda pair: st.tuples(st.just(pair[0]), pair[1]))
)
def test_invalid_run_members_are_rejected_naming_the_member(case):
    member, value = case
    messages = wire.validation_messages("RunMicrovm", {"imageIdentifier": "arn:x", member: value})
    assert messages, (member, value)
    assert all(f"at '{member}' failed to satisfy constraint: " in m for m in messages)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(60, 10**6),
    st.integers(0, 10**6),
    st.booleans(),
    st.integers(1, 28800),
)
def test_valid_idle_policies_pass(idle, suspended, auto, duration):
    params = {
        "imageIdentifier": "arn:aws:lambda:us-east-1:123456789012:microvm-image:x",
        "idlePolicy": {
            "maxIdleDurationSeconds": idle,
            "suspendedDurationSeconds": suspended,
            "autoResumeEnabled": auto,
        },
        "maximumDurationInSeconds": duration,
    }
    assert wire.validation_messages("RunMicrovm", params) == []


@settings(max_examples=50, deadline=None)
@given(
    st.sets(
        st.sampled_from(
            ["maxIdleDurationSeconds", "suspendedDurationSeconds", "autoResumeEnabled"]
        ),
        min_size=1,
    )
)
def test_idle_policy_members_are_all_required(missing):
    policy = {
        "maxIdleDurationSeconds": 60,
        "suspendedDurationSeconds": 0,
        "autoResumeEnabled": True,
    }
    for key in missing:
        policy.pop(key)
    messages = wire.validation_messages(
        "RunMicrovm", {"imageIdentifier": "arn:x", "idlePolicy": policy}
    )
    assert sorted(messages) == sorted(
        f"Value null at 'idlePolicy.{key}' failed to satisfy constraint: Member must not be null"
        for key in missing
    )
    prefix = (
        "1 validation error detected: "
        if len(missing) == 1
        else f"{len(missing)} validation errors detected: "
    )
    with pytest.raises(ValidationErrors) as excinfo:
        wire.validate_input("RunMicrovm", {"imageIdentifier": "arn:x", "idlePolicy": policy})
    assert str(excinfo.value).startswith(prefix)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.one_of(st.integers(1, 65535).map(lambda p: {"port": p}), st.just({"allPorts": {}})),
        min_size=1,
        max_size=5,
    ),
    st.integers(1, 60),
)
def test_valid_port_specs_pass(ports, minutes):
    params = {
        "microvmIdentifier": "microvm-x",
        "expirationInMinutes": minutes,
        "allowedPorts": ports,
    }
    assert wire.validation_messages("CreateMicrovmAuthToken", params) == []


@settings(max_examples=50, deadline=None)
@given(st.integers(-(2**31), 2**31 - 1).filter(lambda p: p < 1 or p > 65535))
def test_out_of_range_ports_are_rejected(port):
    params = {
        "microvmIdentifier": "microvm-x",
        "expirationInMinutes": 5,
        "allowedPorts": [{"port": port}],
    }
    messages = wire.validation_messages("CreateMicrovmAuthToken", params)
    assert len(messages) == 1 and "at 'allowedPorts.1.member.port'" in messages[0]


# Model-driven: every constrained top-level member of every operation (path, query and body alike).
NASTY_STRINGS = ("bad name!", " ", ":*", "a b", "\u00e9\u00e8", "x/y", "{}", "\t", "::")


def _constrained_members():
    model = wire.service_model()
    cases = []
    for operation in model.operation_names:
        shape = model.operation_model(operation).input_shape
        for name, member in (shape.members if shape else {}).items():
            meta = member.metadata
            if member.type_name == "string":
                constrained = bool(
                    meta.get("pattern") or member.enum or meta.get("min", 0) > 0 or "max" in meta
                )
            else:
                constrained = member.type_name in ("integer", "long") and (
                    "min" in meta or "max" in meta
                )
            if constrained:
                cases.append((operation, name))
    return cases


CONSTRAINED = _constrained_members()


@st.composite
def violation(draw):
    operation, name = draw(st.sampled_from(CONSTRAINED))
    member = wire.service_model().operation_model(operation).input_shape.members[name]
    meta = member.metadata
    options = []
    if member.type_name == "string":
        if member.enum:
            options.append(st.text(max_size=12).filter(lambda v: v not in member.enum))
        if meta.get("pattern"):
            bad = [v for v in NASTY_STRINGS if not wire.pattern_matches(meta["pattern"], v)]
            if bad:
                options.append(st.sampled_from(bad))
        if meta.get("min", 0) > 0:
            options.append(st.just(""))
        if "max" in meta and meta["max"] <= 10000:
            options.append(st.integers(1, 20).map(lambda extra: "a" * (meta["max"] + extra)))
    else:
        if "min" in meta:
            options.append(st.integers(meta["min"] - 10**6, meta["min"] - 1))
        if "max" in meta:
            options.append(st.integers(meta["max"] + 1, meta["max"] + 10**6))
    assert options, (operation, name)  # every collected member can be violated
    return operation, name, draw(st.one_of(options))


@settings(max_examples=150, deadline=None)
@given(violation())
def test_any_constraint_violation_is_rejected_naming_the_member(case):
    operation, name, value = case
    messages = wire.validation_messages(operation, {name: value})
    member = wire.service_model().operation_model(operation).input_shape.members[name]
    head = (
        f"Value at '{name}'" if member.metadata.get("sensitive") else f"Value '{value}' at '{name}'"
    )
    about = [m for m in messages if f" at '{name}' " in m]
    assert about, (operation, name, value, messages)
    assert all(m.startswith(head + " failed to satisfy constraint: Member must ") for m in about)


def test_constraint_cases_cover_every_operation_with_constraints():
    # The strategy above really draws from the model, across both path/query and body members.
    operations = {operation for operation, _ in CONSTRAINED}
    assert {"CreateMicrovmImage", "RunMicrovm", "ListMicrovms", "GetMicrovm"} <= operations
    assert ("ListMicrovmImages", "maxResults") in CONSTRAINED
    assert ("CreateMicrovmAuthToken", "expirationInMinutes") in CONSTRAINED


@pytest.fixture(scope="module")
def http_client():
    """One emulator for the whole module (hypothesis re-runs a test body many times)."""
    import boto3
    from botocore.config import Config

    from microvms.emulator import EmulatorServer
    from tests.fixtures.emulator import FAST_OPTIONS

    with EmulatorServer(**FAST_OPTIONS) as server:
        yield boto3.client(
            "lambda-microvms",
            region_name="us-east-1",
            endpoint_url=server.url,
            aws_access_key_id="property",
            aws_secret_access_key="property",
            config=Config(
                parameter_validation=False, retries={"mode": "standard", "total_max_attempts": 1}
            ),
        )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bad_names)
def test_invalid_names_over_http_get_the_same_message(http_client, name):
    """The wire layer end to end: JSON body → validation → 400 + X-Amzn-Errortype → boto3 class."""
    with pytest.raises(http_client.exceptions.ValidationException) as excinfo:
        http_client.create_microvm_image(**{**VALID_CREATE, "name": name})
    errors = wire.validation_messages("CreateMicrovmImage", {**VALID_CREATE, "name": name})
    noun = "error" if len(errors) == 1 else "errors"
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ValidationException"
    assert response["Error"]["Message"] == (
        f"{len(errors)} validation {noun} detected: " + "; ".join(errors)
    )
    assert " at 'name' failed to satisfy constraint: " in response["Error"]["Message"]
