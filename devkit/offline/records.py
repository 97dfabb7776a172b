"""What one program evaluation registered: :class:`ResourceRecord` and :class:`ProgramGraph`.

Values are raw wire JSON (see :mod:`devkit.offline.wire`); the records come from
:func:`devkit.offline.evaluate.evaluate_program` or, for policy tables, from
:func:`devkit.offline.synthetic.make_resource`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from devkit.offline import wire

ORGANIZATION = "organization"
STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_TYPE_PREFIX = "pulumi:providers:"
DYNAMIC_PACKAGE = "pulumi-python"


@dataclasses.dataclass
class ResourceRecord:
    """One registered resource as the engine saw it.

    ``inputs`` and ``outputs`` are raw wire JSON: secrets stay wrapped as
    ``{wire.SIG: wire.SECRET_SIG, "value": ...}``, preview unknowns are the string ``wire.UNKNOWN``.
    ``provider`` is the ``"<provider urn>::<provider id>"`` reference ("" for components).
    """

    urn: str
    type: str
    name: str
    custom: bool
    parent: str = ""
    provider: str = ""
    dependencies: list[str] = dataclasses.field(default_factory=list)
    property_dependencies: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: dict[str, Any] = dataclasses.field(default_factory=dict)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: str = ""
    #: The provider's own record (set for graph records and by :func:`make_resource`).
    provider_record: ResourceRecord | None = dataclasses.field(
        default=None, repr=False, compare=False
    )

    @property
    def plain_inputs(self) -> dict[str, Any]:
        """``inputs`` with secrets unwrapped (unknowns stay as sentinel strings)."""
        return wire.unwrap_secrets(self.inputs)

    @property
    def plain_outputs(self) -> dict[str, Any]:
        return wire.unwrap_secrets(self.outputs)

    @property
    def provider_urn(self) -> str:
        return self.provider.rsplit("::", 1)[0] if self.provider else ""

    @property
    def is_provider(self) -> bool:
        return self.type.startswith(PROVIDER_TYPE_PREFIX)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("provider_record", None)
        return data


@dataclasses.dataclass
class ProgramGraph:
    """Everything one program evaluation registered, in registration order."""

    stack: str
    project: str
    preview: bool
    config: dict[str, str]
    secret_keys: list[str]
    resources: list[ResourceRecord]
    #: Stack exports, raw wire JSON (see ``plain_outputs``).
    outputs: dict[str, Any]
    invokes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    logs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    organization: str = ORGANIZATION
    #: The raw requests the monitor received: ``(method, protobuf message)`` in arrival order.
    raw_requests: list[tuple[str, Any]] = dataclasses.field(default_factory=list, repr=False)

    @property
    def plain_outputs(self) -> dict[str, Any]:
        return wire.unwrap_secrets(self.outputs)

    @property
    def types(self) -> list[str]:
        return [r.type for r in self.resources]

    def by_type(self, type_token: str) -> list[ResourceRecord]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> ResourceRecord:
        """The single resource of ``type_token`` (and ``name``); a clear error otherwise."""
        found = [r for r in self.by_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            have = sorted({f"{r.type}::{r.name}" for r in self.resources})
            want = type_token if name is None else f"{type_token}::{name}"
            raise LookupError(
                f"expected exactly one {want}, found {len(found)}; registered: {have}"
            )
        return found[0]

    def by_urn(self, urn: str) -> ResourceRecord:
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(f"no resource with URN {urn!r}")

    def children_of(self, urn: str) -> list[ResourceRecord]:
        return [r for r in self.resources if r.parent == urn]

    def provider_of(self, record: ResourceRecord) -> ResourceRecord | None:
        if record.provider_record is not None:
            return record.provider_record
        if not record.provider:
            return None
        return self.by_urn(record.provider_urn)

    @property
    def stack_resource(self) -> ResourceRecord:
        return self.one(STACK_TYPE)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "project": self.project,
            "preview": self.preview,
            "config": self.config,
            "secretKeys": self.secret_keys,
            "outputs": self.outputs,
            "resources": [r.to_json() for r in self.resources],
            "invokes": self.invokes,
        }
