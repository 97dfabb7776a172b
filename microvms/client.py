"""boto3 client factory for the ``lambda-microvms`` API and small endpoint helpers.

Endpoints come from configuration: an explicit ``endpoint_url`` wins, otherwise boto3's own
``AWS_ENDPOINT_URL_LAMBDA_MICROVMS`` / ``AWS_ENDPOINT_URL`` variables apply. Retries use botocore's
``standard`` mode set explicitly (throttling and 5xx are retried with backoff; 4xx surface at once).
"""

from __future__ import annotations

import os

import boto3
from botocore.config import Config

SERVICE = "lambda-microvms"
# Service facts shared by the CLI, the settings model and the image provider.
# Launch regions of the service (facts §11).
SUPPORTED_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1")
# The only baseline memory sizes the live service accepts (facts §4.1, §14).
MEMORY_SIZES = (512, 1024, 2048, 4096, 8192)
# The only architecture the service builds (facts §4.1, §11).
ARCHITECTURES = ("ARM_64",)
MANAGED_CONNECTOR_KINDS = (
    "HTTP_INGRESS",
    "SHELL_INGRESS",
    "ALL_INGRESS",
    "NO_INGRESS",
    "INTERNET_EGRESS",
)
PROXY_URL_ENV = "MICROVMS_PROXY_URL"


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
):
    """Return a botocore client with explicit retry configuration.

    ``region`` falls back to the session's default region (``AWS_REGION``/``AWS_DEFAULT_REGION``).
    """
    session = boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
    config = Config(
        retries={"mode": retry_mode, "max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra="lambda-microvms-pulumi",
    )
    kwargs = {"config": config}
    if region:
        kwargs["region_name"] = region
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    return session.client(service, **kwargs)


def managed_connector_arn(kind_or_arn: str, region: str) -> str:
    """Expand a managed connector name (``SHELL_INGRESS`` …) to its full ARN; pass ARNs through.

    The service refuses bare names with ``Malformed network connector ARN`` (facts §4.4, §10).
    """
    if kind_or_arn.startswith("arn:"):
        return kind_or_arn
    kind = kind_or_arn.upper()
    if kind not in MANAGED_CONNECTOR_KINDS:
        raise ValueError(
            f"unknown network connector {kind_or_arn!r}: give a connector ARN or one of "
            f"{', '.join(MANAGED_CONNECTOR_KINDS)}"
        )
    return f"arn:aws:lambda:{region}:aws:network-connector:aws-network-connector:{kind}"


def proxy_target(endpoint: str) -> tuple[str, str]:
    """Where to send a request for a MicroVM ``endpoint`` (a bare host name, no scheme).

    With ``MICROVMS_PROXY_URL`` set (the local emulator), requests go to that URL with the VM's
    endpoint as the ``Host`` header; otherwise straight to ``https://<endpoint>``.
    """
    proxy = os.environ.get(PROXY_URL_ENV)
    if proxy:
        return proxy.rstrip("/"), endpoint
    return f"https://{endpoint}", endpoint
