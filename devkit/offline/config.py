"""Config as the CLI assembles it: ``Pulumi.yaml`` defaults, then ``Pulumi.<stack>.yaml``, then overrides.

``secure:`` values become ``<secret:KEY>`` placeholders and their keys are listed as secret;
:class:`SecretValue` marks an override secret. :data:`REPO_ROOT` is the default program directory
(the repository's own ``__main__.py``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"


@dataclasses.dataclass(frozen=True)
class SecretValue:
    """An override value that the engine would hand the program as a secret config value."""

    value: Any


def _config_string(value: Any) -> str:
    """A config value as the CLI hands it to the language host (always a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _replace_secure(value: Any, key: str) -> tuple[Any, bool]:
    """Replace ``{secure: ...}`` (anywhere in the value) by ``<secret:KEY[.path]>`` placeholders."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return f"<secret:{key}>", True
        out, any_secret = {}, False
        for k, v in value.items():
            out[k], s = _replace_secure(v, f"{key}.{k}")
            any_secret = any_secret or s
        return out, any_secret
    if isinstance(value, list):
        out_list, any_secret = [], False
        for i, v in enumerate(value):
            new, s = _replace_secure(v, f"{key}[{i}]")
            out_list.append(new)
            any_secret = any_secret or s
        return out_list, any_secret
    return value, False


def _qualify(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return data or {}


def load_project(program_dir: Path | str = REPO_ROOT) -> dict[str, Any]:
    path = Path(program_dir) / "Pulumi.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no Pulumi.yaml in {program_dir}")
    return _read_yaml(path)


def load_config(
    stack: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    program_dir: Path | str = REPO_ROOT,
) -> tuple[str, dict[str, str], list[str]]:
    """``(project, config, secret_keys)`` as the CLI would assemble them for ``stack``.

    Order: project-level ``config:`` in ``Pulumi.yaml`` (``default:`` for the project's own keys,
    ``value:`` or a bare value for any key), then ``Pulumi.<stack>.yaml``, then ``overrides``.
    In overrides a key without namespace gets the project's, ``None`` removes the key and
    :class:`SecretValue` marks the value secret. Values become strings (objects as JSON).
    """
    program_dir = Path(program_dir)
    project_doc = load_project(program_dir)
    project = str(project_doc.get("name") or "project")
    config: dict[str, str] = {}
    secret_keys: set[str] = set()

    for raw_key, spec in (project_doc.get("config") or {}).items():
        key = _qualify(str(raw_key), project)
        if isinstance(spec, dict) and (
            {"type", "description", "default", "value", "secret"} & set(spec) or not spec
        ):
            if "value" in spec:
                config[key] = _config_string(spec["value"])
            elif "default" in spec:
                config[key] = _config_string(spec["default"])
        elif spec is not None:
            config[key] = _config_string(spec)

    stack_dir = program_dir / str(project_doc.get("stackConfigDir") or ".")
    stack_file = stack_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise FileNotFoundError(f"no stack config {stack_file} for stack {stack!r}")
    stack_doc = _read_yaml(stack_file)
    for raw_key, value in (stack_doc.get("config") or {}).items():
        key = _qualify(str(raw_key), project)
        value, is_secret = _replace_secure(value, key)
        config[key] = _config_string(value)
        if is_secret:
            secret_keys.add(key)

    for raw_key, value in (overrides or {}).items():
        key = _qualify(str(raw_key), project)
        if value is None:
            config.pop(key, None)
            secret_keys.discard(key)
            continue
        if isinstance(value, SecretValue):
            config[key] = _config_string(value.value)
            secret_keys.add(key)
        else:
            config[key] = _config_string(value)
            secret_keys.discard(key)
    return project, config, sorted(secret_keys)


def program_main(program_dir: Path, project_doc: Mapping[str, Any]) -> Path:
    main = project_doc.get("main")
    path = program_dir / str(main) if main else program_dir
    if path.is_dir():
        path = path / "__main__.py"
    if not path.is_file():
        raise FileNotFoundError(f"no program entry point {path}")
    return path


def account_id_from_config(config: Mapping[str, str], project: str) -> str:
    """The stack's first ``aws:allowedAccountIds`` entry, else ``<project>:accountId``, else a default."""
    allowed = config.get("aws:allowedAccountIds")
    if allowed:
        try:
            ids = json.loads(allowed)
        except ValueError:
            ids = [allowed]
        if isinstance(ids, list) and ids:
            return str(ids[0])
    return str(
        config.get(f"{project}:accountId")
        or config.get("lambda-microvms:accountId")
        or DEFAULT_ACCOUNT_ID
    )
