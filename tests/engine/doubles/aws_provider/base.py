"""What every resource type of the double shares: its schema subset, Check, Diff and autonaming.

A type lists the input properties it implements (anything else fails Check, naming the property),
the ones upstream marks ForceNew (a change is a replacement), and its autonamed property. The
service modules implement ``create`` / ``read`` / ``update`` / ``delete`` with boto3. ``read`` is the
single source of outputs: Create and Update return what ``read`` observes right after the call, so
``pulumi refresh`` of an unchanged resource returns exactly the state ``up`` wrote.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from tests.engine.doubles.aws_provider import wire
from tests.engine.doubles.aws_provider.config import Session


class NotImplementedByDouble(Exception):
    """A type, invoke or shape the double refuses (its message names the thing)."""


class ResourceType:
    token: ClassVar[str]
    #: Input properties the double implements.
    inputs: ClassVar[frozenset[str]]
    #: Inputs upstream marks ForceNew.
    force_new: ClassVar[frozenset[str]] = frozenset()
    #: Autonamed property (``<name>-<7 hex>`` when absent), its ``*Prefix`` sibling, length cap.
    name_property: ClassVar[str | None] = None
    name_prefix_property: ClassVar[str | None] = None
    name_max_length: ClassVar[int] = 255
    name_lowercase: ClassVar[bool] = False
    #: Whether the type has upstream v7's per-resource ``region`` (defaulting to the provider's).
    regional: ClassVar[bool] = True
    taggable: ClassVar[bool] = False
    #: Outputs upstream always returns with a default value when the input is absent.
    output_defaults: ClassVar[dict[str, Any]] = {}

    # --- to implement per type ------------------------------------------------------------

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        """Failures for the plain inputs (values may be preview unknowns: skip those)."""
        return []

    def create(self, session: Session, inputs: dict[str, Any]) -> str:
        raise NotImplementedError

    def read(self, session: Session, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        """What AWS holds (camelCase outputs), or None when the resource is gone."""
        raise NotImplementedError

    def update(
        self, session: Session, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    def delete(self, session: Session, id_: str, state: dict[str, Any]) -> None:
        raise NotImplementedError

    # --- shared behaviour ------------------------------------------------------------------

    def region(self, session: Session, inputs: dict[str, Any]) -> str:
        return str(inputs.get("region") or session.region)

    def check(
        self, news: dict[str, Any], olds: dict[str, Any], name: str, seed: bytes
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        failures = [
            (
                key,
                f"the aws test double does not implement input property {key!r} of {self.token}; "
                f"implemented: {', '.join(sorted(self.inputs))}",
            )
            for key in sorted(news)
            if key not in self.inputs and key != wire.DEFAULTS_KEY
        ]
        checked = {k: v for k, v in news.items() if k != wire.DEFAULTS_KEY}
        defaults: list[str] = []
        prop = self.name_property
        if prop and checked.get(prop) is None:
            prefix = self.name_prefix_property and checked.get(self.name_prefix_property)
            old_defaults = olds.get(wire.DEFAULTS_KEY) or []
            if olds.get(prop) is not None and prop in old_defaults and not prefix:
                # Upstream keeps an autoname once chosen (the engine's seed differs per run).
                checked[prop] = olds[prop]
            elif prefix and not wire.is_unknown(prefix):
                checked[prop] = autoname(str(prefix), seed, self.name_max_length, random_len=26)
            elif not prefix:
                checked[prop] = autoname(f"{name}-", seed, self.name_max_length)
                if self.name_lowercase:
                    checked[prop] = checked[prop].lower()
            if checked.get(prop) is not None:
                defaults.append(prop)
        for key, value in checked.items():
            if wire.is_asset(value) and not value.get("hash"):
                # The SDKs send file assets without a hash; record the content's, as upstream
                # does, so a changed file at the same path is a diff and an unchanged one is not.
                checked[key] = with_hash(value)
        if not failures:
            failures.extend(self.validate(wire.unwrap(checked)))
        checked[wire.DEFAULTS_KEY] = defaults
        return checked, failures

    def diff(
        self,
        session: Session,
        olds: dict[str, Any],
        news: dict[str, Any],
        old_outputs: dict[str, Any],
        ignore: set[str],
    ) -> tuple[dict[str, tuple[str, bool]], bool]:
        """``{property: (kind, replace)}`` with kind ``add``/``delete``/``update``; and whether
        the replacement must delete first (an explicitly named resource cannot coexist)."""
        changes: dict[str, tuple[str, bool]] = {}
        keys = (set(olds) | set(news)) - {wire.DEFAULTS_KEY} - ignore
        for key in sorted(keys):
            old, new = olds.get(key), news.get(key)
            if key == "region" and self.regional:
                old = old or old_outputs.get("region") or session.region
                new = new or session.region
            if key in self.output_defaults:
                # An absent input and upstream's default are the same setting.
                default = self.output_defaults[key]
                old = default if old is None else old
                new = default if new is None else new
            if old is None and new is None:
                continue
            if not wire.contains_unknown(new) and wire.normalize(old) == wire.normalize(new):
                continue
            if key == "tags" and not wire.contains_unknown(new) and not old and not new:
                continue
            kind = "add" if old is None else "delete" if new is None else "update"
            changes[key] = (kind, key in self.force_new)
        replaces = any(replace for _, replace in changes.values())
        named = bool(
            self.name_property
            and news.get(self.name_property) is not None
            and self.name_property not in (news.get(wire.DEFAULTS_KEY) or [])
        )
        return changes, replaces and named

    def outputs(
        self, session: Session, id_: str, inputs: dict[str, Any], observed: dict[str, Any]
    ) -> dict[str, Any]:
        """The state: inputs echoed (plain), upstream's defaults, then what AWS holds."""
        plain = {k: v for k, v in wire.unwrap(inputs).items() if k != wire.DEFAULTS_KEY}
        result: dict[str, Any] = {**self.output_defaults, **plain}
        if self.regional:
            result["region"] = self.region(session, plain)
        result.update(observed)
        result["id"] = id_
        return wire.rewrap_secrets(result, inputs)

    def inputs_from_state(self, session: Session, outputs: dict[str, Any]) -> dict[str, Any]:
        """Inputs for an imported resource: the implemented inputs its state sets to something
        other than upstream's default (the provider's region included)."""
        defaults = {**self.output_defaults, "region": session.region}
        found = {
            k: v
            for k, v in outputs.items()
            if k in self.inputs
            and v not in (None, "", [])
            and wire.normalize(v) != wire.normalize(defaults.get(k))
        }
        if self.taggable and not found.get("tags"):
            found.pop("tags", None)
        found[wire.DEFAULTS_KEY] = []
        return found

    # --- tag helpers -------------------------------------------------------------------------

    def all_tags(self, session: Session, inputs: dict[str, Any]) -> dict[str, str]:
        """Upstream's ``tagsAll``: provider default tags overlaid by the resource's tags."""
        return {
            **session.default_tags,
            **{k: str(v) for k, v in (inputs.get("tags") or {}).items()},
        }

    def tag_outputs(
        self, session: Session, inputs: dict[str, Any], actual: dict[str, str]
    ) -> dict[str, Any]:
        """``tags`` (the resource's own, as AWS has them) and ``tagsAll`` (everything)."""
        own = {
            k: v
            for k, v in actual.items()
            if k not in session.default_tags
            or k in (inputs.get("tags") or {})
            or session.default_tags[k] != v
        }
        tags: dict[str, str] | None = own
        if not own and inputs.get("tags") is None:
            tags = None
        return {"tags": tags, "tagsAll": dict(actual)}


def with_hash(asset: dict[str, Any]) -> dict[str, Any]:
    """``asset`` with its content's SHA-256 (unchanged if the content cannot be read yet; Create
    then fails naming the path)."""
    try:
        return {**asset, "hash": hashlib.sha256(wire.asset_bytes(asset)).hexdigest()}
    except (OSError, ValueError):
        return asset


def autoname(prefix: str, seed: bytes, max_length: int, random_len: int = 7) -> str:
    """``prefix`` + ``random_len`` hex characters derived from the engine's random seed.

    Upstream uses ``resource.NewUniqueName`` (frand seeded by SHA-256 of the seed), so names are
    stable for one seed; this reproduces the shape and the determinism, not the exact bytes.
    """
    digest = hashlib.sha256(seed or b"no-seed").hexdigest()
    while len(digest) < random_len:
        digest += hashlib.sha256(digest.encode()).hexdigest()
    name = prefix + digest[:random_len]
    if len(name) > max_length:
        name = prefix[: max_length - random_len] + digest[:random_len]
    return name


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def json_equivalent(a: str | None, b: Any) -> bool:
    """Whether two JSON documents (strings or already-parsed) are the same document."""
    import json

    def load(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    return load(a) == load(b)


def canonical(value: Any) -> Any:
    """A comparable form where unset and default-empty values vanish: ``filter: {}`` equals
    ``Filter: {Prefix: ""}``, an absent flag equals ``false``."""
    if wire.is_secret(value) or wire.is_asset(value):
        return wire.normalize(value)
    if isinstance(value, dict):
        items = {k: canonical(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in (None, "", {}, [], False)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return wire.normalize(value)


def equivalent(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)


def require(inputs: dict[str, Any], *keys: str) -> list[tuple[str, str]]:
    return [(key, "is required") for key in keys if inputs.get(key) in (None, "")]


def expect(inputs: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str):
    """A failure if ``inputs[key]`` is set, known and not of ``kind``."""
    value = inputs.get(key)
    if value is None or wire.contains_unknown(value) or isinstance(value, kind):
        return []
    return [(key, f"expected {what}, got {value!r}")]


def as_int(value: Any) -> int:
    return int(float(value))
