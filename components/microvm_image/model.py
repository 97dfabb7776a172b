"""The ``lambda-microvms`` service model (botocore) as a validator of the provider's properties.

Shapes, member names, required members, enums, lengths, ranges and patterns are read from the
model botocore ships, never copied by hand, so a member the model does not have (``resources[0]``
with a typo) is refused at ``check`` instead of surfacing as a botocore traceback at ``create``.

Patterns are Java regular expressions. Python's ``re`` differs in two ways that matter here:
``\\d``/``\\s``/``\\w`` match Unicode in Python but only ASCII in Java (so patterns are compiled with
``re.ASCII``: a Devanagari digit is not ``[0-9]``), and Python has no ``\\p{L}``-style Unicode
classes (the tag pattern ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``), which are matched here by Unicode
general category instead: letters, separators and numbers, never controls such as tab or newline.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

from botocore.loaders import Loader

from .spec import is_unknown

SERVICE = "lambda-microvms"
REQUEST_SHAPE = "CreateMicrovmImageRequest"
#: Echoed values and keys are cut to this many characters (a 1 MB value must not make a 5 MB answer).
SHOW_CHARS = 60

#: Keys in property paths are kept whole up to this length (longer than any key the model allows).
KEY_CHARS = 300

Failure = tuple[str, str]


def show(value: Any) -> str:
    """``repr(value)``, cut short for long values and saying how long they were."""
    text = repr(value)
    if len(text) <= SHOW_CHARS:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
    return f"{text[: SHOW_CHARS - 20]}… ({size})"


def show_key(key: Any) -> str:
    """A map key as it appears in a property path, cut short like :func:`show`."""
    text = str(key)
    if len(text) <= KEY_CHARS:
        return text
    return f"{text[:SHOW_CHARS]}…({len(text)} characters)"


@functools.cache
def shapes() -> dict[str, dict[str, Any]]:
    """The service model's shapes (botocore's JSON, as loaded)."""
    model: dict[str, Any] = Loader().load_service_model(SERVICE, "service-2")
    by_name: dict[str, dict[str, Any]] = model["shapes"]
    return by_name


def request_members() -> dict[str, dict[str, Any]]:
    members: dict[str, dict[str, Any]] = shapes()[REQUEST_SHAPE]["members"]
    return members


_CATEGORY_CLASS = re.compile(r"\\p\{([LZNP])\}")
_SINGLE_CLASS = re.compile(r"^\(?\[((?:\\.|[^\]])*)\]([*+])\)?$")


def _category_matcher(pattern: str) -> Callable[[str], bool]:
    """A full-match predicate for a single Java character class using ``\\p{X}`` categories."""
    m = _SINGLE_CLASS.match(pattern)
    if not m:
        raise NotImplementedError(f"unsupported service-model pattern {pattern!r}")
    body, quantifier = m.groups()
    categories = set(_CATEGORY_CLASS.findall(body))
    rest = _CATEGORY_CLASS.sub("", body)
    literals = set(re.sub(r"\\(.)", r"\1", rest))

    def ok(text: str) -> bool:
        if quantifier == "+" and not text:
            return False
        return all(c in literals or unicodedata.category(c)[0] in categories for c in text)

    return ok


@functools.cache
def matcher(pattern: str) -> Callable[[str], bool]:
    """A full-match predicate for a service-model (Java) pattern."""
    if "\\p{" in pattern:
        return _category_matcher(pattern)
    compiled = re.compile(pattern, re.ASCII)
    return lambda text: compiled.fullmatch(text) is not None


def shape_matches(shape_name: str, text: str) -> bool:
    """True when ``text`` satisfies the string shape's length and pattern."""
    shape = shapes()[shape_name]
    if not shape.get("min", 0) <= len(text) <= shape.get("max", len(text)):
        return False
    return "pattern" not in shape or matcher(shape["pattern"])(text)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check(value: Any, shape_name: str, path: str) -> Iterator[Failure]:
    """Every way ``value`` breaks the model shape ``shape_name``; ``path`` names it."""
    if value is None or is_unknown(value):
        return
    shape = shapes()[shape_name]
    kind = shape["type"]
    if kind == "structure":
        yield from _check_structure(value, shape, path)
    elif kind == "list":
        if not isinstance(value, list):
            yield path, f"must be a list, got {type(value).__name__}"
            return
        yield from _check_size(len(value), shape, path, "items")
        for i, item in enumerate(value):
            yield from check(item, shape["member"]["shape"], f"{path}[{i}]")
    elif kind == "map":
        if not isinstance(value, dict):
            yield path, f"must be a map, got {type(value).__name__}"
            return
        yield from _check_size(len(value), shape, path, "entries")
        for key, item in value.items():
            sub = f"{path}.{show_key(key)}"
            yield from check(key, shape["key"]["shape"], sub)
            yield from check(item, shape["value"]["shape"], sub)
    elif kind == "string":
        if not isinstance(value, str):
            yield path, f"must be a string, got {type(value).__name__}"
            return
        yield from _check_string(value, shape, path)
    elif kind in ("integer", "long"):
        if not _is_int(value):
            yield path, f"must be an integer, got {type(value).__name__}"
        elif not shape.get("min", value) <= value <= shape.get("max", value):
            yield path, f"{value}: an integer {shape.get('min', '')}-{shape.get('max', '')}"
    elif kind == "boolean" and not isinstance(value, bool):
        yield path, f"must be true or false, got {type(value).__name__}"


def _check_structure(value: Any, shape: dict[str, Any], path: str) -> Iterator[Failure]:
    members = shape["members"]
    allowed = ", ".join(members) or "none (an empty object {})"
    if not isinstance(value, dict):
        yield path, f"must be an object; members: {allowed}"
        return
    unknown = [k for k in value if k not in members]
    if unknown:
        shown = ", ".join(show(str(k)) for k in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        yield path, f"unknown member(s) {shown}{more}; allowed: {allowed}"
    if shape.get("union"):
        given = [k for k in members if value.get(k) is not None]
        if len(given) != 1:
            yield path, f"is a union: exactly one of {allowed}"
    for member in shape.get("required", ()):
        if value.get(member) is None:
            yield f"{path}.{member}", "required"
    for key, item in value.items():
        if key in members:
            yield from check(item, members[key]["shape"], f"{path}.{key}")


def _check_size(size: int, shape: dict[str, Any], path: str, what: str) -> Iterator[Failure]:
    lo, hi = shape.get("min", 0), shape.get("max")
    if size < lo or (hi is not None and size > hi):
        yield path, f"{size} {what}; allowed {lo}-{hi if hi is not None else 'any'}"


def _check_string(value: str, shape: dict[str, Any], path: str) -> Iterator[Failure]:
    if shape.get("enum") and value not in shape["enum"]:
        yield path, f"{show(value)}; allowed: {', '.join(shape['enum'])}"
        return
    lo, hi = shape.get("min", 0), shape.get("max")
    if len(value) < lo or (hi is not None and len(value) > hi):
        yield path, f"{len(value)} characters; allowed {lo}-{hi if hi is not None else 'any'}"
    elif "pattern" in shape and not matcher(shape["pattern"])(value):
        shown = "the value" if shape.get("sensitive") else show(value)
        yield path, f"{shown} does not match the service's pattern {shape['pattern']}"
