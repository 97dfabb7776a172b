"""Pulumi wire-format constants and the engine's property marshalling, for the offline engine.

Everything here works on *wire JSON*: the JSON form of a ``google.protobuf.Struct`` as it travels
between the engine, the language SDK, providers and analyzers. Secrets are objects carrying the
special signature key, unknowns (preview) are sentinel strings.

The engine re-marshals properties differently for each peer (``MarshalOptions`` in
``sdk/go/common/resource/plugin/rpc.go``):

* providers (``provider_plugin.go``): keep unknowns only where the call allows them (preview
  Check/Diff), keep secrets only if the provider's ``Configure`` answered ``acceptSecrets=True``
  (the Python dynamic provider answers False, so secrets arrive unwrapped), keep ``__provider``;
* analyzers (``analyzer_plugin.go``): keep unknowns and secrets, skip internal ``__*`` keys,
  no resource references or output values.

:func:`engine_remarshal` reproduces those options. Struct numbers are doubles on the wire, so an
int 3 comes back as ``3.0``.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

#: Key that marks a special (signatured) object on the wire.
SIG = "4dabf18193072939515e22adb298388d"
#: Signature values.
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"

#: Unknown sentinels (preview). The Python SDK always sends the string one.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
UNKNOWN_NUMBER = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
UNKNOWN_ARRAY = "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2"
UNKNOWN_OBJECT = "dd056dcd-154b-4c76-9bd3-c8f88648b5ff"
UNKNOWN_ASSET = "030794c1-ac77-496b-92df-f27374a8bd58"
UNKNOWN_ARCHIVE = "e48ece36-62e2-4504-bad9-02848725956a"
UNKNOWNS = frozenset(
    {
        UNKNOWN,
        UNKNOWN_BOOL,
        UNKNOWN_NUMBER,
        UNKNOWN_ARRAY,
        UNKNOWN_OBJECT,
        UNKNOWN_ASSET,
        UNKNOWN_ARCHIVE,
    }
)

#: The property that carries a dynamic resource's serialized provider.
PROVIDER_KEY = "__provider"


def secret(value: Any) -> dict[str, Any]:
    """The wire form of a secret value."""
    return {SIG: SECRET_SIG, "value": value}


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG) == SECRET_SIG


def is_unknown(value: Any) -> bool:
    return isinstance(value, str) and value in UNKNOWNS


def contains_unknown(value: Any) -> bool:
    """True if ``value`` (wire JSON) holds an unknown anywhere."""
    if is_unknown(value):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def contains_secret(value: Any) -> bool:
    if is_secret(value):
        return True
    if isinstance(value, dict):
        return any(contains_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_secret(v) for v in value)
    return False


def unwrap_secrets(value: Any) -> Any:
    """Wire JSON with every secret replaced by its plain value (unknowns left in place)."""
    if is_secret(value):
        return unwrap_secrets(value.get("value"))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def _downgrade(value: Any, *, keep_unknowns: bool, keep_secrets: bool) -> Any:
    if isinstance(value, dict):
        sig = value.get(SIG)
        if sig == SECRET_SIG:
            inner = _downgrade(
                value.get("value"), keep_unknowns=keep_unknowns, keep_secrets=keep_secrets
            )
            return secret(inner) if keep_secrets else inner
        if sig == RESOURCE_SIG:
            # Resource references are downgraded to their ID (custom) or URN (component).
            ref_id = value.get("id")
            if ref_id is not None and ref_id != "":
                return ref_id if (keep_unknowns or not is_unknown(ref_id)) else None
            return value.get("urn")
        if sig == OUTPUT_SIG:
            if "value" not in value:
                inner = UNKNOWN if keep_unknowns else None
            else:
                inner = _downgrade(
                    value["value"], keep_unknowns=keep_unknowns, keep_secrets=keep_secrets
                )
            return secret(inner) if (value.get("secret") and keep_secrets) else inner
        return {
            k: _downgrade(v, keep_unknowns=keep_unknowns, keep_secrets=keep_secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _downgrade(v, keep_unknowns=keep_unknowns, keep_secrets=keep_secrets) for v in value
        ]
    if is_unknown(value) and not keep_unknowns:
        return None
    return value


def engine_remarshal(
    props: dict[str, Any] | None,
    *,
    keep_unknowns: bool = True,
    keep_secrets: bool = True,
    skip_internal_keys: bool = False,
) -> dict[str, Any]:
    """Re-marshal a wire property map the way the engine does before sending it to a plugin.

    Analyzer calls use ``keep_unknowns=True, keep_secrets=True, skip_internal_keys=True``; provider
    calls to the Python dynamic provider use ``keep_secrets=False`` and keep ``__provider``.
    Resource references and output values are always downgraded (neither peer accepts them).
    Unknowns that may not be kept become nulls, which Go's marshaller then omits.
    """
    out: dict[str, Any] = {}
    for key, value in (props or {}).items():
        if skip_internal_keys and key.startswith("__"):
            continue
        new = _downgrade(value, keep_unknowns=keep_unknowns, keep_secrets=keep_secrets)
        if new is None and is_unknown(value):
            continue
        out[key] = new
    return out


def to_struct(wire: dict[str, Any] | None) -> struct_pb2.Struct:
    """A ``Struct`` built from wire JSON (the equivalent of Go's ``MarshalProperties``).

    Never use ``pulumi.runtime.rpc.serialize_properties`` for this outside a configured monitor:
    with no monitor features it silently strips secrets.
    """
    s = struct_pb2.Struct()
    if wire:
        s.update(_jsonable(wire))
    return s


def from_struct(s: struct_pb2.Struct | None) -> dict[str, Any]:
    """Wire JSON of a ``Struct``."""
    if s is None:
        return {}
    return json_format.MessageToDict(s)


def _jsonable(value: Any) -> Any:
    """Python values the Struct can hold: tuples become lists, keys become strings."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"cannot put {type(value).__name__} on the Pulumi wire: {value!r}")
