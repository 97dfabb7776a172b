"""What ``microvms versions`` and ``microvms activate`` need besides the API calls.

Input checks (before any request), resolving an image given by name, and the table rows. The
calls themselves (listing, activation, the wait until a version serves) live in
:mod:`microvms.images`, shared with the image provider's ``activeVersion``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from microvms import images
from microvms.inputs import check_image_arn, check_shape, shown
from microvms.vms import InputError

if TYPE_CHECKING:
    from botocore.model import ServiceModel

    from microvms.client import MicrovmsClient

#: ``"<n>.0"``, or ``"<n>"`` for short; the service spells every image version ``"<n>.0"``.
VERSION = re.compile(r"[1-9][0-9]{0,5}(?:\.0)?", re.ASCII)


def check_version(value: str, field_name: str = "VERSION") -> str:
    """An image version as the service spells it (``"3"`` → ``"3.0"``)."""
    if not VERSION.fullmatch((value or "").strip()):
        raise InputError(
            field_name, f'{shown(value)} is not an image version; give "<n>.0" (e.g. "2.0")'
        )
    return images.normalise_version(value.strip())


def check_image(
    model: ServiceModel, value: str, region: str | None, field_name: str = "IMAGE"
) -> str:
    """An image ARN in ``region`` or an exact image name (model ``ImageName``); no API call."""
    if (value or "").startswith("arn:"):
        return check_image_arn(model, value, region, field_name)
    return check_shape(
        model,
        "ImageName",
        value or "",
        field_name,
        "an image ARN (arn:aws:lambda:<region>:<account>:microvm-image:<name>) or an image "
        "name (1-64 characters of a-z, A-Z, 0-9, - and _)",
    )


class ImageNotFound(LookupError):
    pass


def resolve(client: MicrovmsClient, value: str) -> str:
    """The ARN of the image ``value`` names (an ARN is returned as it is)."""
    if value.startswith("arn:"):
        return value
    found = images.find_image(client, value)
    if found is None or found.get("state") in images.IMAGE_GOING:
        raise ImageNotFound(f"no image named {value!r} in {client.meta.region_name}")
    return found["imageArn"]


def builds_cell(builds: Sequence[Mapping[str, Any]] | None) -> str:
    """One line per build (one per Graviton generation): ``gen 3 SUCCESSFUL``; or ``-``."""
    if not builds:
        return "-"
    return "\n".join(
        f"gen {b.get('chipsetGeneration') or '?'} {b.get('buildState') or '?'}" for b in builds
    )


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "version": r["imageVersion"],
            "state": r["state"],
            "status": r["status"],
            "serving": "yes" if r["serving"] else "",
            "builds": builds_cell(r.get("builds")),
            "reason": r.get("stateReason"),
        }
        for r in rows
    ]


TABLE_COLUMNS = ["version", "state", "status", "serving", "builds", "reason"]
