"""Local diff: classify a change from old outputs and new checked inputs, with no API call.

Change classes, from cheapest to dearest:

* ``none``      nothing the program controls changed;
* ``settings``  only provider settings (``keepVersions``, ``buildTimeoutMinutes``,
                ``terminateMicrovmsOnDelete``, ``endpointUrl``) or which env vars are secret;
                applied without touching the build (retention may run);
* ``tags``      tags changed: TagResource / UntagResource in place, no rebuild;
* ``activate``  ``activeVersion`` changed (a rollback, or back to the newest): version statuses
                set with UpdateMicrovmImageVersion in place, no rebuild;
* ``version``   build configuration changed: UpdateMicrovmImage (a full PUT) mints a new version;
* ``replace``   ``name`` or ``region`` changed: a new image, then the old one is deleted.

Values the service echoes differently are normalised first (``baseImageVersion`` "1" vs "1.0",
doubles vs ints, missing vs empty collections). In a preview an input may be unknown; an
unknown is always a change (so the engine shows DIFF_SOME), and an unknown ``name``/``region``
is a possible replacement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from microvms.images import VERSION_GOING, version_key

from .spec import (
    BUILD_KEYS,
    PROVIDER_SETTINGS,
    canonical_active_version,
    contains_unknown,
    merged_environment,
    normalise_version,
    plain_numbers,
    user_tags,
)

if TYPE_CHECKING:
    from types_boto3_lambda_microvms.type_defs import MicrovmImageVersionSummaryTypeDef

_EMPTY_DEFAULTS: dict[str, Any] = {
    "description": "",
    "additionalOsCapabilities": [],
    "environmentVariables": {},
    "secretEnvironmentVariables": {},
    "tags": {},
    "logging": None,
    "hooks": None,
    "baseImageVersion": None,
}


@dataclass(frozen=True)
class DiffPlan:
    replaces: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    tags: bool = False
    active: bool = False
    settings: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        return bool(
            self.replaces or self.build or self.tags or self.active or self.settings or self.unknown
        )

    @property
    def kind(self) -> str:
        if self.replaces:
            return "replace"
        if self.build:
            return "version"
        if self.active:
            return "activate"
        if self.tags:
            return "tags"
        if self.settings or self.unknown:
            return "settings"
        return "none"

    @property
    def changed_keys(self) -> tuple[str, ...]:
        keys = list(self.replaces) + list(self.build) + (["tags"] if self.tags else [])
        keys += ["activeVersion"] if self.active else []
        keys += list(self.settings) + list(self.unknown)
        return tuple(dict.fromkeys(keys))


def _norm(key: str, value: Any) -> Any:
    if value is None:
        value = _EMPTY_DEFAULTS.get(key)
    value = plain_numbers(value)
    if key == "baseImageVersion":
        return normalise_version(value)
    if key == "tags":
        return user_tags(value)
    if key == "logging" and isinstance(value, dict) and "disabled" in value:
        return {"disabled": {}}
    if key in ("environmentVariables", "secretEnvironmentVariables") and value is None:
        return {}
    return value


def _active(value: Any) -> str | None:
    return None if value in (None, "") else str(canonical_active_version(plain_numbers(value)))


def _same(key: str, old: Any, new: Any) -> bool:
    return bool(_norm(key, old) == _norm(key, new))


def plan_diff(olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffPlan:
    """Classify the change from ``olds`` (state outputs) to ``news`` (checked inputs)."""
    replaces: list[str] = []
    build: list[str] = []
    settings: list[str] = []
    unknown: list[str] = []

    # identity: an explicit name is compared; a generated name follows namePrefix + region
    for key in ("name", "namePrefix", "region"):
        new = news.get(key)
        if key == "name" and new is None:
            continue  # generated: the old generated name is kept unless namePrefix/region change
        if key == "namePrefix" and news.get("name") is not None:
            continue
        if (
            key == "namePrefix"
            and new is not None
            and olds.get("namePrefix") is None
            and str(olds.get("name") or "").startswith(f"{new}-")
        ):
            continue  # an explicit name that is dropped: keep the image if it has that prefix
        if contains_unknown(new):
            replaces.append(key)
            unknown.append(key)
        elif not _same(key, olds.get(key), new):
            replaces.append(key)

    for key in BUILD_KEYS:
        if key in ("environmentVariables", "secretEnvironmentVariables"):
            continue
        new = news.get(key)
        if key == "baseImageVersion" and new is None:
            continue  # unset means "the latest the service resolves"; whatever it chose is fine
        old = olds.get(key)
        if key == "baseImageVersion" and old is None:
            # the image was built with "latest": pinning the version it resolved to is no change
            old = olds.get("resolvedBaseImageVersion")
        if contains_unknown(new):
            unknown.append(key)
            build.append(key)
        elif not _same(key, old, new):
            build.append(key)

    # environment: what the image sees is the merged map; which names are secret is state only
    if contains_unknown(news.get("environmentVariables")) or contains_unknown(
        news.get("secretEnvironmentVariables")
    ):
        unknown.append("environmentVariables")
        build.append("environmentVariables")
    elif merged_environment(olds) != merged_environment(news):
        build.append("environmentVariables")
    elif set(news.get("secretEnvironmentVariables") or {}) - set(
        olds.get("secretEnvironmentVariables") or {}
    ):
        # a value that became secret must be rewritten in state; the other way round (state
        # more secret than the program, e.g. after an import) is harmless and not a change
        settings.append("secretEnvironmentVariables")

    tags = False
    if contains_unknown(news.get("tags")):
        unknown.append("tags")
        tags = True
    elif not _same("tags", olds.get("tags"), news.get("tags")):
        tags = True

    # which version serves: "3", "3.0" and 3 are one version; unset means the newest
    active = False
    if contains_unknown(news.get("activeVersion")):
        unknown.append("activeVersion")
        active = True
    elif _active(olds.get("activeVersion")) != _active(news.get("activeVersion")):
        active = True

    for key in PROVIDER_SETTINGS:
        new = news.get(key)
        if contains_unknown(new):
            unknown.append(key)
            settings.append(key)
        elif plain_numbers(olds.get(key)) != plain_numbers(new):
            settings.append(key)

    return DiffPlan(
        replaces=tuple(replaces),
        build=tuple(dict.fromkeys(build)),
        tags=tags,
        active=active,
        settings=tuple(settings),
        unknown=tuple(dict.fromkeys(unknown)),
    )


def tag_delta(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """(tags to set, keys to remove) to go from ``old`` to ``new`` user tags."""
    old_u, new_u = user_tags(old), user_tags(new)
    to_set = {k: v for k, v in new_u.items() if old_u.get(k) != v}
    to_remove = sorted(k for k in old_u if k not in new_u)
    return to_set, to_remove


def retention_plan(
    versions: Sequence[MicrovmImageVersionSummaryTypeDef],
    *,
    keep: int,
    protected: set[str],
) -> list[str]:
    """Versions to retire: all but the newest ``keep``, never a protected one.

    ``versions`` are ListMicrovmImageVersions items; ``protected`` holds the active version and
    every version a running MicroVM uses. Versions already deleting are skipped.
    """
    live = [v for v in versions if v.get("state") not in VERSION_GOING]
    live.sort(key=lambda v: version_key(v.get("imageVersion", "0")), reverse=True)
    protected_norm = {normalise_version(p) for p in protected}
    doomed: list[str] = []
    for v in live[keep:]:
        ver = v.get("imageVersion")
        if normalise_version(ver) in protected_norm:
            continue
        doomed.append(ver)
    return doomed


def stable_outputs(plan: DiffPlan) -> list[str]:
    """Outputs an update keeps (``DiffResponse.stables``): the provider's truthful answer.

    An update never changes the ARN; one that builds no version (tags, retention, timeouts, a
    rollback with ``activeVersion``) keeps the name and version too: ``imageVersion`` is the newest
    build, whose configuration the inputs describe, while the version that serves after a
    rollback is ``latestActiveImageVersion``. With an unknown input the plan cannot tell.

    Do not rely on it for previews: the engine (3.274) records ``stables`` but still hands the
    program the new inputs as the state of a previewed update of a provider that cannot preview
    (pkg/resource/plugin/provider_plugin.go), so every output is unknown there. That is why the
    smoke test keys on the image's id and ``build_fingerprint`` (known in a preview), not on
    these outputs — the engine tier found it.
    """
    if plan.replaces:
        return []
    if plan.build or plan.unknown:
        return ["imageArn"]
    return ["imageArn", "imageName", "imageVersion"]
