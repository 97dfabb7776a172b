"""Pulumi property values on the wire, as the double receives and returns them.

Values travel as ``google.protobuf.Struct``. Secrets are objects ``{SIG: SECRET_SIG, "value": v}``,
assets ``{SIG: ASSET_SIG, "path" | "text" | "uri": …, "hash": …}``, unknowns (preview only) are
sentinel strings. Struct numbers are doubles, so ``3`` arrives as ``3.0``.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any

from google.protobuf import json_format, struct_pb2

# The wire vocabulary is the offline engine's (one home); the double adds assets and comparison.
from devkit.offline.wire import (  # noqa: F401  (re-exported for the double's modules)
    ARCHIVE_SIG,
    ASSET_SIG,
    SECRET_SIG,
    SIG,
    UNKNOWN,
    UNKNOWNS,
    contains_secret,
    contains_unknown,
    is_secret,
    is_unknown,
    secret,
)
from devkit.offline.wire import unwrap_secrets as unwrap  # noqa: F401

#: Internal key upstream's bridge keeps in checked inputs: the properties it filled in itself.
DEFAULTS_KEY = "__defaults"


def from_struct(message: struct_pb2.Struct | None) -> dict[str, Any]:
    if message is None:
        return {}
    return json_format.MessageToDict(message)


def to_struct(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


def is_asset(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG) == ASSET_SIG


def rewrap_secrets(outputs: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """Mark top-level outputs secret where the input of the same name carried a secret."""
    result = dict(outputs)
    for key, value in inputs.items():
        if key in result and contains_secret(value) and not is_secret(result[key]):
            result[key] = secret(result[key])
    return result


def normalize(value: Any) -> Any:
    """A comparable form: secrets unwrapped, integral doubles as ints, assets by their content hash."""
    if is_secret(value):
        return normalize(value.get("value"))
    if is_asset(value):
        return ("asset", value.get("hash") or value.get("path") or value.get("text"))
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def asset_bytes(asset: dict[str, Any], base_dir: Path | None = None) -> bytes:
    """The bytes of an asset. A relative ``path`` is relative to the plugin's working directory,
    which the engine sets to the program directory (``plugin.Context.Pwd``), as the real plugin
    reads it; ``PULUMI_ROOT`` is tried next when set."""
    if "text" in asset:
        return str(asset["text"]).encode()
    if "path" in asset:
        return _resolve(Path(str(asset["path"])), base_dir).read_bytes()
    uri = str(asset.get("uri", ""))
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme == "file":
        return _resolve(Path(urllib.parse.unquote(parsed.path)), base_dir).read_bytes()
    raise ValueError(
        f"the aws test double reads only path, text and file:// assets, not {uri or asset!r}"
    )


def _resolve(path: Path, base_dir: Path | None) -> Path:
    if path.is_absolute():
        return path
    candidates = [(base_dir or Path.cwd()) / path]
    root = os.environ.get("PULUMI_ROOT")
    if root:
        candidates.append(Path(root) / path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"asset file {str(path)!r} not found (tried {tried})")
