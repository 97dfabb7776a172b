"""Lambda Core VPC-egress network connectors (``/2026-04-04/network-connectors``, docs/service-facts.md §4.7, §5, §6.3).

Only the six connector operations of botocore's ``lambda-core`` model are emulated (not runtimes).
Bodies are PascalCase and omit absent members; the states go ``PENDING → ACTIVE`` with
``StateReason: "Initial creation"``, updates report ``LastUpdateStatus``, deletes drain through
``DELETING``. Live rules the model does not state: a ``ClientToken`` (boto3 always fills one), an
``OperatorRole``, a ``NetworkProtocol`` and ``AssociatedComputeResourceTypes`` are all required.
"""

from __future__ import annotations

import builtins
import copy
import uuid
from dataclasses import dataclass, field

from .exceptions import (
    CoreResourceNotFoundException,
    InvalidParameterValueException,
    ResourceConflictException,
)


@dataclass
class Connector:
    connector_id: str
    arn: str
    name: str
    configuration: dict
    operator_role: str | None
    created_at: float
    active_at: float
    state: str = "PENDING"
    state_reason: str | None = None
    last_modified: float = 0.0
    last_update_status: str | None = None
    last_update_reason: str | None = None
    update_done_at: float | None = None
    delete_at: float | None = None
    version: int = 1
    tags: dict = field(default_factory=dict)

    def base(self) -> dict:
        return {
            "Arn": self.arn,
            "Configuration": copy.deepcopy(self.configuration),
            "Id": self.connector_id,
            "Name": self.name,
            "OperatorRole": self.operator_role,
            "State": self.state,
        }

    def describe(self) -> dict:
        data = self.base()
        data["LastModified"] = self.last_modified
        if self.state_reason is not None:
            data["StateReason"] = self.state_reason
        if self.last_update_status is not None:
            data["LastUpdateStatus"] = self.last_update_status
            if self.last_update_reason:
                data["LastUpdateStatusReason"] = self.last_update_reason
        return {k: v for k, v in data.items() if v is not None}

    def summary(self) -> dict:
        return {
            "Arn": self.arn,
            "Id": self.connector_id,
            "LastModified": self.last_modified,
            "Name": self.name,
            "State": self.state,
            "Type": "VPC_EGRESS",
        }


def _prose_checks(params: dict, *, creating: bool) -> None:
    if not params.get("ClientToken"):
        raise InvalidParameterValueException("ClientToken is a required field")
    if "Configuration" not in params and not creating:
        return
    vpc = (params.get("Configuration") or {}).get("VpcEgressConfiguration") or {}
    if not params.get("OperatorRole"):
        raise InvalidParameterValueException(
            "NetworkConnectorOperatorRole is required for VPC_EGRESS connector type"
        )
    if not vpc.get("NetworkProtocol"):
        raise InvalidParameterValueException("NetworkProtocol cannot be null or empty")
    if not vpc.get("AssociatedComputeResourceTypes"):
        raise InvalidParameterValueException(
            "AssociatedComputeResourceTypes cannot be null or empty"
        )


class ConnectorBackend:
    """Connectors of one region; owned by :class:`.models.RegionBackend`."""

    def __init__(self, region_backend):
        self.region_backend = region_backend
        self.connectors: dict[str, Connector] = {}

    @property
    def _settings(self):
        return self.region_backend.state.settings

    def _arn(self, connector_id: str) -> str:
        backend = self.region_backend
        return f"arn:aws:lambda:{backend.region}:{backend.account}:network-connector:{connector_id}"

    def find(self, identifier: str) -> Connector:
        for connector in self.connectors.values():
            if identifier in (connector.connector_id, connector.arn, connector.name):
                return connector
        arn = identifier if identifier.startswith("arn:") else self._arn(identifier)
        # The live answer echoes an ARN even when an id was sent (docs/service-facts.md §7).
        raise CoreResourceNotFoundException(f"Network connector not found for: {arn}")

    def create(self, params: dict) -> dict:
        _prose_checks(params, creating=True)
        if any(c.name == params["Name"] for c in self.connectors.values()):
            raise ResourceConflictException(f"Network connector {params['Name']} already exists.")
        now = self.region_backend.now
        connector_id = f"nc-{uuid.uuid4()}"
        connector = Connector(
            connector_id=connector_id,
            arn=self._arn(connector_id),
            name=params["Name"],
            configuration=copy.deepcopy(params["Configuration"]),
            operator_role=params.get("OperatorRole"),
            created_at=now,
            last_modified=now,
            active_at=now + self._settings.connector_seconds,
            tags=dict(params.get("Tags") or {}),
        )
        self.connectors[connector_id] = connector
        return connector.base()

    def get(self, identifier: str) -> dict:
        return self.find(identifier).describe()

    def list(self, state: str | None) -> list[dict]:
        items = sorted(self.connectors.values(), key=lambda c: c.created_at)
        return [c.summary() for c in items if state is None or c.state == state]

    def versions(self, identifier: str) -> builtins.list[dict]:  # ``list`` is the method above
        connector = self.find(identifier)
        return [
            {
                "Arn": connector.arn,
                "VersionArn": f"{connector.arn}:{version}",
                "Name": connector.name,
                "Id": connector.connector_id,
                "Version": version,
                "State": connector.state if version == connector.version else "INACTIVE",
                "LastModified": connector.last_modified,
            }
            for version in range(connector.version, 0, -1)
        ]

    def _in_use(self, connector: Connector) -> bool:
        live = ("PENDING", "RUNNING", "SUSPENDING", "SUSPENDED", "TERMINATING")
        return any(
            connector.arn in (vm.ingress + vm.egress) and vm.state in live
            for vm in self.region_backend.vms.values()
        )

    def update(self, params: dict) -> dict:
        connector = self.find(params["Identifier"])
        _prose_checks(params, creating=False)
        if connector.state in ("PENDING", "DELETING"):
            raise ResourceConflictException(
                f"Network connector {connector.arn} is in state {connector.state}."
            )
        now = self.region_backend.now
        changed = params.get("Configuration") not in (None, connector.configuration) or params.get(
            "OperatorRole"
        ) not in (None, connector.operator_role)
        if changed and self._in_use(connector):
            raise ResourceConflictException(
                f"Network connector {connector.arn} is in use by MicroVMs; terminate them first."
            )
        connector.last_modified = now
        if changed:
            connector.configuration = copy.deepcopy(
                params.get("Configuration") or connector.configuration
            )
            connector.operator_role = params.get("OperatorRole") or connector.operator_role
            connector.version += 1
            connector.last_update_status = "InProgress"
            connector.last_update_reason = None
            connector.update_done_at = now + self._settings.connector_seconds
        else:
            connector.last_update_status = "Successful"
            connector.last_update_reason = "No configuration changes detected"
        data = connector.base()
        data["LastModified"] = connector.last_modified
        data["LastUpdateStatus"] = connector.last_update_status
        if connector.last_update_reason:
            data["LastUpdateStatusReason"] = connector.last_update_reason
        return data

    def delete(self, identifier: str) -> dict:
        connector = self.find(identifier)
        if connector.state != "DELETING":
            if self._in_use(connector):
                raise ResourceConflictException(
                    f"Network connector {connector.arn} is in use by MicroVMs; terminate them first."
                )
            connector.state = "DELETING"
            connector.state_reason = None
            connector.last_modified = self.region_backend.now
            connector.delete_at = connector.last_modified + self._settings.delete_seconds
        return connector.base()

    def tick(self, now: float) -> None:
        for key, connector in list(self.connectors.items()):
            if connector.delete_at is not None and now >= connector.delete_at:
                del self.connectors[key]
            elif connector.state == "PENDING" and now >= connector.active_at:
                connector.state = "ACTIVE"
                connector.state_reason = "Initial creation"
                connector.last_modified = connector.active_at
            elif connector.update_done_at is not None and now >= connector.update_done_at:
                connector.last_update_status = "Successful"
                connector.update_done_at = None
