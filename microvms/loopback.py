"""Defaults for a CLI pointed only at loopback endpoints (the local emulator, ``make sandbox``).

When every endpoint the CLI would talk to is a loopback URL and no AWS credentials or region are
configured, the CLI fills in placeholder credentials and the local region instead of failing with
``NoCredentialsError`` / ``NoRegionError``: the emulator accepts any SigV4 signature and reads the
region from it. It says so once on stderr. Never for a non-loopback endpoint: there a missing
credential or region is the user's to fix, and placeholder keys would only earn a 403.

"Configured credentials" means what a user sets on purpose: the ``AWS_*`` credential variables,
``--profile``/``AWS_PROFILE``, or credential keys in the profile's config/credentials files. The
instance and container metadata providers are not consulted (slow off EC2, and real keys have no
business signing requests to a local process).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from microvms import env

#: The emulator serves every launch region; the sandbox and the local stack use this one.
LOCAL_REGION = "us-east-1"
#: Placeholder keys (not secrets): the emulator checks only the signature's region.
PLACEHOLDER_CREDENTIALS = ("local-placeholder", "local-placeholder")

ENDPOINT_ENV = (env.AWS_ENDPOINT_URL, "AWS_ENDPOINT_URL")
CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
REGION_ENV = ("AWS_REGION", "AWS_DEFAULT_REGION")
# Profile keys that make botocore's chain find credentials (botocore.credentials providers).
CREDENTIAL_KEYS = (
    "aws_access_key_id",
    "credential_process",
    "credential_source",
    "role_arn",
    "sso_session",
    "sso_start_url",
    "web_identity_token_file",
)


def is_loopback(url: str | None) -> bool:
    """True for ``http(s)://localhost…``, ``127.0.0.0/8`` and ``[::1]`` URLs."""
    if not url:
        return False
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_endpoint(explicit: str | None) -> str | None:
    """The lambda-microvms endpoint the client will use: explicit, else botocore's variables."""
    if explicit:
        return explicit
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    for name in ENDPOINT_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _profile_config(profile: str | None) -> dict[str, Any]:
    """The merged config + credentials file entries of the active profile ({} if none)."""
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    session = botocore.session.Session(profile=profile) if profile else botocore.session.Session()
    try:
        return dict(session.get_scoped_config())
    except ProfileNotFound:
        return {"profile_not_found": True}  # counts as configured: let botocore report it


def credentials_configured(profile: str | None) -> bool:
    if profile or any(os.environ.get(name) for name in CREDENTIAL_ENV):
        return True
    config = _profile_config(profile)
    return any(key in config for key in (*CREDENTIAL_KEYS, "profile_not_found"))


def region_configured(region: str | None, profile: str | None) -> bool:
    if region or any(os.environ.get(name) for name in REGION_ENV):
        return True
    return bool(_profile_config(profile).get("region"))


@dataclass(frozen=True)
class Setup:
    """What the client should use; ``note`` is the one stderr line when defaults were filled."""

    region: str | None
    credentials: tuple[str, str] | None = None
    note: str | None = None
    local: bool = False


def resolve(
    *,
    endpoint_url: str | None,
    region: str | None,
    profile: str | None,
    proxy_url: str | None,
) -> Setup:
    """Fill in placeholder credentials / the local region only when every endpoint is loopback."""
    api = api_endpoint(endpoint_url)
    proxy = proxy_url or os.environ.get(env.PROXY_URL)
    local = is_loopback(api) and (proxy is None or is_loopback(proxy))
    if not local:
        return Setup(region=region)
    missing, used = [], []
    credentials = None
    if not credentials_configured(profile):
        credentials = PLACEHOLDER_CREDENTIALS
        missing.append("credentials")
        used.append("placeholder credentials")
    if not region_configured(region, profile):
        region = LOCAL_REGION
        missing.append("region")
        used.append(f"region {LOCAL_REGION}")
    note = None
    if missing:
        note = (
            f"microvms: local endpoint {api} and no AWS {' or '.join(missing)} configured: "
            f"using {' and '.join(used)}"
        )
    return Setup(region=region, credentials=credentials, note=note, local=True)
