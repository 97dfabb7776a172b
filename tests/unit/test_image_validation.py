"""Validation of MicroVM image properties: pure functions, no mocks, no network.

``INVALID_CASES`` is also driven through the SDK's gRPC ``Check`` in
``tests/protocol/test_image_provider_check.py``.
"""

from __future__ import annotations

import copy

import pytest

from components.microvm_image import spec
from components.microvm_image.validation import validate

ROLE = "arn:aws:iam::123456789012:role/lambda-microvms-build"


def base_props() -> dict:
    return {
        "region": "us-east-1",
        "buildRoleArn": ROLE,
        "codeArtifact": {"uri": "s3://artifact-bucket-1/images/app-abc123.zip"},
        "namePrefix": "app",
        "nameSeed": "lambda-microvms/dev/app-image",
        "resources": [{"minimumMemoryInMiB": 2048}],
        "hooks": {
            "port": 9000,
            "microvmImageHooks": {"ready": "ENABLED"},
            "microvmHooks": {"run": "ENABLED"},
        },
        "environmentVariables": {"LOG_LEVEL": "info"},
        "secretEnvironmentVariables": {"API_TOKEN": "s3cr3t-value"},
        "tags": {"team": "platform"},
    }


def _set(path: str, value):
    """A mutation that sets a dotted path (``hooks.port``, ``resources.0.minimumMemoryInMiB``)."""

    def mutate(p: dict) -> None:
        parts = path.split(".")
        node = p
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _drop(key: str):
    def mutate(p: dict) -> None:
        p.pop(key, None)

    return mutate


# (id, mutation, failing property, text the reason must contain)
INVALID_CASES = [
    ("name-space", _set("name", "bad name!"), "name", "[a-zA-Z0-9-_]"),
    ("name-too-long", _set("name", "a" * 65), "name", "1-64"),
    ("name-empty-like", _set("name", "-/-"), "name", "[a-zA-Z0-9-_]"),
    ("name-not-string", _set("name", 42), "name", "1-64"),
    ("prefix-too-long", _set("namePrefix", "p" * 56), "namePrefix", "1-55"),
    ("prefix-bad-chars", _set("namePrefix", "my.app"), "namePrefix", "[a-zA-Z0-9-_]"),
    ("region-unsupported", _set("region", "eu-north-1"), "region", "us-east-1, us-east-2"),
    ("region-garbage", _set("region", "mars"), "region", "not a Lambda MicroVMs region"),
    ("region-missing", _drop("region"), "region", "required"),
    ("endpoint-not-url", _set("endpointUrl", "localhost:4566"), "endpointUrl", "http(s) URL"),
    (
        "base-arn-garbage",
        _set("baseImageArn", "al2023-1"),
        "baseImageArn",
        "not a MicroVM image ARN",
    ),
    (
        "base-arn-slash-form",
        _set("baseImageArn", "arn:aws:lambda:us-east-1:aws:microvm-image/al2023-1"),
        "baseImageArn",
        "not a MicroVM image ARN",
    ),
    (
        "base-arn-other-region",
        _set("baseImageArn", "arn:aws:lambda:us-west-2:aws:microvm-image:al2023-1"),
        "baseImageArn",
        "us-west-2",
    ),
    ("base-version-words", _set("baseImageVersion", "latest"), "baseImageVersion", "major version"),
    ("base-version-space", _set("baseImageVersion", "1 .0"), "baseImageVersion", "major version"),
    ("role-missing", _drop("buildRoleArn"), "buildRoleArn", "required"),
    ("role-not-arn", _set("buildRoleArn", "lambda-microvms-build"), "buildRoleArn", "IAM role ARN"),
    (
        "role-short-account",
        _set("buildRoleArn", "arn:aws:iam::1234:role/build"),
        "buildRoleArn",
        "12-digit",
    ),
    (
        "role-is-user",
        _set("buildRoleArn", "arn:aws:iam::123456789012:user/build"),
        "buildRoleArn",
        "IAM role ARN",
    ),
    ("artifact-missing", _drop("codeArtifact"), "codeArtifact", "required"),
    ("artifact-string", _set("codeArtifact", "s3://b/k.zip"), "codeArtifact", "must be an object"),
    ("artifact-extra", _set("codeArtifact.imageUri", "x"), "codeArtifact", "allowed: uri"),
    (
        "artifact-https",
        _set("codeArtifact.uri", "https://b.s3.amazonaws.com/k.zip"),
        "codeArtifact.uri",
        "s3://bucket/key",
    ),
    (
        "artifact-no-key",
        _set("codeArtifact.uri", "s3://bucket-only"),
        "codeArtifact.uri",
        "s3://bucket/key",
    ),
    (
        "artifact-bad-bucket",
        _set("codeArtifact.uri", "s3://Bad_Bucket/k.zip"),
        "codeArtifact.uri",
        "bucket name",
    ),
    ("description-number", _set("description", 12), "description", "string"),
    (
        "logging-both",
        _set("logging", {"disabled": {}, "cloudWatch": {"logGroup": "g"}}),
        "logging",
        "exactly one",
    ),
    ("logging-unknown", _set("logging", {"s3": {}}), "logging", "unknown member"),
    (
        "logging-disabled-bool",
        _set("logging", {"disabled": True}),
        "logging.disabled",
        "empty object",
    ),
    (
        "logging-no-group",
        _set("logging", {"cloudWatch": {}}),
        "logging.cloudWatch.logGroup",
        "required",
    ),
    (
        "logging-bad-group",
        _set("logging", {"cloudWatch": {"logGroup": "bad group!"}}),
        "logging.cloudWatch.logGroup",
        "1-512",
    ),
    (
        "logging-bad-stream",
        _set("logging", {"cloudWatch": {"logGroup": "g", "logStream": "a:b"}}),
        "logging.cloudWatch.logStream",
        "no ':'",
    ),
    (
        "egress-two",
        _set("egressNetworkConnectors", ["INTERNET_EGRESS", "INTERNET_EGRESS"]),
        "egressNetworkConnectors",
        "at most 1",
    ),
    (
        "egress-bad",
        _set("egressNetworkConnectors", ["vpc-123"]),
        "egressNetworkConnectors[0]",
        "network connector ARN",
    ),
    (
        "egress-other-region",
        _set(
            "egressNetworkConnectors",
            ["arn:aws:lambda:us-west-2:123456789012:network-connector:nc-1a2b"],
        ),
        "egressNetworkConnectors[0]",
        "us-west-2",
    ),
    (
        "cpu-x86",
        _set("cpuConfigurations", [{"architecture": "X86_64"}]),
        "cpuConfigurations[0].architecture",
        "ARM_64",
    ),
    (
        "cpu-lowercase",
        _set("cpuConfigurations", [{"architecture": "arm64"}]),
        "cpuConfigurations[0].architecture",
        "ARM_64",
    ),
    (
        "memory-3000",
        _set("resources.0.minimumMemoryInMiB", 3000),
        "resources[0].minimumMemoryInMiB",
        "512, 1024, 2048, 4096, 8192",
    ),
    (
        "memory-32768",
        _set("resources.0.minimumMemoryInMiB", 32768),
        "resources[0].minimumMemoryInMiB",
        "not supported",
    ),
    (
        "memory-string",
        _set("resources.0.minimumMemoryInMiB", "2048"),
        "resources[0].minimumMemoryInMiB",
        "allowed",
    ),
    (
        "resources-two",
        _set("resources", [{"minimumMemoryInMiB": 512}, {"minimumMemoryInMiB": 1024}]),
        "resources",
        "at most one",
    ),
    (
        "caps-bad",
        _set("additionalOsCapabilities", ["NET_ADMIN"]),
        "additionalOsCapabilities[0]",
        "'ALL'",
    ),
    (
        "caps-dup",
        _set("additionalOsCapabilities", ["ALL", "ALL"]),
        "additionalOsCapabilities",
        "duplicate",
    ),
    ("hooks-port-zero", _set("hooks.port", 0), "hooks.port", "1-65535"),
    ("hooks-port-big", _set("hooks.port", 70000), "hooks.port", "1-65535"),
    ("hooks-unknown-member", _set("hooks.healthCheck", {}), "hooks", "unknown member"),
    (
        "hooks-flag-true",
        _set("hooks.microvmHooks.run", True),
        "hooks.microvmHooks.run",
        "ENABLED, DISABLED",
    ),
    (
        "hooks-flag-lower",
        _set("hooks.microvmImageHooks.ready", "enabled"),
        "hooks.microvmImageHooks.ready",
        "ENABLED, DISABLED",
    ),
    (
        "hooks-ready-required",
        _set("hooks.microvmImageHooks.ready", "DISABLED"),
        "hooks.microvmImageHooks.ready",
        "must be ENABLED",
    ),
    (
        "hooks-run-timeout-61",
        _set("hooks.microvmHooks.runTimeoutInSeconds", 61),
        "hooks.microvmHooks.runTimeoutInSeconds",
        "1-60",
    ),
    (
        "hooks-resume-timeout-0",
        _set("hooks.microvmHooks.resumeTimeoutInSeconds", 0),
        "hooks.microvmHooks.resumeTimeoutInSeconds",
        "1-60",
    ),
    (
        "hooks-ready-timeout-3601",
        _set("hooks.microvmImageHooks.readyTimeoutInSeconds", 3601),
        "hooks.microvmImageHooks.readyTimeoutInSeconds",
        "1-3600",
    ),
    (
        "hooks-validate-timeout-float",
        _set("hooks.microvmImageHooks.validateTimeoutInSeconds", 1.5),
        "hooks.microvmImageHooks.validateTimeoutInSeconds",
        "1-3600",
    ),
    (
        "hooks-typo",
        _set("hooks.microvmHooks.runTimeout", 5),
        "hooks.microvmHooks",
        "unknown member",
    ),
    ("hooks-no-port", _set("hooks.port", None), "hooks.port", "required when any hook"),
    (
        "env-key-space",
        _set("environmentVariables", {"MY VAR": "1"}),
        "environmentVariables.MY VAR",
        "without whitespace",
    ),
    (
        "env-value-number",
        _set("environmentVariables", {"N": 5}),
        "environmentVariables.N",
        "must be a string",
    ),
    (
        "env-value-long",
        _set("environmentVariables", {"BIG": "x" * 4097}),
        "environmentVariables.BIG",
        "at most 4096",
    ),
    (
        "env-too-many",
        _set("environmentVariables", {f"V{i}": "1" for i in range(101)}),
        "environmentVariables",
        "at most 100",
    ),
    (
        "env-secret-overlap",
        _set("secretEnvironmentVariables", {"LOG_LEVEL": "x"}),
        "secretEnvironmentVariables",
        "give each name once",
    ),
    (
        "env-secret-long",
        _set("secretEnvironmentVariables", {"API_TOKEN": "s" * 5000}),
        "secretEnvironmentVariables.API_TOKEN",
        "at most 4096",
    ),
    ("tags-aws-prefix", _set("tags", {"aws:owner": "x"}), "tags.aws:owner", "reserved"),
    ("tags-bad-char", _set("tags", {"team": "a*b"}), "tags.team", "0-256"),
    ("tags-long-key", _set("tags", {"k" * 129: "v"}), "tags." + "k" * 129, "1-128"),
    ("tags-too-many", _set("tags", {f"t{i}": "v" for i in range(50)}), "tags", "at most 49"),
    (
        "tags-reserved",
        _set("tags", {spec.CREATION_TAG: "x"}),
        f"tags.{spec.CREATION_TAG}",
        "reserved",
    ),
    (
        "tags-reserved-owner",
        _set("tags", {spec.OWNER_TAG: "x"}),
        f"tags.{spec.OWNER_TAG}",
        "reserved",
    ),
    ("keep-zero", _set("keepVersions", 0), "keepVersions", "1-50"),
    # ---- issue 13 item 5: control characters, non-ASCII digits, unknown members, connector kinds
    ("tags-tab-in-key", _set("tags", {"te\tam": "x"}), "tags.te\tam", "no control characters"),
    ("tags-newline-in-value", _set("tags", {"team": "a\nb"}), "tags.team", "no control characters"),
    ("tags-nul-in-value", _set("tags", {"team": "a\x00b"}), "tags.team", "no control characters"),
    ("tags-cr-in-key", _set("tags", {"a\rb": "x"}), "tags.a\rb", "no control characters"),
    ("tags-del-in-value", _set("tags", {"team": "x\x7f"}), "tags.team", "0-256 characters"),
    ("tags-bidi-control", _set("tags", {"team": "a\u202eb"}), "tags.team", "0-256 characters"),
    (
        "role-arabic-indic-account",
        _set("buildRoleArn", "arn:aws:iam::" + "\u0661" * 12 + ":role/build"),
        "buildRoleArn",
        "not an IAM role ARN",
    ),
    (
        "base-arn-devanagari-account",
        _set("baseImageArn", "arn:aws:lambda:us-east-1:" + "\u0967" * 12 + ":microvm-image:x"),
        "baseImageArn",
        "not a MicroVM image ARN",
    ),
    (
        "connector-fullwidth-account",
        _set(
            "egressNetworkConnectors",
            ["arn:aws:lambda:us-east-1:" + "\uff11" * 12 + ":network-connector:nc-abc"],
        ),
        "egressNetworkConnectors[0]",
        "not a network connector ARN",
    ),
    (
        "base-version-thai-digit",
        _set("baseImageVersion", "\u0e51"),
        "baseImageVersion",
        "not a version",
    ),
    (
        "resources-unknown-member",
        _set("resources", [{"minimumMemoryInMiB": 2048, "maximumMemoryInMiB": 4096}]),
        "resources[0]",
        "unknown member(s) 'maximumMemoryInMiB'; allowed: minimumMemoryInMiB",
    ),
    (
        "cpu-unknown-member",
        _set("cpuConfigurations", [{"architecture": "ARM_64", "chipset": "graviton4"}]),
        "cpuConfigurations[0]",
        "unknown member(s) 'chipset'; allowed: architecture",
    ),
    (
        "logging-cloudwatch-unknown-member",
        _set("logging", {"cloudWatch": {"logGroup": "/g", "retentionDays": 7}}),
        "logging.cloudWatch",
        "unknown member(s) 'retentionDays'",
    ),
    (
        "hooks-image-unknown-member",
        _set("hooks.microvmImageHooks.startup", "ENABLED"),
        "hooks.microvmImageHooks",
        "unknown member(s) 'startup'",
    ),
    (
        "resources-not-objects",
        _set("resources", ["2048"]),
        "resources[0].minimumMemoryInMiB",
        "not supported",
    ),
    (
        "egress-given-an-ingress-connector",
        _set("egressNetworkConnectors", ["HTTP_INGRESS"]),
        "egressNetworkConnectors[0]",
        "HTTP_INGRESS is an ingress connector; an image's egress connector is one of INTERNET_EGRESS",
    ),
    (
        "egress-given-shell-ingress-arn",
        _set(
            "egressNetworkConnectors",
            ["arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:SHELL_INGRESS"],
        ),
        "egressNetworkConnectors[0]",
        "SHELL_INGRESS is an ingress connector",
    ),
    (
        "egress-unknown-managed-name",
        _set("egressNetworkConnectors", ["VPC_EGRESS"]),
        "egressNetworkConnectors[0]",
        "VPC_EGRESS is not a managed connector",
    ),
    (
        "egress-lowercase-name",
        _set("egressNetworkConnectors", ["internet_egress"]),
        "egressNetworkConnectors[0]",
        "one of the managed egress connectors INTERNET_EGRESS",
    ),
    # ---- provider settings
    ("keep-51", _set("keepVersions", 51), "keepVersions", "1-50"),
    ("timeout-zero", _set("buildTimeoutMinutes", 0), "buildTimeoutMinutes", "1-240"),
    (
        "terminate-string",
        _set("terminateMicrovmsOnDelete", "yes"),
        "terminateMicrovmsOnDelete",
        "true or false",
    ),
    ("unknown-property", _set("memory", 2048), "memory", "unknown property"),
]


def check(p: dict) -> list[tuple[str, str]]:
    return validate(spec.fill_defaults(p))


def test_baseline_is_valid():
    assert check(base_props()) == []


def test_there_are_at_least_forty_invalid_cases():
    assert len(INVALID_CASES) >= 40


@pytest.mark.parametrize(
    ("mutate", "prop", "text"), [c[1:] for c in INVALID_CASES], ids=[c[0] for c in INVALID_CASES]
)
def test_invalid_input_names_the_property(mutate, prop, text):
    p = copy.deepcopy(base_props())
    mutate(p)
    failures = check(p)
    matching = [reason for path, reason in failures if path == prop]
    assert matching, f"expected a failure on {prop!r}, got {failures}"
    assert any(text in reason for reason in matching), matching


def test_secret_values_never_appear_in_failures():
    p = base_props()
    p["secretEnvironmentVariables"] = {"API_TOKEN": 12345, "OTHER": "t0p-s3cret " * 500}
    failures = check(p)
    text = repr(failures)
    assert "12345" not in text and "t0p-s3cret" not in text
    assert {path for path, _ in failures} == {
        "secretEnvironmentVariables.API_TOKEN",
        "secretEnvironmentVariables.OTHER",
    }


def test_defaults_are_filled_explicitly():
    p = spec.fill_defaults(
        {
            "region": "eu-west-1",
            "buildRoleArn": ROLE,
            "codeArtifact": {"uri": "s3://b-1/k.zip"},
            "nameSeed": "lambda-microvms/dev/app-image",
            "resources": [{"minimumMemoryInMiB": 4096.0}],  # Struct numbers arrive as doubles
        }
    )
    assert p["baseImageArn"] == "arn:aws:lambda:eu-west-1:aws:microvm-image:al2023-1"
    assert p["egressNetworkConnectors"] == [
        "arn:aws:lambda:eu-west-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS"
    ]
    assert p["cpuConfigurations"] == [{"architecture": "ARM_64"}]
    assert p["resources"] == [{"minimumMemoryInMiB": 4096}]
    assert isinstance(p["resources"][0]["minimumMemoryInMiB"], int)
    assert p["keepVersions"] == 3 and p["buildTimeoutMinutes"] == 30
    assert p["terminateMicrovmsOnDelete"] is False
    assert p["namePrefix"] == "app-image"
    assert "name" not in p
    assert validate(p) == []


def test_hook_defaults_are_the_documented_ones():
    p = spec.fill_defaults(
        {**base_props(), "hooks": {"port": 9000, "microvmImageHooks": {"ready": "ENABLED"}}}
    )
    assert p["hooks"]["microvmImageHooks"] == {
        "ready": "ENABLED",
        "readyTimeoutInSeconds": 30,
        "validate": "DISABLED",
        "validateTimeoutInSeconds": 30,
    }
    assert p["hooks"]["microvmHooks"]["runTimeoutInSeconds"] == 1
    assert p["hooks"]["microvmHooks"]["run"] == "DISABLED"


def test_bare_connector_kind_is_expanded():
    p = spec.fill_defaults({**base_props(), "egressNetworkConnectors": ["INTERNET_EGRESS"]})
    assert p["egressNetworkConnectors"] == [
        "arn:aws:lambda:us-east-1:aws:network-connector:aws-network-connector:INTERNET_EGRESS"
    ]
    assert validate(p) == []


def test_unknown_values_are_not_judged_in_preview():
    from pulumi.output import Unknown

    p = base_props()
    p["codeArtifact"] = {"uri": Unknown()}
    p["buildRoleArn"] = Unknown()
    p["secretEnvironmentVariables"] = Unknown()
    assert check(p) == []


def test_customer_connector_arn_is_accepted():
    p = {
        **base_props(),
        "egressNetworkConnectors": [
            "arn:aws:lambda:us-east-1:123456789012:network-connector:nc-0f1e2d3c"
        ],
    }
    assert check(p) == []


def test_tag_limit_leaves_room_for_the_owner_tag():
    # 50 tags per resource; the provider adds lambda-microvms:owner itself
    assert check({**base_props(), "tags": {f"t{i}": "v" for i in range(49)}}) == []
    failures = check({**base_props(), "tags": {f"t{i}": "v" for i in range(50)}})
    assert failures == [
        (
            "tags",
            "50 tags; at most 49 (50 per resource, one is the provider's "
            "lambda-microvms:owner tag)",
        )
    ]


def test_build_timeout_minutes_may_be_fractional_above_one_minute():
    assert check({**base_props(), "buildTimeoutMinutes": 1.5}) == []
    failures = check({**base_props(), "buildTimeoutMinutes": 0.5})
    assert failures == [("buildTimeoutMinutes", "0.5: a number of minutes 1-240")]


# ---- issue 13 item 5: the service model's character classes, short texts, model-driven shapes
def test_tags_in_any_script_with_unicode_spaces_are_valid():
    tags = {"équipe": "données 1", "部署": "开发", "team": "a\u3000b", "k:/=+-@_.": "ü"}
    assert check({**base_props(), "tags": tags}) == []


def test_model_pattern_semantics_are_java_not_python():
    from components.microvm_image import model

    # Java's \s is ASCII whitespace: a no-break space is a valid env var name character
    assert model.shape_matches("EnvironmentVariableKey", "A\u00a0B")
    assert not model.shape_matches("EnvironmentVariableKey", "A B")
    # \p{L}\p{Z}\p{N}: letters, separators, numbers; never a control character
    assert model.shape_matches("TagValue", "Ünïcödé 123 \u2028")
    assert not model.shape_matches("TagValue", "tab\there")
    assert not model.shape_matches("TagKey", "")
    assert model.shape_matches("TagValue", "")


HUGE = "x" * (1 << 20)


@pytest.mark.parametrize(
    "mutate",
    [
        _set("tags", {"team": HUGE}),
        _set("tags", {HUGE: "v"}),
        _set("name", HUGE),
        _set("namePrefix", HUGE),
        _set("region", HUGE),
        _set("buildRoleArn", HUGE),
        _set("codeArtifact.uri", HUGE),
        _set("description", {"big": HUGE}),
        _set(HUGE, 1),
        _set("environmentVariables", {HUGE: "v"}),
        _set("resources", [{"minimumMemoryInMiB": 2048, HUGE: 1}]),
        _set("egressNetworkConnectors", [HUGE]),
        _set("hooks.microvmHooks.run", HUGE),
    ],
    ids=[
        "tag-value",
        "tag-key",
        "name",
        "prefix",
        "region",
        "role",
        "artifact",
        "description",
        "property-name",
        "env-key",
        "member-name",
        "connector",
        "hook-state",
    ],
)
def test_a_huge_value_is_never_echoed_in_full(mutate):
    p = copy.deepcopy(base_props())
    mutate(p)
    failures = check(p)
    assert failures
    for path, reason in failures:
        assert len(path) <= 400 and len(reason) <= 600, (path[:80], reason[:200])
    assert "x" * 300 not in repr(failures)


def test_every_property_sent_to_the_service_is_a_member_of_the_model():
    from components.microvm_image.model import request_members
    from components.microvm_image.validation import MODEL_MEMBERS

    assert set(MODEL_MEMBERS.values()) <= set(request_members())
