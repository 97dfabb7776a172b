"""The one typed, validated settings model for a stack.

Every stack setting is read here, once, from Pulumi config (``Pulumi.yaml`` defaults +
``Pulumi.<stack>.yaml``), validated once, and handed to the components as a frozen
:class:`Settings`. A bad value fails ``pulumi preview`` immediately with a :class:`ConfigError`
that names the key, the bad value and the allowed values.

The parsing itself is a pure function (:func:`parse_settings`) over the raw string values the
engine hands the program (``PULUMI_CONFIG``), so it is tested without mocks.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import pulumi

from components.microvm_image.spec import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_BUILD_TIMEOUT_MINUTES,
    DEFAULT_KEEP_VERSIONS,
    DEFAULT_MEMORY,
    MAX_VERSIONS,
)
from components.naming import partition_for_region
from microvms.client import ARCHITECTURES, MANAGED_CONNECTOR_KINDS, MEMORY_SIZES, SUPPORTED_REGIONS
from microvms.vms import MAX_DURATION_SECONDS, MAX_IDLE_SECONDS, MIN_IDLE_SECONDS, IdlePolicy

NAMESPACE = "lambda-microvms"
REPO_ROOT = Path(__file__).resolve().parent.parent
HOOKS_FILE = REPO_ROOT / "image" / "hooks.json"

ENVIRONMENTS = ("dev", "prod", "local")  # the stacks that exist (no staging stack ships)
# CloudWatch Logs accepts only these retention values.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
MANAGED_CONNECTORS = MANAGED_CONNECTOR_KINDS
ENDPOINT_KEYS = ("microvms", "proxy", "s3", "iam", "sts", "logs")
# Leave room for the stable random suffix the provider appends ("-" + 8 hex) within 64 chars.
IMAGE_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,40}$")
ACCOUNT_RE = re.compile(r"^\d{12}$")


class ConfigError(pulumi.RunError):
    """A stack setting is missing or invalid. The message names the key and the allowed values."""


@dataclass(frozen=True)
class SmokeTestSettings:
    """The throwaway MicroVM run, probed and terminated after each new image version."""

    enabled: bool = True
    path: str = "/health"
    expected_status: int = 200
    timeout_seconds: int = 300
    ingress_connectors: tuple[str, ...] = ("HTTP_INGRESS",)
    egress_connectors: tuple[str, ...] = ("INTERNET_EGRESS",)


@dataclass(frozen=True)
class SessionRunSettings:
    """An optional long-lived MicroVM for the stack (e.g. a dev sandbox with a shell)."""

    enabled: bool = False
    ingress_connectors: tuple[str, ...] = ("SHELL_INGRESS", "HTTP_INGRESS")


@dataclass(frozen=True)
class Endpoints:
    """Endpoint overrides (local stack only); ``None`` means the real AWS endpoint."""

    microvms: str | None = None
    proxy: str | None = None
    s3: str | None = None
    iam: str | None = None
    sts: str | None = None
    logs: str | None = None

    @property
    def is_local(self) -> bool:
        return any(getattr(self, k) for k in ENDPOINT_KEYS)


@dataclass(frozen=True)
class ArtifactBucketSettings:
    force_destroy: bool = False
    noncurrent_version_expiration_days: int = 30
    kms_key_arn: str | None = None


DEFAULT_IMAGE_KEY = "default"
#: The folder packaged for an image unless it says ``source`` (relative to the program).
DEFAULT_IMAGE_SOURCE = "image"
#: An image key: part of resource names (``<key>-image``) and of the ``images`` output.
IMAGE_KEY_RE = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
#: ``activeVersion``: a version as the service spells it ("<n>.0").
ACTIVE_VERSION_RE = re.compile(r"^[1-9][0-9]{0,5}\.0$")
#: The members of one ``images`` entry: the stack-wide keys an image may override, plus its own.
IMAGE_MEMBERS = (
    "source", "imageName", "memoryMiB", "architecture", "baseImageVersion", "hooks",
    "environmentVariables", "secretEnvironmentVariables", "smokeTest", "sessionRun",
    "keepVersions", "buildTimeoutMinutes", "logRetentionDays", "terminateMicrovmsOnDelete",
    "tags", "adopt", "activeVersion",
)  # fmt: skip


@dataclass(frozen=True)
class ImageSettings:
    """One image of the stack (an ``images`` entry, or the single default image).

    Every setting an entry leaves out is the stack-wide one; ``smokeTest`` and ``sessionRun``
    merge member by member and ``tags`` add to the stack's; the rest replace the stack's value.
    """

    key: str
    image_name: str
    source: str = DEFAULT_IMAGE_SOURCE
    memory_mib: int = DEFAULT_MEMORY
    architecture: str = DEFAULT_ARCHITECTURE
    base_image_version: str = "1"
    hooks: dict[str, Any] | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)
    secret_environment_variable_names: tuple[str, ...] = ()
    own_secret_environment_variables: bool = False
    """True when the entry sets its own ``secretEnvironmentVariables`` (else the stack's apply)."""
    smoke_test: SmokeTestSettings = field(default_factory=SmokeTestSettings)
    session_run: SessionRunSettings = field(default_factory=SessionRunSettings)
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    build_timeout_minutes: int = DEFAULT_BUILD_TIMEOUT_MINUTES
    log_retention_days: int = 30
    terminate_microvms_on_delete: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    """The user tags of the image's resources (the stack's ``tags`` plus the entry's own)."""
    adopt: str | None = None
    adopt_key: str = "adopt"
    """The config key ``adopt`` came from (for messages)."""
    active_version: str | None = None
    """``activeVersion``: the retained version to make active ("<n>.0"); None = the newest."""

    @property
    def is_default(self) -> bool:
        return self.key == DEFAULT_IMAGE_KEY

    def logical_name(self, base: str) -> str:
        """A resource name of this image: the default image keeps the single-image names
        (``image``, ``logs``, …), so an existing stack sees no diff; others get ``<key>-<base>``."""
        return base if self.is_default else f"{self.key}-{base}"


@dataclass(frozen=True)
class Settings:
    """Everything a stack decides, validated. Field docs give the config key and default."""

    project: str
    stack: str
    environment: str
    region: str
    allowed_account_ids: tuple[str, ...]
    image_name: str = "agent-sandbox"
    memory_mib: int = DEFAULT_MEMORY
    architecture: str = DEFAULT_ARCHITECTURE
    base_image_version: str = "1"
    hooks: dict[str, Any] | None = None
    idle_policy: IdlePolicy | None = None
    maximum_duration_seconds: int = 900
    smoke_test: SmokeTestSettings = field(default_factory=SmokeTestSettings)
    session_run: SessionRunSettings = field(default_factory=SessionRunSettings)
    tags: dict[str, str] = field(default_factory=dict)
    endpoints: Endpoints = field(default_factory=Endpoints)
    artifact_bucket: ArtifactBucketSettings = field(default_factory=ArtifactBucketSettings)
    log_retention_days: int = 30
    bedrock_model_arns: tuple[str, ...] = ()
    execution_role_extra_statements: tuple[dict[str, Any], ...] = ()
    attach_read_only_access: bool = False
    ecr_repository_arns: tuple[str, ...] = ()
    keep_versions: int = DEFAULT_KEEP_VERSIONS
    build_timeout_minutes: int = DEFAULT_BUILD_TIMEOUT_MINUTES
    environment_variables: dict[str, str] = field(default_factory=dict)
    secret_environment_variable_names: tuple[str, ...] = ()
    terminate_microvms_on_delete: bool = False
    account_id: str | None = None
    adopt: str | None = None
    """An existing image (ARN or exact name) the stack takes over instead of creating one."""
    images: tuple[ImageSettings, ...] = ()
    """The stack's images (``images``; ``{}``: one image with the default key from the keys above)."""
    images_declared: bool = False
    """True when ``images`` lists the images (the stack then also exports the ``images`` map)."""
    protect: bool = False
    """``protect``: the bucket, the images and the log groups are protected and retained on delete."""

    @property
    def adopted_image_arn(self) -> str | None:
        """The ARN to import for ``adopt`` (a name resolves in the stack's region and account)."""
        return adopt_arn(
            self.adopt,
            key="adopt",
            region=self.region,
            account_id=self.account_id,
            accounts=self.allowed_account_ids,
        )

    def adopted_arn_of(self, image: ImageSettings) -> str | None:
        """The ARN ``image`` adopts (its own ``adopt``, or for the default image the stack's)."""
        return adopt_arn(
            image.adopt,
            key=image.adopt_key,
            region=self.region,
            account_id=self.account_id,
            accounts=self.allowed_account_ids,
        )

    def tags_for(self, image: ImageSettings) -> dict[str, str]:
        """The common tags of one image's resources: project, stack, environment, its ``tags``."""
        return {
            "project": self.project,
            "stack": self.stack,
            "environment": self.environment,
            **image.tags,
        }

    @property
    def common_tags(self) -> dict[str, str]:
        """Tags for every taggable resource: project, stack, environment, plus config ``tags``."""
        return {
            "project": self.project,
            "stack": self.stack,
            "environment": self.environment,
            **self.tags,
        }


# ---------------------------------------------------------------------------------------------
# Pure parsing


def _key(name: str) -> str:
    return name if ":" in name else f"{NAMESPACE}:{name}"


class _Reader:
    """Typed access to raw config strings, raising ConfigError that names the key."""

    def __init__(self, raw: Mapping[str, str | None]):
        self.raw = raw

    def _get(self, name: str) -> str | None:
        value = self.raw.get(_key(name))
        return None if value is None else str(value)

    @overload
    def string(self, name: str, default: str, *, required: bool = ...) -> str: ...
    @overload
    def string(self, name: str, default: None = ..., *, required: Literal[True]) -> str: ...
    @overload
    def string(self, name: str, default: None = ..., *, required: bool = ...) -> str | None: ...
    def string(
        self, name: str, default: str | None = None, *, required: bool = False
    ) -> str | None:
        value = self._get(name)
        if value is None or value == "":
            if required:
                raise ConfigError(
                    f"missing required configuration key '{_key(name)}': set it with "
                    f"`pulumi config set {_key(name)} <value>` or in Pulumi.<stack>.yaml"
                )
            return default
        return value

    def integer(self, name: str, default: int) -> int:
        value = self._get(name)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"'{_key(name)}' must be an integer, got {value!r}") from None
        if not number.is_integer():
            raise ConfigError(f"'{_key(name)}' must be an integer, got {value!r}")
        return int(number)

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None or value == "":
            return default
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ConfigError(f"'{_key(name)}' must be true or false, got {value!r}")

    def json(self, name: str, default: Any, expected: type | tuple[type, ...]) -> Any:
        value = self._get(name)
        if value is None or value == "":
            return default
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(
                f"'{_key(name)}' must be valid structured YAML/JSON, got {value!r}"
            ) from None
        if not isinstance(parsed, expected):
            names = (
                expected.__name__
                if isinstance(expected, type)
                else "/".join(t.__name__ for t in expected)
            )
            kind = {"dict": "an object", "list": "a list"}.get(names, names)
            raise ConfigError(f"'{_key(name)}' must be {kind}, got {value!r}")
        return parsed


def _one_of(key: str, value: Any, allowed: tuple[Any, ...], unit: str = "") -> Any:
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise ConfigError(f"'{_key(key)}' is {value!r}{unit}; allowed values: {shown}")
    return value


def _in_range(key: str, value: int, low: int, high: int | None = None) -> int:
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"'{_key(key)}' is {value}; it must be {bound}")
    return value


def _members(key: str, obj: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise ConfigError(
            f"'{_key(key)}' has unknown member(s) {', '.join(unknown)}; allowed members: {', '.join(allowed)}"
        )


def _connectors(key: str, values: Any) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"'{_key(key)}' must be a list of connector names or ARNs")
    for v in values:
        if not v.startswith("arn:") and v.upper() not in MANAGED_CONNECTORS:
            raise ConfigError(
                f"'{_key(key)}' has {v!r}; allowed values: a network connector ARN or one of "
                f"{', '.join(MANAGED_CONNECTORS)}"
            )
    return tuple(values)


ADOPT_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:lambda:(?P<region>[a-z0-9-]+):[0-9]{12}:microvm-image:[A-Za-z0-9_-]{1,64}$"
)
ADOPT_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _adopt(r: _Reader, region: str, name: str = "adopt") -> str | None:
    value = r.string(name) or None
    if value is None:
        return None
    arn = ADOPT_ARN_RE.match(value)
    if not arn and not ADOPT_NAME_RE.match(value):
        raise ConfigError(
            f"'{_key(name)}' is {value[:80]!r}; it must be a MicroVM image ARN "
            "(arn:aws:lambda:<region>:<account>:microvm-image:<name>) or an exact image name "
            "(1-64 characters of [A-Za-z0-9_-])"
        )
    if arn and arn.group("region") != region:
        raise ConfigError(
            f"'{_key(name)}' names an image in {arn.group('region')}, but the stack deploys to "
            f"{region}; adopt an image of the stack's region"
        )
    return value


def adopt_arn(
    value: str | None, *, key: str, region: str, account_id: str | None, accounts: tuple[str, ...]
) -> str | None:
    """The ARN an ``adopt`` value names (a name resolves in the stack's region and account)."""
    if not value:
        return None
    if value.startswith("arn:"):
        return value
    known = (account_id,) if account_id else accounts
    if len(known) != 1:
        raise ConfigError(
            f"'{_key(key)}' is the name {value!r}, but the stack's account is not "
            "known before deployment (set 'accountId' or a single 'aws:allowedAccountIds' "
            "entry), so give the image ARN instead"
        )
    return f"arn:{partition_for_region(region)}:lambda:{region}:{known[0]}:microvm-image:{value}"


def _idle_policy(r: _Reader) -> IdlePolicy | None:
    obj = r.json("idlePolicy", None, dict)
    if not obj:  # unset, or Pulumi.yaml's default {}
        return None
    members = ("maxIdleDurationSeconds", "suspendedDurationSeconds", "autoResumeEnabled")
    _members("idlePolicy", obj, members)
    missing = [m for m in members if m not in obj]
    if missing:
        raise ConfigError(
            f"'{_key('idlePolicy')}' is missing {', '.join(missing)}; the API requires all of "
            f"{', '.join(members)}"
        )
    max_idle, suspended, resume = (obj[m] for m in members)
    low, high = MIN_IDLE_SECONDS, MAX_IDLE_SECONDS
    if not isinstance(max_idle, int) or isinstance(max_idle, bool) or not low <= max_idle <= high:
        raise ConfigError(
            f"'{_key('idlePolicy')}.maxIdleDurationSeconds' is {max_idle!r}; it must be an integer between {low} and {high}"
        )
    if not isinstance(suspended, int) or isinstance(suspended, bool) or not 0 <= suspended <= high:
        raise ConfigError(
            f"'{_key('idlePolicy')}.suspendedDurationSeconds' is {suspended!r}; it must be an integer between 0 and {high}"
        )
    if not isinstance(resume, bool):
        raise ConfigError(
            f"'{_key('idlePolicy')}.autoResumeEnabled' is {resume!r}; it must be true or false"
        )
    return IdlePolicy(max_idle, suspended, resume)


def _smoke_test(
    r: _Reader, name: str = "smokeTest", base: SmokeTestSettings | None = None
) -> SmokeTestSettings:
    """``smokeTest``; members it leaves out come from ``base`` (an image's: the stack-wide test)."""
    obj = r.json(name, {}, dict)
    allowed = (
        "enabled",
        "path",
        "expectedStatus",
        "timeoutSeconds",
        "ingressConnectors",
        "egressConnectors",
    )
    _members(name, obj, allowed)
    d = base or SmokeTestSettings()
    enabled = obj.get("enabled", d.enabled)
    if not isinstance(enabled, bool):
        raise ConfigError(f"'{_key(name)}.enabled' is {enabled!r}; it must be true or false")
    path = obj.get("path", d.path)
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError(f"'{_key(name)}.path' is {path!r}; it must be a path starting with '/'")
    status = obj.get("expectedStatus", d.expected_status)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigError(
            f"'{_key(name)}.expectedStatus' is {status!r}; it must be an HTTP status 100-599"
        )
    timeout = obj.get("timeoutSeconds", d.timeout_seconds)
    if not isinstance(timeout, int) or not 10 <= timeout <= 3600:
        raise ConfigError(
            f"'{_key(name)}.timeoutSeconds' is {timeout!r}; it must be between 10 and 3600"
        )
    ingress = _connectors(
        f"{name}.ingressConnectors", obj.get("ingressConnectors", list(d.ingress_connectors))
    )
    egress = _connectors(
        f"{name}.egressConnectors", obj.get("egressConnectors", list(d.egress_connectors))
    )
    return SmokeTestSettings(enabled, path, status, timeout, ingress, egress)


def _session_run(
    r: _Reader, name: str = "sessionRun", base: SessionRunSettings | None = None
) -> SessionRunSettings:
    obj = r.json(name, {}, dict)
    _members(name, obj, ("enabled", "ingressConnectors"))
    d = base or SessionRunSettings()
    enabled = obj.get("enabled", d.enabled)
    if not isinstance(enabled, bool):
        raise ConfigError(f"'{_key(name)}.enabled' is {enabled!r}; it must be true or false")
    ingress = _connectors(
        f"{name}.ingressConnectors", obj.get("ingressConnectors", list(d.ingress_connectors))
    )
    return SessionRunSettings(enabled, ingress)


def _string_map(r: _Reader, name: str) -> dict[str, str]:
    obj = r.json(name, {}, dict)
    for k, v in obj.items():
        if not isinstance(v, str | int | float | bool):
            raise ConfigError(f"'{_key(name)}.{k}' must be a string, got {v!r}")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in obj.items()}


MAX_USER_TAGS = 46  # 50 per resource, less project/stack/environment and the provider's own tag


def _tags(r: _Reader, name: str = "tags", base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``tags``; an image's own tags are added to (and override) the stack-wide ``base``."""
    tags = {**(base or {}), **_string_map(r, name)}
    if len(tags) > MAX_USER_TAGS:
        raise ConfigError(
            f"'{_key(name)}' has {len(tags)} tags; at most {MAX_USER_TAGS} are allowed "
            "(AWS allows 50 per resource; the stack adds project, stack, environment and one provider tag)"
        )
    return tags


def _endpoints(r: _Reader) -> Endpoints:
    obj = r.json("endpoints", {}, dict)
    _members("endpoints", obj, ENDPOINT_KEYS)
    for k, v in obj.items():
        if not isinstance(v, str) or not re.match(r"^https?://", v):
            raise ConfigError(f"'{_key('endpoints')}.{k}' is {v!r}; it must be an http(s):// URL")
    return Endpoints(**{k: obj.get(k) for k in ENDPOINT_KEYS})


def _artifact_bucket(r: _Reader) -> ArtifactBucketSettings:
    obj = r.json("artifactBucket", {}, dict)
    _members(
        "artifactBucket", obj, ("forceDestroy", "noncurrentVersionExpirationDays", "kmsKeyArn")
    )
    d = ArtifactBucketSettings()
    force = obj.get("forceDestroy", d.force_destroy)
    if not isinstance(force, bool):
        raise ConfigError(
            f"'{_key('artifactBucket')}.forceDestroy' is {force!r}; it must be true or false"
        )
    days = obj.get("noncurrentVersionExpirationDays", d.noncurrent_version_expiration_days)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
        raise ConfigError(
            f"'{_key('artifactBucket')}.noncurrentVersionExpirationDays' is {days!r}; it must be between 1 and 3650"
        )
    kms = obj.get("kmsKeyArn")
    if kms is not None and (not isinstance(kms, str) or not re.match(r"^arn:aws[a-z-]*:kms:", kms)):
        raise ConfigError(
            f"'{_key('artifactBucket')}.kmsKeyArn' is {kms!r}; it must be a KMS key ARN"
        )
    return ArtifactBucketSettings(force, days, kms)


def _statements(r: _Reader) -> tuple[dict[str, Any], ...]:
    items = r.json("executionRoleExtraStatements", [], list)
    for i, st in enumerate(items):
        if not isinstance(st, dict) or "Action" not in st or "Resource" not in st:
            raise ConfigError(
                f"'{_key('executionRoleExtraStatements')}[{i}]' must be an IAM statement object with "
                "Action and Resource (and Effect Allow)"
            )
        if st.get("Effect", "Allow") != "Allow":
            raise ConfigError(f"'{_key('executionRoleExtraStatements')}[{i}].Effect' must be Allow")
    return tuple({"Effect": "Allow", **st} for st in items)


def _string_list(
    r: _Reader, name: str, pattern: re.Pattern[str] | None = None, what: str = ""
) -> tuple[str, ...]:
    items = r.json(name, [], list)
    for i, v in enumerate(items):
        if not isinstance(v, str) or (pattern and not pattern.match(v)):
            raise ConfigError(f"'{_key(name)}[{i}]' is {v!r}; it must be {what or 'a string'}")
    return tuple(items)


def load_hooks_file(path: Path = HOOKS_FILE) -> dict[str, Any] | None:
    """The image's hook configuration (``image/hooks.json``), or None if the image has none."""
    if not path.exists():
        return None
    hooks = json.loads(path.read_text())
    if not isinstance(hooks, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(hooks).__name__}")
    return hooks


def parse_settings(
    raw: Mapping[str, str | None],
    *,
    project: str = NAMESPACE,
    stack: str = "dev",
    secret_keys: tuple[str, ...] = (),
    hooks_file: Path = HOOKS_FILE,
    program_dir: Path = REPO_ROOT,
) -> Settings:
    """Validate raw config strings (as in ``PULUMI_CONFIG``) into :class:`Settings`."""
    r = _Reader(raw)
    environment = r.string("environment", required=True)
    _one_of("environment", environment, ENVIRONMENTS)
    region = r.string("aws:region", required=True)
    _one_of("aws:region", region, SUPPORTED_REGIONS)

    accounts = _string_list(r, "aws:allowedAccountIds", ACCOUNT_RE, "a 12-digit AWS account id")
    account_id = r.string("accountId")
    if account_id is not None and not ACCOUNT_RE.match(account_id):
        raise ConfigError(
            f"'{_key('accountId')}' is {account_id!r}; it must be a 12-digit AWS account id"
        )
    if environment != "local" and not accounts:
        raise ConfigError(
            f"missing required configuration key 'aws:allowedAccountIds' for environment {environment!r}: "
            "pin the stack to its account(s) so it can never deploy into the wrong one"
        )

    image_name = r.string("imageName", Settings.image_name)
    if not IMAGE_NAME_RE.match(image_name):
        raise ConfigError(
            f"'{_key('imageName')}' is {image_name!r}; it must be 1-40 characters of [a-zA-Z0-9-_]"
        )
    memory = _one_of("memoryMiB", r.integer("memoryMiB", Settings.memory_mib), MEMORY_SIZES, " MiB")
    architecture = _one_of(
        "architecture", r.string("architecture", Settings.architecture), ARCHITECTURES
    )
    base_version = r.string("baseImageVersion", Settings.base_image_version)
    if not re.match(r"^\d+$", base_version):
        raise ConfigError(
            f"'{_key('baseImageVersion')}' is {base_version!r}; it must be a major version such as \"1\" "
            '(not the read-back form "1.0")'
        )

    stack_hooks = r.json("hooks", None, dict) or None
    # unset, or Pulumi.yaml's default {}: the image's own hooks.json
    hooks = stack_hooks or load_hooks_file(hooks_file)

    retention = _one_of(
        "logRetentionDays",
        r.integer("logRetentionDays", Settings.log_retention_days),
        LOG_RETENTION_DAYS,
    )
    env_vars = _string_map(r, "environmentVariables")
    secret_names: tuple[str, ...] = ()
    secret_raw = r.json("secretEnvironmentVariables", {}, dict)
    if secret_raw:
        if _key("secretEnvironmentVariables") not in secret_keys:
            raise ConfigError(
                f"'{_key('secretEnvironmentVariables')}' must be set as a secret "
                f"(`pulumi config set --secret --path '{_key('secretEnvironmentVariables')}.NAME' value`)"
            )
        secret_names = tuple(sorted(secret_raw))
    _check_environment(env_vars, secret_names, "environmentVariables", "secretEnvironmentVariables")

    stack_settings = Settings(
        project=project,
        stack=stack,
        environment=environment,
        region=region,
        allowed_account_ids=accounts,
        image_name=image_name,
        memory_mib=memory,
        architecture=architecture,
        base_image_version=base_version,
        hooks=hooks,
        idle_policy=_idle_policy(r),
        maximum_duration_seconds=_in_range(
            "maximumDurationSeconds",
            r.integer("maximumDurationSeconds", Settings.maximum_duration_seconds),
            1,
            MAX_DURATION_SECONDS,
        ),
        smoke_test=_smoke_test(r),
        session_run=_session_run(r),
        tags=_tags(r),
        endpoints=_endpoints(r),
        artifact_bucket=_artifact_bucket(r),
        log_retention_days=retention,
        bedrock_model_arns=_string_list(
            r,
            "bedrockModelArns",
            re.compile(r"^arn:aws[a-z-]*:bedrock:"),
            "a Bedrock model or inference-profile ARN",
        ),
        execution_role_extra_statements=_statements(r),
        attach_read_only_access=r.boolean("attachReadOnlyAccess", Settings.attach_read_only_access),
        ecr_repository_arns=_string_list(
            r, "ecrRepositoryArns", re.compile(r"^arn:aws[a-z-]*:ecr:"), "an ECR repository ARN"
        ),
        keep_versions=_in_range(
            "keepVersions", r.integer("keepVersions", Settings.keep_versions), 1, MAX_VERSIONS
        ),
        build_timeout_minutes=_in_range(
            "buildTimeoutMinutes",
            r.integer("buildTimeoutMinutes", Settings.build_timeout_minutes),
            1,
            120,
        ),
        environment_variables=env_vars,
        secret_environment_variable_names=secret_names,
        terminate_microvms_on_delete=r.boolean(
            "terminateMicrovmsOnDelete", Settings.terminate_microvms_on_delete
        ),
        account_id=account_id,
        adopt=_adopt(r, region),
    )
    declared = r.json("images", {}, dict)
    entries = declared or {DEFAULT_IMAGE_KEY: {}}
    images = tuple(
        _image(key, obj, stack_settings, stack_hooks=stack_hooks, secret_keys=secret_keys,
               program_dir=program_dir)
        for key, obj in entries.items()
    )  # fmt: skip
    _check_images_distinct(images)
    if stack_settings.adopt and DEFAULT_IMAGE_KEY not in entries:
        raise ConfigError(
            f"'{_key('adopt')}' adopts the default image, but '{_key('images')}' has no "
            f"{DEFAULT_IMAGE_KEY!r} entry; set '{_key('images')}.<key>.adopt' on the image instead"
        )
    return dataclasses.replace(
        stack_settings,
        images=images,
        images_declared=bool(declared),
        protect=r.boolean("protect", Settings.protect),
    )


def _check_environment(
    env_vars: Mapping[str, str], secret_names: tuple[str, ...], env_key: str, secret_key: str
) -> None:
    overlap = sorted(set(env_vars) & set(secret_names))
    if overlap:
        raise ConfigError(
            f"'{_key(env_key)}' and '{_key(secret_key)}' both define "
            f"{', '.join(overlap)}; define each variable once"
        )
    # The stack adds AWS_REGION (the agent's Bedrock region) unless environmentVariables sets it.
    total = len(set(env_vars) | {"AWS_REGION"}) + len(secret_names)
    if total > 100:
        raise ConfigError(
            f"at most 100 environment variables are allowed, got {total} "
            f"({env_key} + {secret_key} + the AWS_REGION the stack adds)"
        )


def _config_string(value: Any) -> str:
    """A member of an ``images`` entry as the engine would hand a config value (a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def _source(key: str, value: str, program_dir: Path) -> str:
    path = Path(value)
    folder = program_dir / path
    if path.is_absolute() or ".." in path.parts or not folder.is_dir():
        raise ConfigError(
            f"'{_key(key)}' is {value!r}; it must be a folder inside the project (relative to "
            f"Pulumi.yaml), such as {DEFAULT_IMAGE_SOURCE!r}"
        )
    if not (folder / "Dockerfile").is_file():
        raise ConfigError(
            f"'{_key(key)}' is {value!r}, which has no Dockerfile at its root (the service "
            "builds from a zip whose root holds the Dockerfile)"
        )
    return path.as_posix()


def _image(
    key: Any,
    obj: Any,
    stack: Settings,
    *,
    stack_hooks: dict[str, Any] | None,
    secret_keys: tuple[str, ...],
    program_dir: Path,
) -> ImageSettings:
    """One ``images`` entry, validated; what it leaves out comes from the stack-wide ``stack``."""
    path = f"images.{key}"
    if not isinstance(key, str) or not IMAGE_KEY_RE.match(key):
        raise ConfigError(
            f"'{_key('images')}' has the key {key!r}; an image key is 1-24 characters of "
            "[a-z0-9-] starting with a letter (it names the image's resources and outputs)"
        )
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise ConfigError(f"'{_key(path)}' must be an object of image settings, got {obj!r}")
    _members(path, obj, IMAGE_MEMBERS)
    r = _Reader({_key(f"{path}.{m}"): _config_string(v) for m, v in obj.items() if v is not None})

    def k(member: str) -> str:
        return f"{path}.{member}"

    default = key == DEFAULT_IMAGE_KEY
    derived = stack.image_name if default else f"{stack.image_name}-{key}"
    image_name = r.string(k("imageName"), derived)
    if not IMAGE_NAME_RE.match(image_name):
        hint = "" if "imageName" in obj else f" (derived from '{_key('imageName')}' and the key)"
        raise ConfigError(
            f"'{_key(k('imageName'))}' is {image_name!r}{hint}; it must be 1-40 characters of "
            "[a-zA-Z0-9-_]"
        )
    source = _source(k("source"), r.string(k("source"), DEFAULT_IMAGE_SOURCE), program_dir)
    base_version = r.string(k("baseImageVersion"), stack.base_image_version)
    if not re.match(r"^\d+$", base_version):
        raise ConfigError(
            f"'{_key(k('baseImageVersion'))}' is {base_version!r}; it must be a major version "
            'such as "1" (not the read-back form "1.0")'
        )
    hooks = r.json(k("hooks"), None, dict) or stack_hooks
    if not hooks:  # neither the entry nor the stack sets hooks: the image folder's hooks.json
        hooks = (
            stack.hooks
            if source == DEFAULT_IMAGE_SOURCE
            else load_hooks_file(program_dir / source / "hooks.json")
        )

    env_vars = (
        _string_map(r, k("environmentVariables"))
        if "environmentVariables" in obj
        else dict(stack.environment_variables)
    )
    own_secrets = bool(obj.get("secretEnvironmentVariables"))
    secret_names = stack.secret_environment_variable_names
    if own_secrets:
        r.json(k("secretEnvironmentVariables"), {}, dict)  # must be an object
        if _key("images") not in secret_keys:
            raise ConfigError(
                f"'{_key(k('secretEnvironmentVariables'))}' must be set as a secret "
                f"(`pulumi config set --secret --path '{_key(k('secretEnvironmentVariables'))}.NAME' value`)"
            )
        secret_names = tuple(sorted(obj["secretEnvironmentVariables"]))
    _check_environment(
        env_vars, secret_names, k("environmentVariables"), k("secretEnvironmentVariables")
    )

    adopt = _adopt(r, stack.region, k("adopt"))
    adopt_key = k("adopt")
    if adopt is None and default and stack.adopt:
        adopt, adopt_key = stack.adopt, "adopt"
    active = r.string(k("activeVersion"))
    if active is not None and not ACTIVE_VERSION_RE.match(active):
        raise ConfigError(
            f"'{_key(k('activeVersion'))}' is {active!r}; it must be a retained version of the "
            'image as the service spells it, "<n>.0" (such as "3.0"), or unset for the newest'
        )

    return ImageSettings(
        key=key,
        image_name=image_name,
        source=source,
        memory_mib=_one_of(
            k("memoryMiB"), r.integer(k("memoryMiB"), stack.memory_mib), MEMORY_SIZES, " MiB"
        ),
        architecture=_one_of(
            k("architecture"), r.string(k("architecture"), stack.architecture), ARCHITECTURES
        ),
        base_image_version=base_version,
        hooks=hooks,
        environment_variables=env_vars,
        secret_environment_variable_names=secret_names,
        own_secret_environment_variables=own_secrets,
        smoke_test=_smoke_test(r, k("smokeTest"), stack.smoke_test),
        session_run=_session_run(r, k("sessionRun"), stack.session_run),
        keep_versions=_in_range(
            k("keepVersions"), r.integer(k("keepVersions"), stack.keep_versions), 1, MAX_VERSIONS
        ),
        build_timeout_minutes=_in_range(
            k("buildTimeoutMinutes"),
            r.integer(k("buildTimeoutMinutes"), stack.build_timeout_minutes),
            1,
            120,
        ),
        log_retention_days=_one_of(
            k("logRetentionDays"),
            r.integer(k("logRetentionDays"), stack.log_retention_days),
            LOG_RETENTION_DAYS,
        ),
        terminate_microvms_on_delete=r.boolean(
            k("terminateMicrovmsOnDelete"), stack.terminate_microvms_on_delete
        ),
        tags=_tags(r, k("tags"), stack.tags),
        adopt=adopt,
        adopt_key=adopt_key,
        active_version=active,
    )


def _check_images_distinct(images: tuple[ImageSettings, ...]) -> None:
    """Two images never share a name (their artifact prefix and log group derive from it) nor
    an adopted image."""
    names: dict[str, str] = {}
    adopted: dict[str, str] = {}
    for image in images:
        here = _key(f"images.{image.key}.imageName")
        if image.image_name.lower() in names:
            raise ConfigError(
                f"'{names[image.image_name.lower()]}' and '{here}' are both "
                f"{image.image_name!r}; each image needs its own name (its artifact prefix and "
                "log group derive from it)"
            )
        names[image.image_name.lower()] = here
        if image.adopt:
            if image.adopt in adopted:
                raise ConfigError(
                    f"'{adopted[image.adopt]}' and '{_key(image.adopt_key)}' both adopt "
                    f"{image.adopt!r}; an image is managed by one entry"
                )
            adopted[image.adopt] = _key(image.adopt_key)


# ---------------------------------------------------------------------------------------------
# Pulumi entry points


def _raw_config() -> tuple[dict[str, str], tuple[str, ...]]:
    """The raw config map the engine handed the program (falls back to ``PULUMI_CONFIG``)."""
    from pulumi.runtime import config as runtime_config

    raw = dict(runtime_config.CONFIG.get()) or dict(runtime_config.get_config_env())
    secret_keys = set(runtime_config._SECRET_KEYS.get()) or set(
        runtime_config.get_config_secret_keys_env()
    )
    return {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in raw.items()}, tuple(
        sorted(secret_keys)
    )


def load_settings() -> Settings:
    """Read and validate the current stack's configuration (call once, from ``__main__.py``)."""
    raw, secret_keys = _raw_config()
    return parse_settings(
        raw,
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        secret_keys=secret_keys,
    )


def secret_environment_variables() -> pulumi.Output[dict[str, str]] | None:
    """The secret environment variables as a secret Output (never a plain value)."""
    cfg = pulumi.Config(NAMESPACE)
    value = cfg.get_secret_object("secretEnvironmentVariables")
    return value


def image_secret_environment_variables(
    image: ImageSettings,
) -> pulumi.Output[dict[str, str]] | None:
    """One image's secret environment variables as a secret Output: the entry's own
    (``images.<key>.secretEnvironmentVariables``) or else the stack-wide ones."""
    if not image.own_secret_environment_variables:
        return secret_environment_variables()
    images = pulumi.Config(NAMESPACE).get_secret_object("images")
    if images is None:
        raise ConfigError(f"'{_key('images')}' is not set")
    return images.apply(lambda entries: dict(entries[image.key]["secretEnvironmentVariables"]))
