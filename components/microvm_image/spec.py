"""The provider's property shape: names, defaults, normalisation and the API request body.

Pure functions only (no API calls, no Pulumi engine state), so they are tested without mocks.
Provider properties use the API's own camelCase names (``CreateMicrovmImage``), plus the
provider-only settings listed in :data:`PROVIDER_SETTINGS`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN  # the wire form of a preview unknown

from microvms.images import log_group_name

DEFAULT_MEMORY = 2048
DEFAULT_ARCHITECTURE = "ARM_64"  # the only one the service builds (microvms.client.ARCHITECTURES)
DEFAULT_KEEP_VERSIONS = 3
DEFAULT_BUILD_TIMEOUT_MINUTES = 30
MAX_VERSIONS = 50  # L-F8BECE9C versions per image (docs/service-facts.md §14)
MANAGED_BASE_IMAGE = "al2023-1"
HOOK_DEFAULT_TIMEOUTS = {  # documented defaults, docs/service-facts.md §4.8
    "readyTimeoutInSeconds": 30,
    "validateTimeoutInSeconds": 30,
    "runTimeoutInSeconds": 1,
    "resumeTimeoutInSeconds": 1,
    "suspendTimeoutInSeconds": 1,
    "terminateTimeoutInSeconds": 1,
}
IMAGE_HOOKS = ("ready", "validate")
RUNTIME_HOOKS = ("run", "resume", "suspend", "terminate")

# The tag the provider puts on every image it creates (stripped from the ``tags`` property; no
# read API returns the clientToken, docs/service-facts.md §8). Its value says which resource made the image (a
# digest of its name seed and region), so a rerun after a crash finds what the crashed create
# left. Create's last call rewrites it to ``<owner>/delivered``, just before the image is handed
# to the engine: an owned image still without the suffix never reached state (a crashed create);
# one with it is (or was) in state and is never adopted by a later Create, so a replacement can
# never re-attach to the image it replaces. One tag, so the program keeps 49 of the 50 allowed.
# CREATION_TAG marked images of earlier provider versions; it is still reserved and stripped.
OWNER_TAG = "lambda-microvms:owner"
DELIVERED_SUFFIX = "/delivered"
CREATION_TAG = "lambda-microvms:creation-token"
PROVIDER_TAGS = (OWNER_TAG, CREATION_TAG)
#: How many tags the provider writes on an image (of the service's 50 per resource).
PROVIDER_TAGS_WRITTEN = 1

# API members, in CreateMicrovmImage order. Changing any of them mints a new image version.
BUILD_KEYS = (
    "baseImageArn",
    "baseImageVersion",
    "buildRoleArn",
    "codeArtifact",
    "description",
    "logging",
    "egressNetworkConnectors",
    "cpuConfigurations",
    "resources",
    "additionalOsCapabilities",
    "hooks",
    "environmentVariables",
    "secretEnvironmentVariables",
)
REPLACE_KEYS = ("name", "namePrefix", "region")
TAG_KEYS = ("tags",)
PROVIDER_SETTINGS = (
    "endpointUrl",
    "keepVersions",
    "buildTimeoutMinutes",
    "terminateMicrovmsOnDelete",
    # An existing image Create takes over instead of making one (read only by Create).
    "adoptArn",
)
IDENTITY_KEYS = ("nameSeed",)  # informational: where a generated name came from
#: Which retained version serves MicroVMs (a rollback without a rebuild); unset = the newest.
#: Applied with UpdateMicrovmImageVersion, in place: never a new version, never a replacement.
ACTIVATION_KEYS = ("activeVersion",)
INPUT_KEYS = (
    REPLACE_KEYS + BUILD_KEYS + TAG_KEYS + PROVIDER_SETTINGS + IDENTITY_KEYS + ACTIVATION_KEYS
)
#: ``activeVersion`` as written in config: ``"<n>.0"`` (``"<n>"`` and an integer are accepted).
ACTIVE_VERSION_RE = re.compile(r"[1-9][0-9]{0,5}(?:\.0)?")


def is_unknown(value: Any) -> bool:
    """True for a preview unknown, as the SDK hands it to ``check``/``diff``."""
    return isinstance(value, Unknown) or value == UNKNOWN


def contains_unknown(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


def plain_numbers(value: Any) -> Any:
    """Struct numbers arrive as doubles (3 → 3.0); turn integral floats back into ints."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_numbers(v) for v in value]
    return value


def managed_connector_arn(kind: str, region: str) -> str:
    return f"arn:aws:lambda:{region}:aws:network-connector:aws-network-connector:{kind}"


def managed_base_image_arn(region: str) -> str:
    return f"arn:aws:lambda:{region}:aws:microvm-image:{MANAGED_BASE_IMAGE}"


def image_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:microvm-image:{name}"


_IMAGE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-zA-Z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"microvm-image:(?P<name>[a-zA-Z0-9_-]{1,64})$"
)


def parse_image_arn(arn: str) -> dict[str, str] | None:
    m = _IMAGE_ARN.match(arn or "")
    return m.groupdict() if m else None


def sanitize_prefix(text: str) -> str:
    """A resource name turned into a legal image-name prefix (``[a-zA-Z0-9-_]``, ≤ 55 chars)."""
    cleaned = re.sub(r"[^a-zA-Z0-9_-]+", "-", text or "").strip("-") or "image"
    return cleaned[:55]


def owner_id(p: Mapping[str, Any]) -> str:
    """A digest naming the resource an image belongs to: same resource and region, same id.

    ``nameSeed`` (``<project>/<stack>/<resource name>``, set by ``MicrovmImageResource``) is unique
    per stack; without it the name or prefix stands in.
    """
    seed = str(p.get("nameSeed") or p.get("name") or p.get("namePrefix") or "image")
    return hashlib.sha256(f"{seed}|{p.get('region')}".encode()).hexdigest()[:16]


def delivered(owner: str) -> str:
    """The owner tag's value once Create has handed the image to the engine."""
    return owner + DELIVERED_SUFFIX


def name_marker(owner: str) -> str:
    """The part of a generated name that says whose it is (the first 4 hex of the owner id)."""
    return owner[:4]


def generated_name(prefix: str, owner: str, nonce: str) -> str:
    """Default image name: ``<prefix>-<4 hex owner marker><4 hex nonce>`` (at most 64 chars).

    Names of deleted images cannot be reused (docs/service-facts.md §4.1, §18), so every create attempt draws a
    fresh ``nonce`` instead of walking a fixed list of candidates that destroy/up cycles would
    use up. A rerun after a crash finds its image by the owner tag, not by its name.
    """
    return f"{prefix[:55]}-{name_marker(owner)}{nonce[:4]}"


def is_generated_by(name: str, owner: str) -> bool:
    """True when ``name`` has the shape :func:`generated_name` gives for ``owner``."""
    return re.search(rf"-{name_marker(owner)}[0-9a-f]{{4}}$", name or "") is not None


def normalise_version(value: Any) -> Any:
    """The service echoes ``"1"`` as ``"1.0"`` (docs/service-facts.md §4.1); compare by major version."""
    if value is None or is_unknown(value):
        return value
    text = str(value).strip()
    m = re.fullmatch(r"([0-9]+)(?:\.0+)?", text)
    return m.group(1) if m else text


def canonical_active_version(value: Any) -> Any:
    """``"3"``, ``3`` and ``"3.0"`` → ``"3.0"``, the service's spelling; anything else as given
    (validation names it)."""
    if isinstance(value, bool) or is_unknown(value):
        return value
    if isinstance(value, int | str) and ACTIVE_VERSION_RE.fullmatch(str(value).strip()):
        return f"{str(value).strip().split('.')[0]}.0"
    return value


def fill_defaults(news: Mapping[str, Any], *, default_region: str | None = None) -> dict[str, Any]:
    """Return a copy of ``news`` with every default filled in explicitly (so diffs are stable).

    Does not validate; :func:`validation.validate` runs on the result. Values that are unknown
    (preview) are left as they are.
    """
    p = {k: plain_numbers(v) for k, v in news.items() if k != "__provider"}
    region = p.get("region") or default_region
    if region:
        p["region"] = region
    # the region as a string when it is known (None when unset, unknown or not a string)
    known = region if isinstance(region, str) and not is_unknown(region) else None

    if not p.get("baseImageArn"):
        if known is not None:
            p["baseImageArn"] = managed_base_image_arn(known)
        elif is_unknown(region):
            # derived from an unknown region: unknown too
            p["baseImageArn"] = Unknown()  # type: ignore[no-untyped-call]  # pulumi: unannotated __init__
    p.setdefault("description", "")
    if p.get("cpuConfigurations") in (None, []):
        p["cpuConfigurations"] = [{"architecture": DEFAULT_ARCHITECTURE}]
    if p.get("resources") in (None, []):
        p["resources"] = [{"minimumMemoryInMiB": DEFAULT_MEMORY}]
    if p.get("additionalOsCapabilities") is None:
        p["additionalOsCapabilities"] = []
    conns = p.get("egressNetworkConnectors")
    if conns in (None, []) and is_unknown(region):
        p["egressNetworkConnectors"] = Unknown()  # type: ignore[no-untyped-call]  # pulumi: unannotated __init__
    elif conns in (None, []) and known is not None:
        p["egressNetworkConnectors"] = [managed_connector_arn("INTERNET_EGRESS", known)]
    elif isinstance(conns, list) and known is not None:
        p["egressNetworkConnectors"] = [
            managed_connector_arn(c, known)
            if isinstance(c, str) and re.fullmatch(r"[A-Z_]+", c)
            else c
            for c in conns
        ]
    hooks = p.get("hooks")
    if isinstance(hooks, dict):
        p["hooks"] = _fill_hooks(hooks)
    for key in ("environmentVariables", "secretEnvironmentVariables", "tags"):
        if p.get(key) is None:
            p[key] = {}
    p.setdefault("keepVersions", DEFAULT_KEEP_VERSIONS)
    p.setdefault("buildTimeoutMinutes", DEFAULT_BUILD_TIMEOUT_MINUTES)
    p.setdefault("terminateMicrovmsOnDelete", False)
    if p.get("logging") is None:
        p.pop("logging", None)
    if p.get("baseImageVersion") in (None, ""):
        p.pop("baseImageVersion", None)
    if p.get("endpointUrl") in (None, ""):
        p.pop("endpointUrl", None)
    active = p.get("activeVersion")
    if active in (None, ""):
        p.pop("activeVersion", None)
    else:
        p["activeVersion"] = canonical_active_version(active)
    if p.get("name") in (None, ""):
        p.pop("name", None)
        if not p.get("namePrefix"):
            p["namePrefix"] = sanitize_prefix(str(p.get("nameSeed") or "image").split("/")[-1])
    return p


def _fill_hooks(hooks: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(hooks)
    for group, names in (("microvmImageHooks", IMAGE_HOOKS), ("microvmHooks", RUNTIME_HOOKS)):
        sub = out.get(group)
        if sub is None:
            sub = {}
        if not isinstance(sub, dict):
            continue
        sub = dict(sub)
        for hook in names:
            sub.setdefault(hook, "DISABLED")
            sub.setdefault(
                f"{hook}TimeoutInSeconds", HOOK_DEFAULT_TIMEOUTS[f"{hook}TimeoutInSeconds"]
            )
        out[group] = sub
    return out


def merged_environment(p: Mapping[str, Any]) -> dict[str, Any]:
    env = dict(p.get("environmentVariables") or {})
    env.update(p.get("secretEnvironmentVariables") or {})
    return env


def build_request(p: Mapping[str, Any]) -> dict[str, Any]:
    """The full CreateMicrovmImage/UpdateMicrovmImage body (minus name, tags and token).

    UpdateMicrovmImage is a full PUT (docs/service-facts.md §4.2): every call carries the whole configuration.
    """
    body: dict[str, Any] = {
        "baseImageArn": p["baseImageArn"],
        "buildRoleArn": p["buildRoleArn"],
        "codeArtifact": {"uri": p["codeArtifact"]["uri"]},
        "cpuConfigurations": p["cpuConfigurations"],
        "resources": p["resources"],
        "egressNetworkConnectors": p["egressNetworkConnectors"],
    }
    if p.get("baseImageVersion"):
        body["baseImageVersion"] = str(p["baseImageVersion"])
    if p.get("description"):
        body["description"] = p["description"]
    if p.get("logging"):
        body["logging"] = p["logging"]
    if p.get("additionalOsCapabilities"):
        body["additionalOsCapabilities"] = p["additionalOsCapabilities"]
    if p.get("hooks"):
        body["hooks"] = p["hooks"]
    env = merged_environment(p)
    if env:
        body["environmentVariables"] = env
    return body


def canonical(value: Any) -> str:
    return json.dumps(plain_numbers(value), sort_keys=True, separators=(",", ":"), default=str)


def client_token(kind: str, identity: str, p: Mapping[str, Any], extra: str = "") -> str:
    """A stable idempotency token: same resource + same inputs → same token (≤ 128 chars).

    boto3 would otherwise invent a fresh UUID per call (docs/service-facts.md §8), which defeats idempotency when a
    crashed deployment is rerun. The token is a digest; it never contains a value.
    """
    material = canonical({"k": kind, "id": identity, "body": build_request(p), "x": extra})
    return f"pulumi-{kind}-" + hashlib.sha256(material.encode()).hexdigest()[:48]


def log_group_for(p: Mapping[str, Any], name: str | None) -> str:
    """Where the build logs are: the configured CloudWatch group or the service default."""
    logging = p.get("logging") or {}
    cw = logging.get("cloudWatch") if isinstance(logging, dict) else None
    if isinstance(cw, dict) and cw.get("logGroup"):
        group: str = cw["logGroup"]  # validated: 1-512 characters
        return group
    return log_group_name(str(name))


def config_from_version(
    version: Mapping[str, Any], *, prior: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Rebuild provider properties from a GetMicrovmImageVersion answer (refresh / import).

    Environment variables are split back into plain and secret by the keys that were secret in
    ``prior``; with no prior (import) every value is treated as secret, the safe default.
    ``baseImageVersion`` keeps the prior spelling when it means the same version (never round-trip
    the service's resolved form, docs/service-facts.md §4.1).
    """
    prior = prior or {}
    out: dict[str, Any] = {
        "baseImageArn": version.get("baseImageArn"),
        "buildRoleArn": version.get("buildRoleArn"),
        "codeArtifact": {"uri": (version.get("codeArtifact") or {}).get("uri")},
        "description": version.get("description") or "",
        "cpuConfigurations": version.get("cpuConfigurations")
        or [{"architecture": DEFAULT_ARCHITECTURE}],
        "resources": version.get("resources") or [{"minimumMemoryInMiB": DEFAULT_MEMORY}],
        "additionalOsCapabilities": version.get("additionalOsCapabilities") or [],
        "egressNetworkConnectors": version.get("egressNetworkConnectors") or [],
    }
    live_bv = version.get("baseImageVersion")
    prior_bv = prior.get("baseImageVersion")
    if prior_bv and normalise_version(prior_bv) == normalise_version(live_bv):
        out["baseImageVersion"] = prior_bv  # same version, keep the program's spelling
    elif prior_bv or (live_bv and not prior):
        out["baseImageVersion"] = live_bv  # drift (or nothing to compare with)
    # else: the program left it unset ("latest"); the resolved value is not drift
    if version.get("logging"):
        out["logging"] = version["logging"]
    if version.get("hooks"):
        out["hooks"] = _fill_hooks(version["hooks"])
    env = dict(version.get("environmentVariables") or {})
    secret_keys = set(prior.get("secretEnvironmentVariables") or {}) if prior else set(env)
    out["environmentVariables"] = {k: v for k, v in env.items() if k not in secret_keys}
    out["secretEnvironmentVariables"] = {k: v for k, v in env.items() if k in secret_keys}
    config: dict[str, Any] = plain_numbers(out)
    return config


def user_tags(tags: Mapping[str, Any] | None) -> dict[str, Any]:
    """The program's tags: every tag except the provider's own (:data:`PROVIDER_TAGS`)."""
    return {k: v for k, v in (tags or {}).items() if k not in PROVIDER_TAGS}
