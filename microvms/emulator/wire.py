"""Model-driven wire layer: routes, request parsing, validation and response serialisation.

Everything here is read at run time from botocore's ``lambda-microvms`` 2025-09-09 service model, so
the emulator follows the SDK's own shapes (no hand-copied members, lengths, patterns or enums).

Validation reproduces the live service's message format (docs/service-facts.md §4.1, §4.7, §7)::

    1 validation error detected: Value 'bad name!' at 'name' failed to satisfy constraint:
    Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+

Patterns are matched against the whole value (the live service rejected ``bad name!`` although
``bad`` alone matches ``[a-zA-Z0-9-_]+``); sensitive members are reported without their value
(``Value at 'runHookPayload' ...``); nested members use dotted paths with ``.N.member`` for list
elements; when several constraints fail, the errors come in Java ``HashMap`` iteration order of their
member paths, which is what the recorded three-error message shows (``baseImageArn``,
``codeArtifact``, ``buildRoleArn``).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from types import ModuleType
from urllib.parse import unquote

import botocore.loaders
import botocore.model

from .exceptions import SerializationException, ValidationErrors

SERVICE_NAME = "lambda-microvms"
API_VERSION = "2025-09-09"
CORE_SERVICE = "lambda-core"  # network connectors (docs/service-facts.md §4.7); its other APIs are not emulated
API_VERSIONS = {SERVICE_NAME: API_VERSION, CORE_SERVICE: "2026-04-30"}
CORE_OPERATIONS = (
    "CreateNetworkConnector",
    "GetNetworkConnector",
    "ListNetworkConnectors",
    "UpdateNetworkConnector",
    "DeleteNetworkConnector",
    "ListNetworkConnectorVersions",
)

_regex_module: ModuleType | None
try:  # the ``regex`` module understands \p{L}; fall back to a translation when it is absent
    import regex as _regex_module
except ImportError:  # pragma: no cover - depends on the environment
    _regex_module = None

_UNICODE_CLASSES = {
    r"\p{L}": "a-zA-Z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u03ff"
    "\u0400-\u052f\u0531-\u1fff\u2c00-\u2dff\u3040-\ud7ff\uf900-\ufdff\ufe70-\ufefe\uff21-\uffdc",
    r"\p{Z}": " \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000",
    r"\p{N}": "0-9\u00b2\u00b3\u00b9\u00bc-\u00be\u0660-\u0669\u06f0-\u06f9\u0966-\u096f\uff10-\uff19",
}


@functools.lru_cache(maxsize=4)
def service_model(service: str = SERVICE_NAME) -> botocore.model.ServiceModel:
    """botocore's loaded model for ``service`` (``lambda-microvms`` by default; cached)."""
    data = botocore.loaders.Loader().load_service_model(service, "service-2", API_VERSIONS[service])
    return botocore.model.ServiceModel(data, service_name=service)


@functools.lru_cache(maxsize=256)
def _compile_pattern(pattern: str):
    if _regex_module is not None:
        return _regex_module.compile(pattern)
    translated = pattern
    for key, value in _UNICODE_CLASSES.items():
        translated = translated.replace(key, value)
    return re.compile(translated)


def pattern_matches(pattern: str, value: str) -> bool:
    return _compile_pattern(pattern).fullmatch(value) is not None


# --------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class Route:
    operation: str
    method: str
    regex: re.Pattern
    labels: tuple[str, ...]
    literal_length: int


def _route_for(op: botocore.model.OperationModel) -> Route:
    uri = op.http["requestUri"].split("?", 1)[0]
    labels: list[str] = []
    parts = []
    pos = 0
    literal = 0
    for match in re.finditer(r"\{([^}]+)\}", uri):
        parts.append(re.escape(uri[pos : match.start()]))
        literal += match.start() - pos
        name = match.group(1)
        if name.endswith("+"):
            labels.append(name[:-1])
            parts.append("(.+)")
        else:
            labels.append(name)
            parts.append("([^/]+)")
        pos = match.end()
    parts.append(re.escape(uri[pos:]))
    literal += len(uri) - pos
    regex = re.compile("^" + "".join(parts) + "/?$")
    return Route(op.name, op.http["method"].upper(), regex, tuple(labels), literal)


@functools.lru_cache(maxsize=4)
def routes(service: str = SERVICE_NAME) -> tuple[Route, ...]:
    model = service_model(service)
    names = CORE_OPERATIONS if service == CORE_SERVICE else model.operation_names
    found = [_route_for(model.operation_model(name)) for name in names]
    # Most specific first: longer literal text wins over label captures.
    return tuple(sorted(found, key=lambda r: -r.literal_length))


def match_route(
    method: str, raw_path: str, service: str = SERVICE_NAME
) -> tuple[str, dict[str, str]] | None:
    """Find the operation for ``method`` + percent-encoded ``raw_path``; labels come back decoded.

    botocore percent-encodes ARN colons in path labels (``arn%3Aaws%3A...``); the live gateway also
    accepts raw colons, so labels are URL-decoded after matching (docs/service-facts.md §1).
    """
    path = raw_path.split("?", 1)[0]
    for route in routes(service):
        if route.method != method.upper():
            continue
        match = route.regex.match(path)
        if match:
            return route.operation, {
                label: unquote(value)
                for label, value in zip(route.labels, match.groups(), strict=True)
            }
    return None


def match_any(method: str, raw_path: str) -> tuple[str, str, dict[str, str]] | None:
    """``(service, operation, labels)`` across the MicroVMs API and the emulated connector API."""
    for service in (SERVICE_NAME, CORE_SERVICE):
        found = match_route(method, raw_path, service)
        if found:
            return service, found[0], found[1]
    return None


# --------------------------------------------------------------------------- parsing

# Java's int and long: the service (Jackson) refuses numbers outside them before any constraint.
INTEGER_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
INTEGER_TEXT_RE = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only: int() also takes "١٢" and "1_0"
EXCERPT_CHARS = 64


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` cut to ``limit`` characters (``...`` marks the cut): error messages stay short."""
    return text if len(text) <= limit else text[:limit] + "..."


def _refuse_constant(name: str):
    # Jackson's default refuses the non-standard NaN / Infinity tokens that Python's json accepts.
    raise ValueError(f"non-standard JSON number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {excerpt(text)}")
    return value


def loads(data: bytes | str):
    """Strict JSON: no ``NaN``/``Infinity``, no overflowing floats; errors are ``ValueError``.

    A document nested deeper than the interpreter can parse (``RecursionError``) is a
    ``ValueError`` too, so one ``except ValueError`` covers every malformed body.
    """
    try:
        return json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def parse_json_object(body: bytes) -> dict:
    """The request body as a JSON object; anything else is a ``SerializationException`` (400)."""
    try:
        payload = loads(body)
    except ValueError as exc:  # includes UnicodeDecodeError and over-long integers
        raise SerializationException("Could not parse request body into json") from exc
    if not isinstance(payload, dict):
        raise SerializationException("Expected a JSON object as the request body")
    return payload


def _convert_scalar(shape: botocore.model.Shape, raw: str, name: str):
    kind = shape.type_name
    if kind in INTEGER_RANGES:
        low, high = INTEGER_RANGES[kind]
        if not INTEGER_TEXT_RE.fullmatch(raw) or not low <= int(raw) <= high:
            raise SerializationException(
                f"Failed to parse '{name}': '{excerpt(raw)}' is not a valid {kind}"
            )
        return int(raw)
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise SerializationException(
                f"Failed to parse '{name}': '{excerpt(raw)}' is not a valid boolean"
            )
        return raw.lower() == "true"
    return raw


def parse_request(
    operation: str,
    labels: dict[str, str],
    query: dict[str, list[str]],
    headers: dict[str, str],
    body: bytes,
    service: str = SERVICE_NAME,
) -> dict:
    """Build the operation's input parameters (member name -> value) from every wire location.

    Only members the model names are taken; :func:`validate_input` then checks and cleans them.
    """
    op = service_model(service).operation_model(operation)
    shape = op.input_shape
    params: dict = {}
    if shape is None:
        return params
    payload: dict = {}
    has_body_members = any(m.serialization.get("location") is None for m in shape.members.values())
    if has_body_members and body and body.strip():
        payload = parse_json_object(body)
    lowered_headers = {k.lower(): v for k, v in headers.items()}
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", name)
        if location == "uri":
            if wire_name in labels:
                params[name] = _convert_scalar(member, labels[wire_name], name)
        elif location == "querystring":
            values = query.get(wire_name)
            if not values:
                continue
            if isinstance(member, botocore.model.ListShape):
                params[name] = [_convert_scalar(member.member, v, name) for v in values]
            else:
                params[name] = _convert_scalar(member, values[0], name)
        elif location == "header":
            value = lowered_headers.get(wire_name.lower())
            if value is not None:
                params[name] = _convert_scalar(member, value, name)
        elif name in payload:
            params[name] = payload[name]
    return params


# --------------------------------------------------------------------------- validation


RENDER_DEPTH = 8  # the model nests 4 deep; anything deeper in a message is elided


def _render(value, sensitive: bool = False) -> str | None:
    """Java-style ``toString`` of a value as the live messages show it (``'[a, b]'``, ``'{k=v}'``)."""
    if sensitive:
        return None
    if value is None:
        return "null"

    def inner(v, depth: int):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list | dict) and depth >= RENDER_DEPTH:
            return "[...]" if isinstance(v, list) else "{...}"
        if isinstance(v, list):
            return "[" + ", ".join(inner(x, depth + 1) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}={inner(x, depth + 1)}" for k, x in v.items()) + "}"
        return str(v)

    return inner(value, 0)


def _error(path: str, value, constraint: str, sensitive: bool = False) -> tuple[str, str]:
    rendered = _render(value, sensitive)
    if rendered is None:
        head = f"Value at '{path}'"
    elif value is None:
        head = f"Value null at '{path}'"
    else:
        head = f"Value '{rendered}' at '{path}'"
    return path, f"{head} failed to satisfy constraint: {constraint}"


def _is_sensitive(shape: botocore.model.Shape) -> bool:
    return bool(shape.metadata.get("sensitive"))


def _length_errors(path, value, length, shape, sensitive):
    errors = []
    meta = shape.metadata
    if "min" in meta and length < meta["min"]:
        errors.append(
            _error(
                path,
                value,
                f"Member must have length greater than or equal to {meta['min']}",
                sensitive,
            )
        )
    if "max" in meta and length > meta["max"]:
        errors.append(
            _error(
                path,
                value,
                f"Member must have length less than or equal to {meta['max']}",
                sensitive,
            )
        )
    return errors


def _type_error(path: str, expected: str, value=None):
    if expected == "unit":
        # Live answer to ``"allPorts": true`` (docs/service-facts.md §4.5, §7).
        raise SerializationException("Expected null")
    raise SerializationException(f"Expected {expected} for '{path}', got {_json_type(value)}")


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _join(path: str, name: str, camel: bool) -> str:
    # Lambda Core reports camelCase paths although its wire members are PascalCase (docs/service-facts.md §4.7).
    if camel and name:
        name = name[0].lower() + name[1:]
    return f"{path}.{name}" if path else name


def _validate(shape: botocore.model.Shape, value, path: str, errors: list, camel: bool = False):
    """Check ``value`` against ``shape``; return it cleaned to the shape (unknown members dropped).

    Wrong JSON types raise :class:`SerializationException` (the service's deserialiser answers
    before any constraint); constraint failures are appended to ``errors``. The cleaned value holds
    only modelled members, so the handlers never see (or copy, or hash) anything the model does not
    name, however deep or large it was on the wire.
    """
    kind = shape.type_name
    sensitive = _is_sensitive(shape)
    if isinstance(shape, botocore.model.StructureShape):
        if not isinstance(value, dict):
            _type_error(path, "unit" if not shape.members else "an object", value)
        members = shape.members
        cleaned = {}
        member_errors: list = []
        for name, member in members.items():
            if member.serialization.get("location") in ("uri", "querystring", "header") and path:
                continue
            if value.get(name) is None:
                continue
            cleaned[name] = _validate(
                member, value[name], _join(path, name, camel), member_errors, camel
            )
        if shape.metadata.get("union") and len(cleaned) != 1:
            errors.append(
                _error(path, cleaned, "Member must have exactly one member set", sensitive)
            )
        for required in shape.required_members:
            if value.get(required) is None:
                errors.append(_error(_join(path, required, camel), None, "Member must not be null"))
        errors.extend(member_errors)
        return cleaned
    if isinstance(shape, botocore.model.ListShape):
        if not isinstance(value, list):
            _type_error(path, "a list", value)
        errors.extend(_length_errors(path, value, len(value), shape, sensitive))
        return [
            None
            if item is None
            else _validate(shape.member, item, f"{path}.{index}.member", errors, camel)
            for index, item in enumerate(value, start=1)
        ]
    if isinstance(shape, botocore.model.MapShape):
        if not isinstance(value, dict):
            _type_error(path, "a map", value)
        errors.extend(_length_errors(path, value, len(value), shape, sensitive))
        key_problems: list[str] = []
        value_problems: list[str] = []
        cleaned = {}
        for key, item in value.items():
            sub: list = []
            _validate(shape.key, key, path, sub)
            key_problems.extend(msg.split("constraint: ", 1)[1] for _, msg in sub)
            sub = []
            cleaned[key] = None if item is None else _validate(shape.value, item, path, sub)
            value_problems.extend(msg.split("constraint: ", 1)[1] for _, msg in sub)
        shown = _render(cleaned, sensitive or _is_sensitive(shape.value))
        head = f"Value at '{path}'" if shown is None else f"Value '{shown}' at '{path}'"
        if key_problems:
            unique = list(dict.fromkeys(key_problems))
            errors.append(
                (
                    path,
                    f"{head} failed to satisfy constraint: Map keys must satisfy constraint: "
                    f"[{', '.join(unique)}]",
                )
            )
        if value_problems:
            unique = list(dict.fromkeys(value_problems))
            errors.append(
                (
                    path,
                    f"{head} failed to satisfy constraint: Map value must satisfy constraint: "
                    f"[{', '.join(unique)}]",
                )
            )
        return cleaned
    if isinstance(shape, botocore.model.StringShape):
        if not isinstance(value, str):
            _type_error(path, "a string", value)
        errors.extend(_length_errors(path, value, len(value), shape, sensitive))
        enum = shape.enum
        if enum and value not in enum:
            errors.append(
                _error(
                    path,
                    value,
                    f"Member must satisfy enum value set: [{', '.join(enum)}]",
                    sensitive,
                )
            )
        pattern = shape.metadata.get("pattern")
        if pattern and not pattern_matches(pattern, value):
            errors.append(
                _error(
                    path,
                    value,
                    f"Member must satisfy regular expression pattern: {pattern}",
                    sensitive,
                )
            )
        return value
    if kind in INTEGER_RANGES:
        low, high = INTEGER_RANGES[kind]
        if isinstance(value, bool) or not isinstance(value, int):
            _type_error(path, f"an {kind}" if kind == "integer" else "a long", value)
        if not low <= value <= high:
            raise SerializationException(
                f"Numeric value out of range of {kind} for '{path}': {excerpt(str(value))}"
            )
        meta = shape.metadata
        if "min" in meta and value < meta["min"]:
            errors.append(
                _error(
                    path,
                    value,
                    f"Member must have value greater than or equal to {meta['min']}",
                    sensitive,
                )
            )
        if "max" in meta and value > meta["max"]:
            errors.append(
                _error(
                    path,
                    value,
                    f"Member must have value less than or equal to {meta['max']}",
                    sensitive,
                )
            )
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            _type_error(path, "a boolean", value)
        return value
    if kind in ("double", "float"):
        # :func:`loads` already refused NaN, Infinity and overflowing literals.
        if isinstance(value, bool) or not isinstance(value, int | float):
            _type_error(path, "a number", value)
        return value
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            _type_error(path, "a timestamp", value)
        return value
    if kind == "blob":
        if not isinstance(value, str):
            _type_error(path, "a base64 string", value)
        return value
    # "document" or a type this model does not use: keep it as sent (already strict JSON).
    return value


def _java_string_hash(text: str) -> int:
    h = 0
    for ch in text:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h


def java_hashmap_order(keys: list[str]) -> list[int]:
    """Indices of ``keys`` in the iteration order of a Java ``HashMap`` they were inserted into."""
    capacity = 16
    distinct = list(dict.fromkeys(keys))
    while len(distinct) > capacity * 0.75:
        capacity *= 2

    def bucket(key: str) -> int:
        h = _java_string_hash(key)
        return (h ^ (h >> 16)) & (capacity - 1)

    first_seen = {key: i for i, key in reversed(list(enumerate(distinct)))}
    return sorted(range(len(keys)), key=lambda i: (bucket(keys[i]), first_seen[keys[i]], i))


def validate_input(operation: str, params: dict, service: str = SERVICE_NAME) -> dict:
    """Check ``params`` against the operation's input shape and return them cleaned to it.

    Raises :class:`SerializationException` for a wrong JSON type and :class:`ValidationErrors` for
    failed constraints (types, required members, enums, lengths, ranges, patterns, unions).
    """
    shape = service_model(service).operation_model(operation).input_shape
    if shape is None:
        return {}
    errors: list[tuple[str, str]] = []
    cleaned = _validate(shape, params, "", errors, camel=service == CORE_SERVICE)
    if errors:
        order = java_hashmap_order([path for path, _ in errors])
        raise ValidationErrors([errors[i][1] for i in order])
    return cleaned


def validation_messages(operation: str, params: dict, service: str = SERVICE_NAME) -> list[str]:
    """The list of constraint messages (empty when valid) — handy for property tests."""
    try:
        validate_input(operation, params, service)
    except ValidationErrors as exc:
        return exc.errors
    return []


# --------------------------------------------------------------------------- serialisation


def _serialize(shape: botocore.model.Shape | None, value):
    if value is None or shape is None:
        return value
    kind = shape.type_name
    if isinstance(shape, botocore.model.StructureShape):
        out = {}
        members = shape.members
        for key, item in value.items():
            member = members.get(key)
            if member is not None and member.serialization.get("location") == "header":
                continue
            out[key] = _serialize(member, item) if member is not None else item
        return out
    if isinstance(shape, botocore.model.ListShape):
        return [_serialize(shape.member, item) for item in value]
    if isinstance(shape, botocore.model.MapShape):
        return {key: _serialize(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        if isinstance(value, datetime):
            value = value.timestamp()
        if shape.serialization.get("timestampFormat") == "iso8601":
            moment = datetime.fromtimestamp(float(value), UTC)
            return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
        return round(float(value), 3)
    if kind in ("integer", "long"):
        return int(value)
    return value


def serialize_output(
    operation: str, data: dict | None, service: str = SERVICE_NAME
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and JSON body for a successful ``operation`` answer.

    Members present in ``data`` are serialised by their model shape (``None`` stays an explicit
    ``null``, as the live control plane emits it); keys the model does not know (``id``,
    ``versionStateTimeBucket``, ``terminationReasonCode`` …) pass through unchanged (docs/service-facts.md §5).
    """
    op = service_model(service).operation_model(operation)
    status = int(op.http.get("responseCode", 200))
    shape = op.output_shape
    if shape is None or status == 204:
        return status, {}, b""
    body = _serialize(shape, data or {})
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def error_status(code: str, default: int, service: str = SERVICE_NAME) -> int:
    """HTTP status of a modelled error shape (e.g. 402 for ServiceQuotaExceededException)."""
    try:
        shape = service_model(service).shape_for(code)
    except Exception:
        return default
    return int(shape.metadata.get("error", {}).get("httpStatusCode", default))
