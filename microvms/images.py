"""MicroVM images through the API: listings, version order, delete with retry, the outputs shape.

Plain botocore around the ``lambda-microvms`` image operations, no Pulumi: the image provider
(``components.microvm_image.provider``) keeps only the engine protocol and calls these. Listings
use botocore's paginators (the service model has one for every List operation), so no page is
ever missed and no loop over ``nextToken`` is written by hand.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.exceptions import ClientError

from microvms import waiters

if TYPE_CHECKING:
    from types_boto3_lambda_microvms.type_defs import (
        MicrovmImageSummaryTypeDef,
        MicrovmImageVersionSummaryTypeDef,
    )

    from microvms.client import MicrovmsClient

#: Version states after which a version no longer counts as kept.
VERSION_GOING = ("DELETING", "DELETED")
#: Image states in which an image is on its way out.
IMAGE_GOING = ("DELETING", "DELETED", "DELETE_FAILED")
#: Retrying DeleteMicrovmImage while the service refuses it for now (a build or version delete
#: still draining, a terminate still settling; docs/service-facts.md §4.3).
DELETE_RETRY = waiters.Backoff(first=0.5, factor=1.6, cap=4.0, jitter=0.1)


def log_group_name(image_name: str) -> str:
    """The service's own log group for an image's builds, ``/aws/lambda-microvms/<image-name>``.

    This spelling (not ``/aws/lambda/microvms/…``) is where live build logs were read
    (docs/service-facts.md §12.3).
    """
    return f"/aws/lambda-microvms/{image_name}"


# ------------------------------------------------------------------------------------ listings


#: The List operations whose items this module reads.
ImageListing = Literal["list_microvm_images", "list_microvm_image_versions"]


@overload
def items(
    client: MicrovmsClient, operation: Literal["list_microvm_images"], **params: Any
) -> Iterator[MicrovmImageSummaryTypeDef]: ...
@overload
def items(
    client: MicrovmsClient, operation: Literal["list_microvm_image_versions"], **params: Any
) -> Iterator[MicrovmImageVersionSummaryTypeDef]: ...
def items(
    client: MicrovmsClient, operation: ImageListing, **params: Any
) -> Iterator[MicrovmImageSummaryTypeDef | MicrovmImageVersionSummaryTypeDef]:
    """Every item of a List operation (``list_microvm_images`` …), page after page."""
    for page in client.get_paginator(operation).paginate(**params):
        yield from page.get("items", [])


def list_images(client: MicrovmsClient) -> list[MicrovmImageSummaryTypeDef]:
    """Every image of the account and region (ListMicrovmImages)."""
    return list(items(client, "list_microvm_images", PaginationConfig={"PageSize": 50}))


def find_image(client: MicrovmsClient, name: str) -> MicrovmImageSummaryTypeDef | None:
    """The listed image named exactly ``name`` (``nameFilter`` also matches other names)."""
    return next(
        (i for i in items(client, "list_microvm_images", nameFilter=name) if i.get("name") == name),
        None,
    )


def version_key(version: Any) -> tuple[int, ...]:
    """Sort key of an image version: ``"2.0"`` → ``(2, 0)``, so ``"10"`` sorts after ``"9"``."""
    parts = re.findall(r"[0-9]+", str(version))
    return tuple(int(p) for p in parts) or (0,)


def newest_first(versions: list[str]) -> list[str]:
    """Version numbers, newest first."""
    return sorted(versions, key=version_key, reverse=True)


def list_versions(
    client: MicrovmsClient, image_arn: str
) -> list[MicrovmImageVersionSummaryTypeDef]:
    """Every version of an image (ListMicrovmImageVersions), newest first."""
    found = list(items(client, "list_microvm_image_versions", imageIdentifier=image_arn))
    return sorted(found, key=lambda v: version_key(v.get("imageVersion", "0")), reverse=True)


def newest_version(client: MicrovmsClient, image: Mapping[str, Any]) -> str | None:
    """The image's active version, else its newest listed one (None: it has no version)."""
    active: str | None = image.get("latestActiveImageVersion")
    if active:
        return active
    versions = list_versions(client, image["imageArn"])
    return versions[0]["imageVersion"] if versions else None


def kept_versions(client: MicrovmsClient, image_arn: str) -> list[str]:
    """The version numbers still kept (not being deleted), newest first."""
    return [
        v.get("imageVersion")
        for v in list_versions(client, image_arn)
        if v.get("state") not in VERSION_GOING
    ]


# ------------------------------------------------------------------------------------ activation
#
# Which version a MicroVM gets is the version *status*: RunMicrovm without ``imageVersion``
# resolves to the newest ACTIVE version (docs/service-facts.md §4.3), and GetMicrovmImage's
# ``latestActiveImageVersion`` names it. Marking an older version ACTIVE alone changes nothing, so
# a rollback also marks every newer version INACTIVE; UpdateMicrovmImageVersion takes only
# ``{"status": "ACTIVE"|"INACTIVE"}`` and rebuilds nothing.


class NotRetained(LookupError):
    """A version that cannot be made active: it does not exist, is going, or never built."""

    def __init__(self, image_arn: str, version: str, retained: list[str]) -> None:
        self.image_arn = image_arn
        self.version = version
        self.retained = retained
        kept = ", ".join(retained) or "none"
        super().__init__(
            f"version {version} is not a retained, successfully built version of image "
            f"{image_arn}; retained versions: {kept}"
        )


def normalise_version(version: Any) -> str:
    """``"2"``, ``2`` and ``"2.0"`` all name version ``"2.0"`` (the service's spelling)."""
    parts = version_key(version)
    return f"{parts[0]}.{parts[1] if len(parts) > 1 else 0}"


def activatable(versions: Sequence[Mapping[str, Any]]) -> list[str]:
    """The versions that can serve MicroVMs: built (SUCCESSFUL) and not going, newest first."""
    return [
        v["imageVersion"]
        for v in sorted(versions, key=lambda v: version_key(v.get("imageVersion")), reverse=True)
        if v.get("state") == "SUCCESSFUL" and v.get("imageVersion")
    ]


def _set_status(
    client: MicrovmsClient, image_arn: str, version: str, status: Literal["ACTIVE", "INACTIVE"]
) -> None:
    client.update_microvm_image_version(
        imageIdentifier=image_arn, imageVersion=version, status=status
    )


def activate(
    client: MicrovmsClient,
    image_arn: str,
    version: str,
    *,
    versions: Sequence[Mapping[str, Any]] | None = None,
) -> list[tuple[str, str]]:
    """Make ``version`` the one RunMicrovm picks; return the ``(version, status)`` changes made.

    ``version`` is marked ACTIVE first and then every newer ACTIVE version INACTIVE, newest
    first, so at every moment some built version is ACTIVE and a MicroVM started meanwhile gets
    ``version`` or one newer than it, never none. Older versions keep their status. Raises
    :class:`NotRetained` (before any change) when ``version`` cannot serve.
    """
    versions = list_versions(client, image_arn) if versions is None else versions
    target = normalise_version(version)
    ready = activatable(versions)
    if target not in ready:
        raise NotRetained(image_arn, target, ready)
    status = {v["imageVersion"]: v.get("status") for v in versions}
    changes: list[tuple[str, str]] = []
    if status.get(target) != "ACTIVE":
        _set_status(client, image_arn, target, "ACTIVE")
        changes.append((target, "ACTIVE"))
    for newer in ready:
        if version_key(newer) <= version_key(target):
            break
        if status.get(newer) != "INACTIVE":
            _set_status(client, image_arn, newer, "INACTIVE")
            changes.append((newer, "INACTIVE"))
    return changes


def activate_all(
    client: MicrovmsClient, image_arn: str, *, versions: Sequence[Mapping[str, Any]] | None = None
) -> list[str]:
    """Undo a rollback: every built version ACTIVE again, newest first, so the newest serves.

    Returns the versions that were reactivated (empty when nothing was pinned).
    """
    versions = list_versions(client, image_arn) if versions is None else versions
    status = {v["imageVersion"]: v.get("status") for v in versions}
    changed: list[str] = []
    for ver in activatable(versions):
        if status.get(ver) != "ACTIVE":
            _set_status(client, image_arn, ver, "ACTIVE")
            changed.append(ver)
    return changed


def wait_until_serving(
    client: MicrovmsClient,
    image_arn: str,
    version: str,
    *,
    timeout: float = 60.0,
    progress: waiters.WaitReporter | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll GetMicrovmImage until ``latestActiveImageVersion`` is ``version`` (a status change
    is one call, but reads may lag it); return the image. Raises :class:`waiters.WaitError`."""
    target = normalise_version(version)
    started = clock()
    delays = waiters.Backoff(first=0.2, factor=1.5, cap=2.0, jitter=0.0).delays()
    while True:
        image = waiters.without_metadata(client.get_microvm_image(imageIdentifier=image_arn))
        serving = image.get("latestActiveImageVersion")
        if serving and normalise_version(serving) == target:
            return image
        elapsed = clock() - started
        if elapsed >= timeout:
            raise waiters.WaitError(
                f"timed out after {timeout:g}s waiting for version {target} of {image_arn} to "
                f"serve (serving: {serving or 'none'})",
                timed_out=True,
            )
        pause = min(next(delays), max(0.0, timeout - elapsed))
        if progress is not None:
            progress.report(f"serving {serving or 'none'}", elapsed, pause)
            progress.sleep(pause)
        else:
            sleep(pause)


def version_rows(
    client: MicrovmsClient, image_arn: str, *, with_builds: bool = True
) -> list[dict[str, Any]]:
    """Every version with its state, status, build results and whether RunMicrovm picks it."""
    image = client.get_microvm_image(imageIdentifier=image_arn)
    serving = image.get("latestActiveImageVersion")
    rows: list[dict[str, Any]] = []
    for v in list_versions(client, image_arn):
        ver = v.get("imageVersion")
        row: dict[str, Any] = {
            "imageVersion": ver,
            "state": v.get("state"),
            "status": v.get("status"),
            "serving": ver == serving,
            "stateReason": v.get("stateReason"),
            "createdAt": v.get("createdAt"),
        }
        if with_builds and v.get("state") not in VERSION_GOING:
            row["builds"] = [b.as_output() for b in waiters.list_builds(client, image_arn, ver)]
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------ delete


def delete_image(
    client: MicrovmsClient,
    image_arn: str,
    *,
    give_up_after: float,
    retry: Callable[[ClientError, float], bool] = lambda _exc, _elapsed: True,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """DeleteMicrovmImage, sent again while the service refuses it for now.

    ``retry(error, elapsed)`` says whether a refusal is worth another try; after
    ``give_up_after`` seconds, or when it says no, the refusal is raised. Returns True once the
    delete is accepted, False when the image is already gone. Deletes are asynchronous: follow
    with :func:`microvms.waiters.wait_for_image_deleted`.
    """
    started = clock()
    delays = DELETE_RETRY.delays()
    while True:
        try:
            client.delete_microvm_image(imageIdentifier=image_arn)
            return True
        except ClientError as exc:
            if waiters.is_not_found(exc):
                return False
            elapsed = clock() - started
            if elapsed > give_up_after or not retry(exc, elapsed):
                raise
        sleep(next(delays))


# ------------------------------------------------------------------------------------ outputs


def image_outputs(
    name: str | None,
    image_arn: str,
    image: Mapping[str, Any],
    version: Mapping[str, Any],
    *,
    kept: list[str],
    builds: list[waiters.BuildResult],
    log_group: str,
) -> dict[str, Any]:
    """What an image is after create, update or read: the resource's outputs, one shape."""
    return {
        "name": name,
        "imageArn": image_arn,
        "imageVersion": version.get("imageVersion"),
        "versionState": version.get("state"),
        "latestActiveImageVersion": image.get("latestActiveImageVersion"),
        "latestFailedImageVersion": image.get("latestFailedImageVersion"),
        "state": image.get("state"),
        "resolvedBaseImageVersion": version.get("baseImageVersion"),
        "retainedVersions": newest_first(kept),
        "builds": [b.as_output() for b in builds],
        "logGroup": log_group,
    }
