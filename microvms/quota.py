"""The account's RunMicrovm rate from Service Quotas, with the documented 5/s as the fallback.

The quota lives under service code ``lambda`` as ``L-535CA9B6`` ("RunMicrovm" requests per second;
its burst is ``L-91B95582``) (docs/service-facts.md §14). New accounts are reported to get 1/s, so the CLI reads the
applied value when it can: GetServiceQuota by code, else ListServiceQuotas for the service searched
by name (in case the code differs in a partition or changes), else 5/s. Any failure (no permission,
no network, an unknown quota) falls back; the reason is kept for ``--verbose``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from microvms.ratelimit import RUN_MICROVM_RATE

if TYPE_CHECKING:
    from microvms.client import ServiceQuotasClient

SERVICE_CODE = "lambda"
RUN_MICROVM_RATE_QUOTA = "L-535CA9B6"
QUOTA_NAME = re.compile(r"runmicrovm", re.IGNORECASE)
SQ_ENDPOINT_ENV = ("AWS_ENDPOINT_URL_SERVICE_QUOTAS", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class RateChoice:
    rate: float
    source: str

    def describe(self) -> str:
        return f"RunMicrovm rate {self.rate:g}/s ({self.source})"


def fallback(reason: str) -> RateChoice:
    return RateChoice(RUN_MICROVM_RATE, f"fallback {RUN_MICROVM_RATE:g}/s: {reason}")


def service_quotas_endpoint() -> str | None:
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    for name in SQ_ENDPOINT_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _by_name(client: ServiceQuotasClient) -> tuple[float, str] | None:
    """Find the RunMicrovm rate quota by name (skipping the burst quota)."""
    for page in client.get_paginator("list_service_quotas").paginate(ServiceCode=SERVICE_CODE):
        for quota in page.get("Quotas", []):
            name = quota.get("QuotaName", "")
            if QUOTA_NAME.search(name.replace(" ", "")) and "burst" not in name.lower():
                return float(quota["Value"]), quota.get("QuotaCode", "?")
    return None


def read_run_microvm_rate(client: ServiceQuotasClient) -> RateChoice:
    """The applied RunMicrovm rate through a ``service-quotas`` client, or the fallback."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        try:
            quota = client.get_service_quota(
                ServiceCode=SERVICE_CODE, QuotaCode=RUN_MICROVM_RATE_QUOTA
            )["Quota"]
            value, code = float(quota["Value"]), RUN_MICROVM_RATE_QUOTA
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchResourceException":
                raise
            found = _by_name(client)
            if found is None:
                return fallback(f"no RunMicrovm rate quota listed for service code {SERVICE_CODE}")
            value, code = found
    except ClientError as exc:
        err = exc.response.get("Error", {})
        return fallback(f"Service Quotas answered {err.get('Code', 'an error')}")
    except (BotoCoreError, OSError, KeyError, TypeError, ValueError) as exc:
        return fallback(f"Service Quotas not readable ({type(exc).__name__})")
    if not value > 0:
        return fallback(f"Service Quotas gave {value!r} for {code}")
    return RateChoice(value, f"Service Quotas {SERVICE_CODE} {code}, applied value")
