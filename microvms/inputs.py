"""Input checks that need the service's own rules: ids, ARNs and regions, before any API call.

Patterns and lengths come from the botocore service model (``client.meta.service_model``, already
loaded with the client, so no extra start-up cost): one home per fact. What the model leaves open
comes from the facts file and is cited: the MicroVM id form (the model's ``MicrovmIdentifier`` has
only a length) and the launch regions (``microvms.client.SUPPORTED_REGIONS``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from microvms.client import SUPPORTED_REGIONS
from microvms.vms import InputError

if TYPE_CHECKING:
    from botocore.model import ServiceModel

# MicroVM ids look like ``microvm-<uuid>`` (docs/service-facts.md §3); the model bounds the identifier to 1..256.
MICROVM_ID = re.compile(
    r"microvm-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII
)
SHOWN_CHARS = 80  # never echo a huge value in full


def shown(value: str) -> str:
    text = value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "…"
    return repr(text)


def check_microvm_id(value: str, field_name: str = "MICROVM_ID") -> str:
    if not MICROVM_ID.fullmatch(value or ""):
        raise InputError(
            field_name, f"{shown(value)} is not a MicroVM id; ids look like microvm-<uuid>"
        )
    return value


def check_region(region: str | None, field_name: str = "--region") -> str:
    """The region must be one of the service's launch regions (docs/service-facts.md §11)."""
    if not region:
        raise InputError(
            field_name,
            f"no AWS region set; pass --region or set AWS_REGION to one of "
            f"{', '.join(SUPPORTED_REGIONS)}",
        )
    if region not in SUPPORTED_REGIONS:
        raise InputError(
            field_name,
            f"{shown(region)} is not a Lambda MicroVMs launch region; use one of "
            f"{', '.join(SUPPORTED_REGIONS)}",
        )
    return region


_Rule = tuple[re.Pattern[str] | None, int | None, int | None]
_RULES: dict[tuple[str, str], _Rule] = {}


def _shape_rule(model: ServiceModel, shape_name: str) -> _Rule:
    key = (model.metadata.get("uid", model.service_name), shape_name)
    if key not in _RULES:
        meta = model.shape_for(shape_name).metadata
        pattern = meta.get("pattern")
        _RULES[key] = (
            re.compile(pattern, re.ASCII) if pattern else None,
            meta.get("min"),
            meta.get("max"),
        )
    return _RULES[key]


def check_shape(
    model: ServiceModel, shape_name: str, value: str, field_name: str, what: str
) -> str:
    """``value`` must fully match the model shape's pattern and length bounds."""
    pattern, low, high = _shape_rule(model, shape_name)
    too_short = low is not None and len(value) < low
    too_long = high is not None and len(value) > high
    if too_short or too_long or (pattern is not None and not pattern.fullmatch(value)):
        raise InputError(field_name, f"{shown(value)} is not {what}")
    return value


def check_image_arn(
    model: ServiceModel, value: str, region: str | None, field_name: str = "--image-arn"
) -> str:
    """A MicroVM image ARN (model ``MicrovmImageArn``, name part ``ImageName``) in ``region``."""
    example = "arn:aws:lambda:<region>:<account>:microvm-image:<name>"
    what = f"a MicroVM image ARN ({example})"
    check_shape(model, "MicrovmImageArn", value, field_name, what)
    parts = value.split(":", 6)
    try:
        check_shape(model, "ImageName", parts[6], field_name, what)
    except (IndexError, InputError):
        raise InputError(field_name, f"{shown(value)} is not {what}") from None
    image_region = parts[3]
    if image_region not in SUPPORTED_REGIONS:
        raise InputError(
            field_name,
            f"region {shown(image_region)} of the image ARN is not a Lambda MicroVMs launch "
            f"region; use one of {', '.join(SUPPORTED_REGIONS)}",
        )
    if region and image_region != region:
        raise InputError(
            field_name,
            f"the image is in {image_region} but the client's region is {region}; "
            f"pass --region {image_region} or an image ARN in {region}",
        )
    return value


def check_role_arn(
    model: ServiceModel, value: str, field_name: str = "--execution-role-arn"
) -> str:
    return check_shape(
        model, "RoleArn", value, field_name, "an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
    )
