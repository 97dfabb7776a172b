"""Validation of provider properties: everything the live service would refuse, before any call.

Pure functions. Patterns and lengths come from the botocore model (``lambda-microvms``
2025-09-09); the service rules the model does not state (five memory sizes, ARM_64 only, the
ready-hook rule, supported regions) come from the docs/service-facts.md (§4, §11, §14). Each failure is a
``(property_path, reason)`` pair; the reason names the allowed values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from microvms.client import (
    ARCHITECTURES,
    MANAGED_CONNECTOR_KINDS,
    MEMORY_SIZES,
    SUPPORTED_REGIONS,
)

from .model import check as check_shape
from .model import request_members, shape_matches, show, show_key
from .spec import (
    ACTIVE_VERSION_RE,
    BUILD_KEYS,
    IMAGE_HOOKS,
    INPUT_KEYS,
    MAX_VERSIONS,
    PROVIDER_TAGS,
    PROVIDER_TAGS_WRITTEN,
    RUNTIME_HOOKS,
    is_unknown,
    parse_image_arn,
)

Failure = tuple[str, str]

# botocore model patterns (anchored here; the model's are implicitly full-match)
NAME_RE = re.compile(r"[a-zA-Z0-9_-]+")
ROLE_ARN_RE = re.compile(r"arn:aws[a-z\-]*:iam::[0-9]{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
NON_BLANK_RE = re.compile(r"[^\s]+", re.ASCII)  # Java's \s: ASCII whitespace only
LOG_GROUP_RE = re.compile(r"[a-zA-Z0-9_\-/.#]+")
LOG_STREAM_RE = re.compile(r"[^:*]*")
BASE_IMAGE_ARN_RE = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>aws|[0-9]{12}):"
    r"microvm-image:[a-zA-Z0-9_.-]+"
)
CONNECTOR_ARN_RE = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):"
    r"(?:aws:network-connector:aws-network-connector:(?P<kind>[A-Z_]+)"
    r"|[0-9]{12}:network-connector:nc-[a-zA-Z0-9-]+)"
)
S3_URI_RE = re.compile(r"s3://(?P<bucket>[^/]+)/(?P<key>.+)")
BUCKET_RE = re.compile(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
VERSION_RE = re.compile(r"[0-9]+(\.[0-9]+)?")
HOOK_STATES = ("ENABLED", "DISABLED")
#: Managed connectors an image may name as its egress (the others are ingress kinds).
EGRESS_KINDS = tuple(k for k in MANAGED_CONNECTOR_KINDS if k.endswith("_EGRESS"))
TIMEOUT_RANGES = {
    "readyTimeoutInSeconds": (1, 3600),
    "validateTimeoutInSeconds": (1, 3600),
    "runTimeoutInSeconds": (1, 60),
    "resumeTimeoutInSeconds": (1, 60),
    "suspendTimeoutInSeconds": (1, 60),
    "terminateTimeoutInSeconds": (1, 60),
}
MAX_ENV_VARS = 100
# AWS allows 50 tags per Lambda resource; the provider adds its own owner tag.
MAX_TAGS = 50 - PROVIDER_TAGS_WRITTEN
MAX_BUILD_TIMEOUT_MINUTES = 240

READY_RULE = (
    "the ready (/ready) MicroVM image hook must be ENABLED when any MicroVM lifecycle hook "
    "(run, resume, suspend, or terminate) is ENABLED"
)


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _skip(v: Any) -> bool:
    return is_unknown(v)


def _check_adopt(f: list[Failure], p: Mapping[str, Any], region: str | None) -> None:
    arn = p.get("adoptArn")
    if arn is None or _skip(arn):
        return
    parsed = parse_image_arn(arn) if isinstance(arn, str) else None
    if parsed is None:
        f.append(
            (
                "adoptArn",
                f"{show(arn)} is not a MicroVM image ARN "
                "(arn:aws:lambda:<region>:<account>:microvm-image:<name>)",
            )
        )
    elif region and parsed["region"] != region:
        f.append(("adoptArn", f"the image is in {parsed['region']}, the resource in {region}"))
    elif p.get("name") not in (None, parsed["name"]) and not _skip(p.get("name")):
        f.append(("adoptArn", f"adopting {parsed['name']!r} but name is {show(p.get('name'))}"))


def validate(p: Mapping[str, Any]) -> list[Failure]:
    """Validate defaults-filled properties; return every failure (empty list = valid)."""
    f: list[Failure] = []
    for key in p:
        if key not in INPUT_KEYS and not key.startswith("__"):
            f.append(
                (
                    show_key(key),
                    f"unknown property {show(key)}; allowed: {', '.join(sorted(INPUT_KEYS))}",
                )
            )

    region = p.get("region")
    if region is None:
        f.append(("region", "required; one of " + ", ".join(SUPPORTED_REGIONS)))
    elif not _skip(region) and region not in SUPPORTED_REGIONS:
        f.append(
            (
                "region",
                f"{show(region)} is not a Lambda MicroVMs region; one of {', '.join(SUPPORTED_REGIONS)}",
            )
        )
    region_known = isinstance(region, str) and region in SUPPORTED_REGIONS

    _check_name(f, p)
    _check_endpoint(f, p.get("endpointUrl"))
    _check_adopt(f, p, region if region_known else None)

    base = p.get("baseImageArn")
    if base is None:
        f.append(("baseImageArn", "required: a MicroVM base image ARN"))
    elif not _skip(base):
        m = BASE_IMAGE_ARN_RE.fullmatch(base) if isinstance(base, str) else None
        if not m or len(base) > 2048:
            f.append(
                (
                    "baseImageArn",
                    f"{show(base)} is not a MicroVM image ARN "
                    "(arn:aws:lambda:<region>:aws:microvm-image:al2023-1)",
                )
            )
        elif region_known and m.group("region") != region:
            f.append(
                ("baseImageArn", f"base image is in {m.group('region')}, the image in {region}")
            )

    bv = p.get("baseImageVersion")
    if (
        bv is not None
        and not _skip(bv)
        and (not isinstance(bv, str | int) or not VERSION_RE.fullmatch(str(bv)))
    ):
        f.append(
            ("baseImageVersion", f"{show(bv)} is not a version; give a major version like '1'")
        )

    role = p.get("buildRoleArn")
    if role is None:
        f.append(("buildRoleArn", "required: the IAM role the service assumes to build"))
    elif not _skip(role) and (
        not isinstance(role, str) or not 20 <= len(role) <= 2048 or not ROLE_ARN_RE.fullmatch(role)
    ):
        f.append(
            (
                "buildRoleArn",
                f"{show(role)} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)",
            )
        )

    _check_artifact(f, p.get("codeArtifact"))
    desc = p.get("description")
    if desc is not None and not _skip(desc) and not isinstance(desc, str):
        f.append(("description", "must be a string"))
    _check_logging(f, p.get("logging"))
    _check_connectors(f, p.get("egressNetworkConnectors"), region if region_known else None)
    _check_cpu(f, p.get("cpuConfigurations"))
    _check_resources(f, p.get("resources"))
    _check_capabilities(f, p.get("additionalOsCapabilities"))
    _check_hooks(f, p.get("hooks"))
    _check_env(f, p.get("environmentVariables"), p.get("secretEnvironmentVariables"))
    _check_tags(f, p.get("tags"))
    _check_settings(f, p)
    _check_active_version(f, p.get("activeVersion"))
    _check_model_shapes(f, p)
    return f


def _check_active_version(f: list[Failure], value: Any) -> None:
    """The shape only: whether the image still keeps that version is known at update, not here."""
    if value is None or _skip(value):
        return
    if isinstance(value, bool) or not (
        isinstance(value, int | str) and ACTIVE_VERSION_RE.fullmatch(str(value))
    ):
        f.append(
            (
                "activeVersion",
                f'{show(value)} is not an image version; give "<n>.0" (e.g. "2.0") naming a '
                "version the image still keeps, or leave it unset for the newest",
            )
        )


#: Provider properties sent as CreateMicrovmImage members, by member name.
MODEL_MEMBERS = {key: key for key in (*BUILD_KEYS, "name", "tags")}
MODEL_MEMBERS["secretEnvironmentVariables"] = "environmentVariables"


def _related(a: str, b: str) -> bool:
    """True when one property path is the other or lies inside it."""
    return a == b or any(a.startswith(b + sep) or b.startswith(a + sep) for sep in ".[")


def _check_model_shapes(f: list[Failure], p: Mapping[str, Any]) -> None:
    """Everything the botocore model refuses (unknown members anywhere, wrong types, lengths,
    patterns) that the specific rules above have not already reported for the same property."""
    members = request_members()
    found: list[Failure] = []
    for key, member in MODEL_MEMBERS.items():
        if key in p and member in members:
            found += check_shape(p[key], members[member]["shape"], key)
    reported = [path for path, _ in f]
    for path, reason in found:
        if not any(_related(path, other) for other in reported):
            f.append((path, reason))
            reported.append(path)


def _check_name(f: list[Failure], p: Mapping[str, Any]) -> None:
    name = p.get("name")
    if (
        name is not None
        and not _skip(name)
        and (not isinstance(name, str) or not 1 <= len(name) <= 64 or not NAME_RE.fullmatch(name))
    ):
        f.append(
            (
                "name",
                f"{show(name)}: 1-64 characters of [a-zA-Z0-9-_] (names of deleted images "
                "cannot be reused)",
            )
        )
    prefix = p.get("namePrefix")
    if (
        name is None
        and prefix is not None
        and not _skip(prefix)
        and (
            not isinstance(prefix, str)
            or not 1 <= len(prefix) <= 55
            or not NAME_RE.fullmatch(prefix)
        )
    ):
        f.append(("namePrefix", f"{show(prefix)}: 1-55 characters of [a-zA-Z0-9-_]"))


def _check_endpoint(f: list[Failure], url: Any) -> None:
    if url is None or _skip(url):
        return
    if not isinstance(url, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        f.append(("endpointUrl", f"{show(url)} is not an http(s) URL"))


def _check_artifact(f: list[Failure], art: Any) -> None:
    if art is None:
        f.append(("codeArtifact", "required: {uri: 's3://bucket/key.zip'}"))
        return
    if _skip(art):
        return
    if not isinstance(art, dict):
        f.append(("codeArtifact", "must be an object {uri: 's3://bucket/key.zip'}"))
        return
    uri = art.get("uri")
    if uri is None:
        f.append(("codeArtifact.uri", "required: 's3://bucket/key.zip'"))
    elif not _skip(uri):
        m = S3_URI_RE.fullmatch(uri) if isinstance(uri, str) else None
        if not m or len(uri) > 2048 or not NON_BLANK_RE.fullmatch(uri):
            f.append(("codeArtifact.uri", f"{show(uri)} is not an s3://bucket/key URI"))
        elif not BUCKET_RE.fullmatch(m.group("bucket")):
            f.append(
                ("codeArtifact.uri", f"{show(m.group('bucket'))} is not a valid S3 bucket name")
            )


def _check_logging(f: list[Failure], logging: Any) -> None:
    if logging is None or _skip(logging):
        return
    shape = "exactly one of {disabled: {}} or {cloudWatch: {logGroup, logStream?}}"
    if not isinstance(logging, dict) or len(logging) != 1:
        f.append(("logging", f"is a union: {shape}"))
        return
    ((member, value),) = logging.items()
    if member == "disabled":
        if value not in ({}, None):
            f.append(("logging.disabled", "must be an empty object {}"))
    elif member == "cloudWatch":
        if not isinstance(value, dict):
            f.append(("logging.cloudWatch", "must be an object {logGroup, logStream?}"))
            return
        group = value.get("logGroup")
        if group is None:
            f.append(("logging.cloudWatch.logGroup", "required: 1-512 chars of [a-zA-Z0-9_-/.#]"))
        elif not _skip(group) and (
            not isinstance(group, str)
            or not 1 <= len(group) <= 512
            or not LOG_GROUP_RE.fullmatch(group)
        ):
            f.append(
                ("logging.cloudWatch.logGroup", f"{show(group)}: 1-512 chars of [a-zA-Z0-9_-/.#]")
            )
        stream = value.get("logStream")
        if (
            stream is not None
            and not _skip(stream)
            and (
                not isinstance(stream, str)
                or not 1 <= len(stream) <= 512
                or not LOG_STREAM_RE.fullmatch(stream)
            )
        ):
            f.append(
                ("logging.cloudWatch.logStream", f"{show(stream)}: 1-512 chars, no ':' or '*'")
            )
    else:
        f.append(("logging", f"unknown member {show(member)}; {shape}"))


def _check_connectors(f: list[Failure], conns: Any, region: str | None) -> None:
    if conns is None or _skip(conns):
        return
    if not isinstance(conns, list):
        f.append(("egressNetworkConnectors", "must be a list of at most one connector ARN"))
        return
    if len(conns) > 1:
        f.append(("egressNetworkConnectors", f"at most 1 connector on an image, got {len(conns)}"))
    for i, c in enumerate(conns):
        if _skip(c):
            continue
        path = f"egressNetworkConnectors[{i}]"
        m = CONNECTOR_ARN_RE.fullmatch(c) if isinstance(c, str) else None
        if not m:
            f.append(
                (
                    path,
                    f"{show(c)} is not a network connector ARN; give a connector ARN or one of "
                    f"the managed egress connectors {', '.join(EGRESS_KINDS)}",
                )
            )
            continue
        kind = m.group("kind")
        if kind is not None and kind not in EGRESS_KINDS:
            what = (
                "an ingress connector"
                if kind in MANAGED_CONNECTOR_KINDS
                else "not a managed connector"
            )
            f.append(
                (
                    path,
                    f"{kind} is {what}; an image's egress connector is one of "
                    f"{', '.join(EGRESS_KINDS)} or a customer connector ARN",
                )
            )
        elif region and m.group("region") != region:
            f.append((path, f"connector is in {m.group('region')}, not {region}"))


def _check_cpu(f: list[Failure], cpus: Any) -> None:
    if cpus is None or _skip(cpus):
        return
    if not isinstance(cpus, list) or not cpus:
        f.append(("cpuConfigurations", "must be a non-empty list of {architecture: 'ARM_64'}"))
        return
    for i, c in enumerate(cpus):
        if _skip(c):
            continue
        arch = c.get("architecture") if isinstance(c, dict) else None
        if _skip(arch):
            continue
        if arch not in ARCHITECTURES:
            f.append(
                (
                    f"cpuConfigurations[{i}].architecture",
                    f"{show(arch)} is not supported; allowed: {', '.join(ARCHITECTURES)} "
                    "(the service builds Graviton only)",
                )
            )


def _check_resources(f: list[Failure], res: Any) -> None:
    if res is None or _skip(res):
        return
    if not isinstance(res, list) or len(res) > 1:
        f.append(("resources", "a list of at most one {minimumMemoryInMiB: int}"))
        return
    for i, r in enumerate(res):
        mem = r.get("minimumMemoryInMiB") if isinstance(r, dict) else None
        if _skip(mem):
            continue
        if not _is_int(mem) or mem not in MEMORY_SIZES:
            f.append(
                (
                    f"resources[{i}].minimumMemoryInMiB",
                    f"{show(mem)} MiB is not supported; allowed: {', '.join(map(str, MEMORY_SIZES))}",
                )
            )


def _check_capabilities(f: list[Failure], caps: Any) -> None:
    if caps is None or _skip(caps):
        return
    if not isinstance(caps, list):
        f.append(("additionalOsCapabilities", "must be a list; the only allowed value is 'ALL'"))
        return
    for i, c in enumerate(caps):
        if not _skip(c) and c != "ALL":
            f.append(
                (f"additionalOsCapabilities[{i}]", f"{show(c)}; the only allowed value is 'ALL'")
            )
    if len(caps) != len({str(c) for c in caps}):
        f.append(("additionalOsCapabilities", "duplicate values"))


def _check_hooks(f: list[Failure], hooks: Any) -> None:
    if hooks is None or _skip(hooks):
        return
    if not isinstance(hooks, dict):
        f.append(("hooks", "must be an object {port, microvmImageHooks, microvmHooks}"))
        return
    port = hooks.get("port")
    if port is not None and not _skip(port) and (not _is_int(port) or not 1 <= port <= 65535):
        f.append(("hooks.port", f"{show(port)}: an integer 1-65535"))
    enabled: dict[str, bool] = {}
    for group, names in (("microvmImageHooks", IMAGE_HOOKS), ("microvmHooks", RUNTIME_HOOKS)):
        sub = hooks.get(group)
        if sub is None or _skip(sub):
            continue
        if not isinstance(sub, dict):
            f.append((f"hooks.{group}", "must be an object"))
            continue
        for hook in names:
            state = sub.get(hook)
            if state is not None and not _skip(state) and state not in HOOK_STATES:
                f.append((f"hooks.{group}.{hook}", f"{show(state)}; allowed: ENABLED, DISABLED"))
            enabled[hook] = state == "ENABLED"
            tkey = f"{hook}TimeoutInSeconds"
            t = sub.get(tkey)
            lo, hi = TIMEOUT_RANGES[tkey]
            if t is not None and not _skip(t) and (not _is_int(t) or not lo <= t <= hi):
                f.append((f"hooks.{group}.{tkey}", f"{show(t)}: an integer {lo}-{hi} seconds"))
    if any(enabled.get(h) for h in RUNTIME_HOOKS) and not enabled.get("ready"):
        f.append(("hooks.microvmImageHooks.ready", READY_RULE))
    if any(enabled.values()) and port is None:
        f.append(
            ("hooks.port", "required when any hook is ENABLED: the guest port the hooks listen on")
        )


def _check_env(f: list[Failure], plain: Any, secret: Any) -> None:
    total = 0
    keys: dict[str, set[Any]] = {}
    for prop, env in (("environmentVariables", plain), ("secretEnvironmentVariables", secret)):
        if env is None or _skip(env):
            continue
        if not isinstance(env, dict):
            f.append((prop, "must be a map of name to string value"))
            continue
        total += len(env)
        keys[prop] = set(env)
        for k, v in env.items():
            if not isinstance(k, str) or not shape_matches("EnvironmentVariableKey", k):
                f.append(
                    (
                        f"{prop}.{show_key(k)}",
                        "variable names are 1-256 characters without whitespace",
                    )
                )
            if _skip(v):
                continue
            if not isinstance(v, str):
                # never echo a value: it may be a secret
                f.append(
                    (f"{prop}.{show_key(k)}", f"value must be a string, got {type(v).__name__}")
                )
            elif len(v) > 4096:
                f.append((f"{prop}.{show_key(k)}", f"value is {len(v)} characters; at most 4096"))
    if total > MAX_ENV_VARS:
        f.append(
            (
                "environmentVariables",
                f"{total} variables (plain + secret); at most {MAX_ENV_VARS}",
            )
        )
    both = keys.get("environmentVariables", set()) & keys.get("secretEnvironmentVariables", set())
    if both:
        f.append(
            (
                "secretEnvironmentVariables",
                f"{sorted(both)} also set in environmentVariables; give each name once",
            )
        )


def _check_tags(f: list[Failure], tags: Any) -> None:
    if tags is None or _skip(tags):
        return
    if not isinstance(tags, dict):
        f.append(("tags", "must be a map of string to string"))
        return
    if len(tags) > MAX_TAGS:
        f.append(
            (
                "tags",
                f"{len(tags)} tags; at most {MAX_TAGS} (50 per resource, one is the provider's "
                f"{PROVIDER_TAGS[0]} tag)",
            )
        )
    # character classes from the service model (\p{L}\p{Z}\p{N} plus _.:/=+-@): no control
    # characters such as tab or newline
    allowed = "letters, digits, spaces and _.:/=+-@ (no control characters such as tab or newline)"
    for k, v in tags.items():
        path = f"tags.{show_key(k)}"
        if not isinstance(k, str) or not shape_matches("TagKey", k):
            f.append((path, f"keys are 1-128 characters of {allowed}"))
        elif k.lower().startswith("aws:"):
            f.append((path, "the aws: prefix is reserved for AWS"))
        elif k in PROVIDER_TAGS:
            f.append((path, "reserved for the provider's crash recovery"))
        if _skip(v):
            continue
        if not isinstance(v, str) or not shape_matches("TagValue", v):
            got = f"; got {len(v)} characters" if isinstance(v, str) and len(v) > 256 else ""
            f.append((path, f"values are 0-256 characters of {allowed}{got}"))


def _check_settings(f: list[Failure], p: Mapping[str, Any]) -> None:
    kv = p.get("keepVersions")
    if not _skip(kv) and (not _is_int(kv) or not 1 <= kv <= MAX_VERSIONS):
        f.append(
            ("keepVersions", f"{show(kv)}: an integer 1-{MAX_VERSIONS} (versions per image quota)")
        )
    bt = p.get("buildTimeoutMinutes")
    if not _skip(bt) and (
        isinstance(bt, bool)
        or not isinstance(bt, int | float)
        or not 1 <= bt <= MAX_BUILD_TIMEOUT_MINUTES
    ):
        f.append(
            (
                "buildTimeoutMinutes",
                f"{show(bt)}: a number of minutes 1-{MAX_BUILD_TIMEOUT_MINUTES}",
            )
        )
    tm = p.get("terminateMicrovmsOnDelete")
    if not _skip(tm) and not isinstance(tm, bool):
        f.append(("terminateMicrovmsOnDelete", f"{show(tm)}: true or false"))
