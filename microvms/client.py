"""Client factory for the ``lambda-microvms`` API and small endpoint helpers.

Endpoints come from configuration: an explicit ``endpoint_url`` wins, otherwise botocore's own
``AWS_ENDPOINT_URL_LAMBDA_MICROVMS`` / ``AWS_ENDPOINT_URL`` variables apply. Retries use botocore's
``standard`` mode set explicitly (throttling and 5xx are retried with backoff; 4xx surface at once).

Clients come from a plain botocore session: the same client boto3 would build, without importing
boto3 and s3transfer (about a third of a second of start-up the CLI does not need).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack, overload

from microvms import env

if TYPE_CHECKING:
    # Typed clients from the dev group's stubs (types-boto3-*); never imported at run time.
    from types_boto3_lambda_microvms import LambdaMicroVMsClient as MicrovmsClient
    from types_boto3_service_quotas import ServiceQuotasClient

    __all__ = ["MicrovmsClient", "ServiceQuotasClient", "make_client"]

SERVICE = "lambda-microvms"
# Service facts shared by the CLI, the settings model and the image provider.
# Launch regions of the service (docs/service-facts.md §11).
SUPPORTED_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1")
# The only baseline memory sizes the live service accepts (docs/service-facts.md §4.1, §14).
MEMORY_SIZES = (512, 1024, 2048, 4096, 8192)
# The only architecture the service builds (docs/service-facts.md §4.1, §11).
ARCHITECTURES = ("ARM_64",)
INGRESS_CONNECTOR_KINDS = ("HTTP_INGRESS", "SHELL_INGRESS", "ALL_INGRESS", "NO_INGRESS")
EGRESS_CONNECTOR_KINDS = ("INTERNET_EGRESS",)
MANAGED_CONNECTOR_KINDS = INGRESS_CONNECTOR_KINDS + EGRESS_CONNECTOR_KINDS
RetryMode = Literal["legacy", "standard", "adaptive"]
RETRY_MODES: tuple[RetryMode, ...] = ("legacy", "standard", "adaptive")


class ClientOptions(TypedDict, total=False):
    """The keyword options of :func:`make_client` (its overloads differ only in the service)."""

    region: str | None
    endpoint_url: str | None
    profile: str | None
    max_attempts: int
    retry_mode: str
    connect_timeout: float
    read_timeout: float
    credentials: tuple[str, str] | None


@overload
def make_client(
    service: Literal["lambda-microvms"] = ..., **options: Unpack[ClientOptions]
) -> MicrovmsClient: ...
@overload
def make_client(
    service: Literal["service-quotas"], **options: Unpack[ClientOptions]
) -> ServiceQuotasClient: ...
def make_client(
    service: str = SERVICE,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    max_attempts: int = 5,
    retry_mode: str = "standard",
    connect_timeout: float = 10,
    read_timeout: float = 60,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """Return a botocore client with explicit retry configuration.

    ``region`` falls back to the session's default region (``AWS_REGION``/``AWS_DEFAULT_REGION``).
    ``credentials`` (access key id, secret key) replace the credential chain; the CLI passes
    placeholder keys only when every endpoint is on loopback (see ``microvms.loopback``).
    """
    import botocore.session
    from botocore.config import Config

    session = botocore.session.Session(profile=profile) if profile else botocore.session.Session()
    session.register_component(
        "data_loader", _shared_loader(session.get_config_variable("data_path"))
    )
    config = Config(
        retries={"mode": _retry_mode(retry_mode), "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra="lambda-microvms-pulumi",
    )
    kwargs: dict[str, Any] = {"config": config}
    if region:
        kwargs["region_name"] = region
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    if credentials:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = credentials
    return session.create_client(service, **kwargs)


_LOADERS: dict[str | None, Any] = {}


def _shared_loader(data_path: str | None) -> Any:
    """One botocore data loader per search path (``AWS_DATA_PATH`` / the profile's ``data_path``),
    shared by every session :func:`make_client` makes in this process.

    A fresh session reads and parses the service model, endpoint rules and partitions again
    (about 45 ms of CPU per client); the loader caches them. The data is read-only, so sharing it
    changes nothing but the time: a provider process creates a client per engine call.
    """
    if data_path not in _LOADERS:
        import botocore.loaders

        _LOADERS[data_path] = botocore.loaders.create_loader(data_path)
    return _LOADERS[data_path]


def _retry_mode(value: str) -> RetryMode:
    """``value`` as one of botocore's retry modes; anything else is refused naming them."""
    for mode in RETRY_MODES:
        if value == mode:
            return mode
    raise ValueError(f"retry mode {value!r}: use one of {', '.join(RETRY_MODES)}")


def managed_connector_arn(kind_or_arn: str, region: str, direction: str | None = None) -> str:
    """Expand a managed connector name (``SHELL_INGRESS`` …) to its full ARN; pass ARNs through.

    The service refuses bare names with ``Malformed network connector ARN`` (docs/service-facts.md §4.4, §10).
    With ``direction`` (``ingress`` or ``egress``) only that direction's names are accepted, and
    the error lists only those.
    """
    if kind_or_arn.startswith("arn:"):
        return kind_or_arn
    kind = kind_or_arn.upper()
    allowed = {
        "ingress": INGRESS_CONNECTOR_KINDS,
        "egress": EGRESS_CONNECTOR_KINDS,
    }.get(direction or "", MANAGED_CONNECTOR_KINDS)
    if kind not in allowed:
        what = f"{direction} network connector" if direction else "network connector"
        raise ValueError(
            f"unknown {what} {kind_or_arn!r}: give a connector ARN or one of {', '.join(allowed)}"
        )
    return f"arn:aws:lambda:{region}:aws:network-connector:aws-network-connector:{kind}"


def proxy_target(endpoint: str, proxy_url: str | None = None) -> tuple[str, str]:
    """Where to send a request for a MicroVM ``endpoint`` (a bare host name, no scheme).

    With a proxy URL (``proxy_url``, else ``MICROVMS_PROXY_URL``: the local emulator), requests go
    to that URL with the VM's endpoint as the ``Host`` header; otherwise to ``https://<endpoint>``.
    """
    proxy = proxy_url or os.environ.get(env.PROXY_URL)
    if proxy:
        return proxy.rstrip("/"), endpoint
    return f"https://{endpoint}", endpoint
