"""Provider configuration of the double, with pulumi-aws / terraform-provider-aws semantics.

What upstream does when it builds its client (``internal/conns/config.go`` ``ConfigureProvider``
and ``aws-sdk-go-base`` ``GetAwsAccountIDAndPartition`` / ``VerifyAccountIDAllowed``):

1. unless ``skipRegionValidation``, the region must be a known AWS region (``Invalid AWS Region``);
2. unless ``skipCredentialsValidation``, STS ``GetCallerIdentity`` validates the credentials and
   gives the account id; else unless ``skipRequestingAccountId`` the account id is still looked up
   (STS); else the account id is the empty string;
3. ``forbiddenAccountIds`` / ``allowedAccountIds`` are checked against that id, so with
   ``skipRequestingAccountId: true`` and an allow-list the check fails with
   ``AWS account ID not allowed: `` (empty id).

Pulumi hands complex provider config to the provider as JSON-encoded strings (``"[…]"``) and
booleans as ``"true"``/``"false"``; both those and native values are accepted. Unknown keys are
refused with an error naming them. Secret values are never logged or echoed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from tests.engine.doubles.aws_provider import wire

BOOL_KEYS = (
    "s3UsePathStyle",
    "skipCredentialsValidation",
    "skipMetadataApiCheck",
    "skipRegionValidation",
    "skipRequestingAccountId",
)
STRING_KEYS = ("region", "accessKey", "secretKey", "token", "version")
LIST_KEYS = ("allowedAccountIds", "forbiddenAccountIds")
KNOWN_KEYS = frozenset((*BOOL_KEYS, *STRING_KEYS, *LIST_KEYS, "endpoints", "defaultTags"))
SECRET_KEYS = frozenset({"accessKey", "secretKey", "token"})

#: ``endpoints`` keys the double implements → the boto3 service they configure. ``cloudwatchlogs``
#: and ``cloudwatchlog`` are upstream's aliases of ``logs``.
ENDPOINT_SERVICES = {
    "s3": "s3",
    "iam": "iam",
    "sts": "sts",
    "logs": "logs",
    "cloudwatchlogs": "logs",
    "cloudwatchlog": "logs",
}

_CLIENT_CONFIG = dict(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5)


class ConfigError(Exception):
    """Bad provider configuration; ``failures`` are ``(key, reason)`` pairs."""

    def __init__(self, failures: list[tuple[str, str]]):
        super().__init__("; ".join(f"aws:{key}: {reason}" for key, reason in failures))
        self.failures = failures


@dataclasses.dataclass
class ProviderConfig:
    region: str
    access_key: str | None = None
    secret_key: str | None = dataclasses.field(default=None, repr=False)
    token: str | None = dataclasses.field(default=None, repr=False)
    endpoints: dict[str, str] = dataclasses.field(default_factory=dict)
    s3_use_path_style: bool = False
    skip_credentials_validation: bool = False
    skip_metadata_api_check: bool = True
    skip_region_validation: bool = False
    skip_requesting_account_id: bool = False
    allowed_account_ids: list[str] = dataclasses.field(default_factory=list)
    forbidden_account_ids: list[str] = dataclasses.field(default_factory=list)
    default_tags: dict[str, str] = dataclasses.field(default_factory=dict)


def _decode(key: str, value: Any, expected: type) -> Any:
    """A native value, or one Pulumi JSON-encoded into a string."""
    if isinstance(value, str) and expected is not str:
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ConfigError(
                [(key, f"expected {expected.__name__} (JSON), got a string")]
            ) from None
    if not isinstance(value, expected):
        raise ConfigError([(key, f"expected {expected.__name__}, got {type(value).__name__}")])
    return value


def check_config(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """Failures for ``raw`` (the provider's inputs); unknown values are not judged."""
    failures: list[tuple[str, str]] = []
    for key in sorted(raw):
        if key not in KNOWN_KEYS:
            failures.append(
                (
                    key,
                    f"the aws test double does not implement provider config key {key!r}; "
                    f"known keys: {', '.join(sorted(KNOWN_KEYS))}",
                )
            )
    if failures:
        return failures
    if wire.contains_unknown(raw):
        return []
    try:
        parse_config(raw)
    except ConfigError as exc:
        failures.extend(exc.failures)
    return failures


def parse_config(raw: dict[str, Any]) -> ProviderConfig:
    values = wire.unwrap(raw)
    unknown = sorted(set(values) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            [
                (k, "the aws test double does not implement this provider config key")
                for k in unknown
            ]
        )
    failures: list[tuple[str, str]] = []

    def get(key: str, expected: type, default: Any = None) -> Any:
        if values.get(key) is None:
            return default
        try:
            return _decode(key, values[key], expected)
        except ConfigError as exc:
            failures.extend(exc.failures)
            return default

    region = (
        get("region", str) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    )
    if not region:
        failures.append(("region", "missing: set aws:region (or AWS_REGION)"))
    cfg = ProviderConfig(region=region or "")
    cfg.access_key = get("accessKey", str)
    cfg.secret_key = get("secretKey", str)
    cfg.token = get("token", str)
    if bool(cfg.access_key) != bool(cfg.secret_key):
        failures.append(("accessKey", "accessKey and secretKey must be set together"))
    for key in BOOL_KEYS:
        value = get(key, bool)
        if value is not None:
            setattr(cfg, _snake(key), value)
    for key in LIST_KEYS:
        ids = get(key, list, [])
        if not all(isinstance(i, str) for i in ids):
            failures.append((key, "expected a list of account id strings"))
        setattr(cfg, _snake(key), [str(i) for i in ids])
    cfg.endpoints = _endpoints(get("endpoints", list, []), failures)
    tags = get("defaultTags", dict, {})
    if set(tags) - {"tags"}:
        failures.append(("defaultTags", "the aws test double implements only defaultTags.tags"))
    cfg.default_tags = {str(k): str(v) for k, v in (tags.get("tags") or {}).items()}
    if failures:
        raise ConfigError(failures)
    return cfg


def _endpoints(items: list[Any], failures: list[tuple[str, str]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            failures.append((f"endpoints[{index}]", "expected a map of service → URL"))
            continue
        for name, url in item.items():
            if url in (None, ""):
                continue
            if name not in ENDPOINT_SERVICES:
                failures.append(
                    (
                        f"endpoints[{index}].{name}",
                        "the aws test double does not implement this service; "
                        f"allowed: {', '.join(sorted(ENDPOINT_SERVICES))}",
                    )
                )
            elif not str(url).startswith(("http://", "https://")):
                failures.append((f"endpoints[{index}].{name}", f"not an http(s) URL: {url!r}"))
            else:
                result[ENDPOINT_SERVICES[name]] = str(url)
    return result


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def known_regions() -> set[str]:
    data = botocore.session.get_session().get_data("endpoints")
    return {region for partition in data["partitions"] for region in partition["regions"]}


class Session:
    """A configured provider: boto3 clients against the configured endpoints, the account id."""

    def __init__(self, cfg: ProviderConfig):
        self.cfg = cfg
        self.account_id = ""
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        credentials = {}
        if cfg.access_key:
            credentials = dict(
                aws_access_key_id=cfg.access_key,
                aws_secret_access_key=cfg.secret_key,
                aws_session_token=cfg.token,
            )
        self._boto = boto3.session.Session(**credentials)

    @property
    def region(self) -> str:
        return self.cfg.region

    @property
    def default_tags(self) -> dict[str, str]:
        return self.cfg.default_tags

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.cfg.region
        endpoint = self.cfg.endpoints.get(service) or _env_endpoint(service)
        if not endpoint:
            # A test double must never reach real AWS.
            raise RuntimeError(
                f"the aws test double needs an endpoint for {service!r}: set aws:endpoints "
                f"(one of {', '.join(k for k, v in ENDPOINT_SERVICES.items() if v == service)})"
            )
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                extra = {}
                if service == "s3" and self.cfg.s3_use_path_style:
                    extra["s3"] = {"addressing_style": "path"}
                self._clients[key] = self._boto.client(
                    service,
                    region_name=region,
                    endpoint_url=endpoint,
                    config=Config(**_CLIENT_CONFIG, **extra),
                )
            return self._clients[key]

    def configure(self) -> None:
        """Build the client as upstream does; raise ``RuntimeError`` with upstream's messages."""
        cfg = self.cfg
        if not cfg.skip_region_validation and cfg.region not in known_regions():
            raise RuntimeError(f"Invalid AWS Region: {cfg.region}")
        if not cfg.skip_credentials_validation:
            try:
                self.account_id = self.caller_identity()["Account"]
            except (ClientError, BotoCoreError, RuntimeError) as exc:
                raise RuntimeError(
                    f"validating provider credentials: retrieving caller identity from STS: {exc}"
                ) from None
        elif not cfg.skip_requesting_account_id:
            try:
                self.account_id = self.caller_identity()["Account"]
            except (ClientError, BotoCoreError, RuntimeError) as exc:
                raise RuntimeError(
                    "AWS account ID not previously found and failed retrieving via all available "
                    f"methods: {exc}"
                ) from None
        self.verify_account_id_allowed(self.account_id)

    def verify_account_id_allowed(self, account_id: str) -> None:
        if self.cfg.forbidden_account_ids and account_id in self.cfg.forbidden_account_ids:
            raise RuntimeError(f"AWS account ID not allowed: {account_id}")
        if self.cfg.allowed_account_ids and account_id not in self.cfg.allowed_account_ids:
            raise RuntimeError(f"AWS account ID not allowed: {account_id}")

    def caller_identity(self) -> dict[str, Any]:
        return self.client("sts").get_caller_identity()


def _env_endpoint(service: str) -> str | None:
    specific = f"AWS_ENDPOINT_URL_{service.upper()}"
    if service == "logs":
        specific = "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"
    return os.environ.get(specific) or os.environ.get("AWS_ENDPOINT_URL")
