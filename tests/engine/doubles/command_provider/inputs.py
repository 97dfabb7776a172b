"""The inputs of ``command:local:Command`` and their Check, as upstream's decoder sees them.

Upstream decodes the inputs into ``local.CommandInputs`` with pulumi's mapper (unrecognized fields
are errors, wrong types are errors) and then applies the annotated defaults
(``addPreviousOutputInEnv: true``). Check failures keep the mapper's wording, e.g.
``Unrecognized field 'foo' on 'local.CommandInputs'``, plus the list of fields this double knows.

Values here are wire JSON: secrets are signatured objects, unknowns (preview) sentinel strings;
both are accepted wherever the plain value would be.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from devkit.offline import wire
from tests.engine.doubles.command_provider import LOCAL_COMMAND, VERSION

GO_TYPE = "local.CommandInputs"

#: Upstream's ``Logging`` enum (``local/logging.go``); absent means stdout and stderr.
LOGGING_VALUES = ("stdout", "stderr", "stdoutAndStderr", "none")

#: Input name -> (Go type as the mapper names it, schema type).
SUPPORTED: dict[str, tuple[str, dict[str, Any]]] = {
    "create": ("string", {"type": "string"}),
    "update": ("string", {"type": "string"}),
    "delete": ("string", {"type": "string"}),
    "dir": ("string", {"type": "string"}),
    "stdin": ("string", {"type": "string"}),
    "interpreter": ("[]string", {"type": "array", "items": {"type": "string"}}),
    "environment": (
        "map[string]string",
        {"type": "object", "additionalProperties": {"type": "string"}},
    ),
    "triggers": ("[]interface {}", {"type": "array", "items": {"$ref": "pulumi.json#/Any"}}),
    "addPreviousOutputInEnv": ("bool", {"type": "boolean"}),
    "logging": ("local.Logging", {"type": "string", "enum": list(LOGGING_VALUES)}),
}
#: Upstream inputs this double does not implement (the program never uses them).
NOT_IMPLEMENTED = ("assetPaths", "archivePaths")
#: Inputs whose change replaces the resource (``provider:"replaceOnChanges"`` upstream).
REPLACE_ON_CHANGES = ("triggers",)
#: Outputs on top of the echoed inputs.
OUTPUTS = ("stdout", "stderr")


def _go_kind(value: Any) -> str:
    """The Go type name the mapper reports for a decoded wire value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "<nil>"


def _plain(value: Any) -> Any:
    """The value with every secret unwrapped; None if unknown (nothing to check yet).

    Unknown elements inside lists and maps stay sentinel strings, which pass as strings."""
    value = wire.unwrap_secrets(value)
    return None if wire.is_unknown(value) else value


def _wrong_type(name: str, value: Any) -> str:
    return (
        f"Field '{name}' on '{GO_TYPE}' must be a '{SUPPORTED[name][0]}'; "
        f"got '{_go_kind(value)}' instead"
    )


def _type_failure(name: str, value: Any) -> str | None:
    """The mapper's complaint about ``value`` for input ``name``, or None if it decodes."""
    plain = _plain(value)
    if plain is None:
        return None
    go_type = SUPPORTED[name][0]
    if go_type in ("string", "local.Logging"):
        if not isinstance(plain, str):
            return _wrong_type(name, plain)
        if go_type == "local.Logging" and plain not in LOGGING_VALUES:
            return (
                f"'{name}' is {plain!r}; allowed values: {', '.join(LOGGING_VALUES)} "
                "(absent logs stdout and stderr)"
            )
        return None
    if go_type == "bool":
        return None if isinstance(plain, bool) else _wrong_type(name, plain)
    if go_type == "[]string":
        if not isinstance(plain, list):
            return _wrong_type(name, plain)
        bad = [v for v in plain if not isinstance(v, str)]
        return f"every element of '{name}' must be a string; got {bad[0]!r}" if bad else None
    if go_type == "map[string]string":
        if not isinstance(plain, dict):
            return _wrong_type(name, plain)
        bad = [k for k, v in plain.items() if not isinstance(v, str)]
        return f"'{name}.{bad[0]}' must be a string" if bad else None
    if go_type == "[]interface {}":
        return None if isinstance(plain, list) else _wrong_type(name, plain)
    return None


def check_inputs(news: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Upstream's Check: (checked inputs, failures as (property, reason)).

    Nulls are dropped (the mapper skips nil optionals); ``addPreviousOutputInEnv`` defaults to
    true. On failures the news come back unchanged, as upstream returns them.
    """
    failures: list[tuple[str, str]] = []
    known = ", ".join(sorted(SUPPORTED))
    for name, value in news.items():
        if name in NOT_IMPLEMENTED:
            failures.append(
                (
                    name,
                    f"'{name}' is not implemented by the pulumi-resource-command test double "
                    f"(tests/engine/doubles/command_provider); implemented inputs: {known}",
                )
            )
        elif name not in SUPPORTED:
            failures.append(
                (name, f"Unrecognized field '{name}' on '{GO_TYPE}'; known fields: {known}")
            )
        elif value is not None and (reason := _type_failure(name, value)):
            failures.append((name, reason))
    if failures:
        return dict(news), failures
    checked = {k: v for k, v in news.items() if v is not None}
    checked.setdefault("addPreviousOutputInEnv", True)
    return checked, []


def unknown_config_keys(news: Mapping[str, Any]) -> list[str]:
    """Provider config keys other than ``version`` (the provider has no configuration)."""
    return sorted(k for k in news if k != "version")


def schema_json() -> str:
    """A minimal package schema: the one resource, its inputs and outputs."""
    inputs = {name: spec for name, (_go, spec) in SUPPORTED.items()}
    inputs["triggers"] = {**inputs["triggers"], "replaceOnChanges": True}
    properties = {
        **inputs,
        "stdout": {"type": "string", "description": "The standard output of the command's process"},
        "stderr": {"type": "string", "description": "The standard error of the command's process"},
    }
    schema = {
        "name": "command",
        "version": VERSION,
        "description": "TEST DOUBLE of pulumi-command: command:local:Command only.",
        "resources": {
            LOCAL_COMMAND: {
                "description": "A local command to be executed (test double).",
                "inputProperties": inputs,
                "properties": properties,
                "required": list(OUTPUTS),
            }
        },
    }
    return json.dumps(schema, sort_keys=True)
