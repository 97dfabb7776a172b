"""Synthetic resource records for policy tables, shaped like those from an evaluation.

:func:`make_resource` builds one :class:`devkit.offline.records.ResourceRecord` (with its default
provider record) without running a program, so a policy test can state exactly the inputs it judges.
"""

from __future__ import annotations

import copy
import functools
import json
import uuid
from collections.abc import Mapping
from typing import Any

from devkit.offline.config import DEFAULT_REGION, REPO_ROOT, load_config
from devkit.offline.mocks import (
    default_provider_inputs,
    default_provider_name,
    engine_urn,
    package_of,
)
from devkit.offline.records import (
    DYNAMIC_PACKAGE,
    PROVIDER_TYPE_PREFIX,
    STACK_TYPE,
    ResourceRecord,
)

# Packages whose resources are custom (provider-managed); "pkg:mod/x:X" tokens are custom too.
_PROVIDER_PACKAGES = {
    "aws",
    "command",
    DYNAMIC_PACKAGE,
    "random",
    "tls",
    "archive",
    "docker",
    "kubernetes",
}


def _is_custom_type(type_token: str, project: str) -> bool:
    if type_token.startswith(PROVIDER_TYPE_PREFIX):
        return True
    if type_token == STACK_TYPE:
        return False
    package, _, rest = type_token.partition(":")
    if package == project:
        return False
    return package in _PROVIDER_PACKAGES or "/" in rest.partition(":")[0]


def make_resource(
    type: str,  # noqa: A002 - matches the shared interface
    name: str,
    inputs: Mapping[str, Any] | None,
    *,
    provider_inputs: Mapping[str, Any] | None = None,
    parent: ResourceRecord | str | None = None,
    property_dependencies: Mapping[str, list[str]] | None = None,
    stack: str = "dev",
    project: str = "lambda-microvms",
    dependencies: list[str] | None = None,
    outputs: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    custom: bool | None = None,
    resource_id: str = "",
) -> ResourceRecord:
    """A synthetic :class:`ResourceRecord`, shaped like one from :func:`evaluate_program`.

    Custom resources get a default provider record (``record.provider_record``) whose inputs are
    ``provider_inputs`` (plus ``version``); without them, the stack's real ``aws:*`` config from
    ``Pulumi.<stack>.yaml`` when that file exists, else ``{"region": "us-east-1"}``. ``outputs``
    default to a copy of the inputs (as in a preview). Values are taken as wire JSON.
    """
    parent_urn = parent.urn if isinstance(parent, ResourceRecord) else (parent or "")
    if custom is None:
        custom = _is_custom_type(type, project)
    inputs = json.loads(json.dumps(dict(inputs or {})))
    urn = engine_urn(stack, project, parent_urn, type, name)
    rec = ResourceRecord(
        urn=urn,
        type=type,
        name=name,
        custom=custom,
        parent=parent_urn,
        dependencies=list(dependencies or []),
        property_dependencies={k: list(v) for k, v in (property_dependencies or {}).items()},
        inputs=inputs,
        outputs=json.loads(json.dumps(dict(outputs)))
        if outputs is not None
        else copy.deepcopy(inputs),
        options=dict(options or {}),
        id=resource_id,
    )
    if custom and not type.startswith(PROVIDER_TYPE_PREFIX):
        package = package_of(type)
        version = _package_version(package)
        if provider_inputs is None:
            provider_inputs = _stack_provider_inputs(package, version, stack)
        prov_inputs = json.loads(json.dumps(dict(provider_inputs)))
        if version and "version" not in prov_inputs and package != DYNAMIC_PACKAGE:
            prov_inputs["version"] = version
        prov_name = default_provider_name(version if package != DYNAMIC_PACKAGE else "")
        prov_type = f"{PROVIDER_TYPE_PREFIX}{package}"
        prov_urn = engine_urn(stack, project, "", prov_type, prov_name)
        prov_id = str(uuid.uuid5(uuid.NAMESPACE_URL, prov_urn))
        rec.provider = f"{prov_urn}::{prov_id}"
        rec.provider_record = ResourceRecord(
            urn=prov_urn,
            type=prov_type,
            name=prov_name,
            custom=True,
            inputs=prov_inputs,
            outputs=copy.deepcopy(prov_inputs),
            id=prov_id,
            options={"defaultProvider": True},
        )
    return rec


def _package_version(package: str) -> str:
    dist = {"aws": "pulumi_aws", "command": "pulumi_command"}.get(package)
    if not dist:
        return ""
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - best effort
        return ""


@functools.lru_cache(maxsize=32)
def _cached_stack_config(stack: str, mtime: float) -> tuple[dict[str, str], tuple[str, ...]]:
    del mtime  # part of the cache key only: an edited stack file is read again
    _, config, secret_keys = load_config(stack, program_dir=REPO_ROOT)
    return config, tuple(secret_keys)


def _stack_provider_inputs(package: str, version: str, stack: str) -> dict[str, Any]:
    try:
        mtime = (REPO_ROOT / f"Pulumi.{stack}.yaml").stat().st_mtime
        config, secret_keys = _cached_stack_config(stack, mtime)
    except (FileNotFoundError, OSError):
        config, secret_keys = {}, ()
    inputs = default_provider_inputs(package, "", config, secret_keys)
    if package == "aws" and "region" not in inputs:
        inputs["region"] = DEFAULT_REGION
    return inputs
