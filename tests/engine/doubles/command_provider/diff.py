"""Diff of ``command:local:Command``: pulumi-go-provider's ``infer`` default, in wire JSON.

Upstream restricts the old *state* to the input property names, diffs it against the new inputs
with pulumi's ``PropertyMap.Diff`` and reports a detailed diff keyed by property path
(``environment.FOO``, ``triggers[1]``, ``["a b"]``). Arrays and maps are compared element by
element; anything else (including a secret against a plain value, or an unknown) by deep equality.
Every change is an update, except under ``triggers`` (``replaceOnChanges``), which replaces;
``deleteBeforeReplace`` stays false, so the new command is created before the old one's delete
runs. (Upstream leaves element-level ``triggers[i]`` replacements to the engine's
``replaceOnChanges: ["triggers[*]"]`` that the SDKs set; the double reports them itself, so the
outcome with the engine is the same replacement.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devkit.offline.wire import SIG
from tests.engine.doubles.command_provider.inputs import REPLACE_ON_CHANGES, SUPPORTED

ADD, DELETE, UPDATE = "ADD", "DELETE", "UPDATE"
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class CommandDiff:
    #: Property path -> ``ADD``/``DELETE``/``UPDATE``, with ``_REPLACE`` appended for replacements.
    detailed: dict[str, str] = field(default_factory=dict)
    #: Top-level properties that changed.
    changed: list[str] = field(default_factory=list)
    #: Top-level properties whose change replaces the resource.
    replaces: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.detailed)


def _path(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{prefix}.{key}" if prefix else key
    escaped = key.replace('"', '\\"')
    return f'{prefix}["{escaped}"]'


def _value_diff(path: str, old: Any, new: Any, out: dict[str, str]) -> None:
    if isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            if i >= len(old):
                out[_path(path, i)] = ADD
            elif i >= len(new):
                out[_path(path, i)] = DELETE
            else:
                _value_diff(_path(path, i), old[i], new[i], out)
        return
    if isinstance(old, dict) and isinstance(new, dict) and not _is_special(old, new):
        _object_diff(path, old, new, out)
        return
    if old != new:
        out[path] = UPDATE


def _is_special(*values: Mapping[str, Any]) -> bool:
    """True for signatured objects (secrets, assets): compared whole, as Go's DeepEquals does."""
    return any(SIG in v for v in values)


def _object_diff(prefix: str, old: Mapping[str, Any], new: Mapping[str, Any], out: dict) -> None:
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        path = _path(prefix, key)
        if before is None and after is None:
            continue
        if before is None:
            out[path] = ADD
        elif after is None:
            out[path] = DELETE
        else:
            _value_diff(path, before, after, out)


def diff_command(
    olds: Mapping[str, Any], news: Mapping[str, Any], ignore_changes: Sequence[str] = ()
) -> CommandDiff:
    """The diff of a command's old state against its new (checked) inputs."""
    news = dict(news)
    for key in ignore_changes:
        # Upstream copies the old value over the new one for each ignored top-level key.
        if key in olds:
            news[key] = olds[key]
        else:
            news.pop(key, None)
    old_inputs = {k: olds[k] for k in SUPPORTED if olds.get(k) is not None}
    new_inputs = {k: v for k, v in news.items() if v is not None}
    detailed: dict[str, str] = {}
    _object_diff("", old_inputs, new_inputs, detailed)
    result = CommandDiff()
    for path, kind in sorted(detailed.items()):
        top = re.split(r"[.\[]", path, maxsplit=1)[0]
        if top in REPLACE_ON_CHANGES:
            kind += "_REPLACE"
            if top not in result.replaces:
                result.replaces.append(top)
        if top not in result.changed:
            result.changed.append(top)
        result.detailed[path] = kind
    return result
