"""The recording resource monitor: :class:`CapturingMonitor` and :class:`RecordingEngine`.

``CapturingMonitor`` is a :class:`pulumi.runtime.mocks.MockMonitor` subclass that records the raw
``RegisterResourceRequest`` / ``ReadResource`` / ``Invoke`` / ``RegisterResourceOutputs`` messages
and answers through :class:`devkit.offline.mocks.HarnessMocks`. It is built on first use
(:func:`capturing_monitor_class`), so importing this module does not import pulumi.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from devkit.offline import wire
from devkit.offline.mocks import (
    HarnessMocks,
    default_provider_inputs,
    engine_urn,
    package_of,
    plain_value,
)
from devkit.offline.records import STACK_TYPE, ResourceRecord


class _Args:
    """What :class:`pulumi.runtime.mocks.MockResourceArgs` carries, built from wire JSON."""

    def __init__(
        self, typ: str, name: str, inputs: dict, provider: str, resource_id: str, custom: bool
    ):
        self.typ = typ
        self.name = name
        self.inputs = inputs
        self.provider = provider
        self.resource_id = resource_id
        self.custom = custom
        self.transforms: list = []


def _make_capturing_monitor_class():
    """Build :class:`CapturingMonitor` lazily so importing this module does not import pulumi."""
    from google.protobuf import empty_pb2
    from pulumi.runtime.mocks import MockCallArgs, MockMonitor
    from pulumi.runtime.proto import provider_pb2, resource_pb2
    from pulumi.runtime.sync_await import _ensure_event_loop

    class CapturingMonitor(MockMonitor):
        """A ``MockMonitor`` that records every raw request and answers through :class:`HarnessMocks`.

        URNs are pinned to the given stack/project (the SDK's context vars are not set in every
        thread) and follow the engine's rule of not prefixing the root Stack's type.
        """

        def __init__(
            self,
            mocks: HarnessMocks,
            *,
            stack: str,
            project: str,
            preview: bool,
            config: Mapping[str, str],
            secret_keys: Iterable[str] = (),
        ):
            super().__init__(mocks)  # type: ignore[arg-type]
            self.secret_keys = list(secret_keys)
            self.stack = stack
            self.project = project
            self.preview = preview
            self.config = dict(config)
            self.lock = threading.Lock()
            self.records: list[ResourceRecord] = []
            self.invokes: list[dict[str, Any]] = []
            self.requests: list[tuple[str, Any]] = []
            self._by_urn: dict[str, ResourceRecord] = {}

        def make_urn(self, parent: str, type_: str, name: str) -> str:
            return engine_urn(self.stack, self.project, parent, type_, name)

        def _record(self, rec: ResourceRecord, request: Any, kind: str) -> None:
            with self.lock:
                self.records.append(rec)
                self._by_urn[rec.urn] = rec
                self.requests.append((kind, request))

        def _provider_inputs(self, provider_ref: str, type_token: str, version: str) -> dict:
            """Plain inputs of the provider that will serve ``type_token`` (explicit or default)."""
            if provider_ref:
                with self.lock:
                    prov = self._by_urn.get(provider_ref.rsplit("::", 1)[0])
                return wire.unwrap_secrets(prov.inputs) if prov is not None else {}
            package = package_of(type_token)
            return wire.unwrap_secrets(
                default_provider_inputs(package, version, self.config, self.secret_keys)
            )

        def _region_for(
            self, provider_ref: str, inputs: Mapping[str, Any], provider_inputs: Mapping[str, Any]
        ) -> str:
            for candidate in (inputs.get("region"), provider_inputs.get("region")):
                region = plain_value(candidate)
                if isinstance(region, str) and region:
                    return region
            return self.mocks.region  # type: ignore[attr-defined]

        def RegisterResource(self, request):
            urn = self.make_urn(request.parent, request.type, request.name)
            wire_inputs = wire.from_struct(request.object)
            rec = ResourceRecord(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                parent=request.parent,
                provider=request.provider,
                dependencies=list(request.dependencies),
                property_dependencies={
                    k: list(v.urns) for k, v in request.propertyDependencies.items()
                },
                inputs=wire_inputs,
                outputs={},
                options=_options_of(request),
            )
            if request.type == STACK_TYPE or not request.custom:
                # Components (and the Stack) get their outputs from RegisterResourceOutputs.
                self._record(rec, request, "RegisterResource")
                return resource_pb2.RegisterResourceResponse(urn=urn)

            prov_inputs = self._provider_inputs(request.provider, request.type, request.version)
            region = self._region_for(request.provider, wire_inputs, prov_inputs)
            args = _Args(
                request.type,
                request.name,
                wire.unwrap_secrets(wire_inputs),
                request.provider,
                request.importId,
                True,
            )
            resource_id, state = self.mocks.new_resource(  # type: ignore[call-arg]
                args, urn=urn, region=region, provider_inputs=prov_inputs
            )
            outputs = _merge_outputs(wire_inputs, _state_to_wire(state))
            for name in request.additionalSecretOutputs:
                if name in outputs and not wire.is_secret(outputs[name]):
                    outputs[name] = wire.secret(outputs[name])
            rec.outputs = outputs
            rec.id = resource_id or ""
            if not rec.id and self.preview and rec.is_provider:
                rec.id = wire.UNKNOWN  # what the SDK puts in references to it during preview
            self._record(rec, request, "RegisterResource")
            self.resources[urn] = MockMonitor.ResourceRegistration(
                urn, rec.id, wire.unwrap_secrets(outputs)
            )
            return resource_pb2.RegisterResourceResponse(
                urn=urn, id=rec.id, object=wire.to_struct(outputs)
            )

        def ReadResource(self, request):
            urn = self.make_urn(request.parent, request.type, request.name)
            wire_inputs = wire.from_struct(request.properties)
            prov_inputs = self._provider_inputs(request.provider, request.type, request.version)
            region = self._region_for(request.provider, wire_inputs, prov_inputs)
            args = _Args(
                request.type,
                request.name,
                wire.unwrap_secrets(wire_inputs),
                request.provider,
                request.id,
                True,
            )
            # Reads return the real state, in preview as well.
            _, state = self.mocks.new_resource(  # type: ignore[call-arg]
                args, urn=urn, region=region, read=True, provider_inputs=prov_inputs
            )
            outputs = _merge_outputs(wire_inputs, _state_to_wire(state))
            options = {
                "read": True,
                "additionalSecretOutputs": list(request.additionalSecretOutputs),
                "version": request.version,
            }
            rec = ResourceRecord(
                urn=urn,
                type=request.type,
                name=request.name,
                custom=True,
                parent=request.parent,
                provider=request.provider,
                dependencies=list(request.dependencies),
                inputs=wire_inputs,
                outputs=outputs,
                options=options,
                id=request.id,
            )
            self._record(rec, request, "ReadResource")
            self.resources[urn] = MockMonitor.ResourceRegistration(
                urn, request.id, wire.unwrap_secrets(outputs)
            )
            return resource_pb2.ReadResourceResponse(urn=urn, properties=wire.to_struct(outputs))

        def RegisterResourceOutputs(self, request):
            outputs = wire.from_struct(request.outputs)
            with self.lock:
                rec = self._by_urn.get(request.urn)
                if rec is not None:
                    rec.outputs = outputs
                self.requests.append(("RegisterResourceOutputs", request))
            return empty_pb2.Empty()

        def Invoke(self, request):
            wire_args = wire.from_struct(request.args)
            entry = {
                "token": request.tok,
                "args": wire_args,
                "provider": request.provider,
                "version": request.version,
            }
            with self.lock:
                self.invokes.append(entry)
                self.requests.append(("Invoke", request))
            if request.tok == "pulumi:pulumi:getResource":
                _ensure_event_loop()
                return super().Invoke(request)
            args = MockCallArgs(
                token=request.tok, args=wire.unwrap_secrets(wire_args), provider=request.provider
            )
            prov_inputs = self._provider_inputs(request.provider, request.tok, request.version)
            region = self._region_for(request.provider, wire_args, prov_inputs)
            ret, failures = self.mocks.call(args, region=region)  # type: ignore[call-arg]
            entry["return"] = ret
            ret_proto = wire.to_struct(_state_to_wire(ret))
            fail_protos = [
                provider_pb2.CheckFailure(property=p, reason=r) for p, r in (failures or [])
            ]
            return resource_pb2.ResourceInvokeResponse(
                failures=fail_protos, **{"return": ret_proto}
            )

    return CapturingMonitor


def _state_to_wire(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """Plain mock state as wire JSON (the SDK serializer is only needed for non-JSON values)."""
    try:
        return wire.from_struct(wire.to_struct(dict(state or {})))
    except TypeError:
        from pulumi.runtime import rpc
        from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

        _ensure_event_loop()
        return wire.from_struct(_sync_await(rpc.serialize_properties(dict(state or {}), {})))


def _merge_outputs(wire_inputs: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs = the wire inputs (secrets and unknowns kept) plus what the mocks added or changed.

    A changed value of a secret input stays secret, as the engine keeps secretness per property.
    """
    outputs = copy.deepcopy(dict(wire_inputs))
    for key, value in state.items():
        if key not in outputs:
            outputs[key] = value
            continue
        old = outputs[key]
        if wire.contains_unknown(old):
            continue
        if wire.unwrap_secrets(old) != wire.unwrap_secrets(value):
            outputs[key] = wire.secret(wire.unwrap_secrets(value)) if wire.is_secret(old) else value
    return outputs


def _options_of(request: Any) -> dict[str, Any]:
    timeouts = {}
    if request.HasField("customTimeouts"):
        ct = request.customTimeouts
        timeouts = {
            k: v
            for k, v in (("create", ct.create), ("update", ct.update), ("delete", ct.delete))
            if v
        }
    aliases = list(request.aliasURNs)
    for spec in request.aliases:
        if spec.urn:
            aliases.append(spec.urn)
        else:
            aliases.append(
                {
                    "name": spec.spec.name,
                    "type": spec.spec.type,
                    "project": spec.spec.project,
                    "stack": spec.spec.stack,
                }
            )
    return {
        "protect": request.protect if request.HasField("protect") else False,
        "ignoreChanges": list(request.ignoreChanges),
        "deleteBeforeReplace": request.deleteBeforeReplace,
        "deleteBeforeReplaceDefined": request.deleteBeforeReplaceDefined,
        "additionalSecretOutputs": list(request.additionalSecretOutputs),
        "replaceOnChanges": list(request.replaceOnChanges),
        "aliases": aliases,
        "customTimeouts": timeouts,
        "retainOnDelete": request.retainOnDelete if request.HasField("retainOnDelete") else False,
        "deletedWith": request.deletedWith,
        "importId": request.importId,
        "version": request.version,
        "pluginDownloadURL": request.pluginDownloadURL,
        "providers": dict(request.providers),
        "remote": request.remote,
    }


_CAPTURING_MONITOR = None


def capturing_monitor_class():
    """The :class:`CapturingMonitor` class (built on first use)."""
    global _CAPTURING_MONITOR
    if _CAPTURING_MONITOR is None:
        _CAPTURING_MONITOR = _make_capturing_monitor_class()
    return _CAPTURING_MONITOR


def __getattr__(name: str):  # PEP 562: ``from devkit.offline.monitor import CapturingMonitor``
    if name == "CapturingMonitor":
        return capturing_monitor_class()
    raise AttributeError(name)


class RecordingEngine:
    """A ``MockEngine`` that keeps the program's log messages."""

    _LEVELS = {0: "debug", 1: "info", 2: "warning", 3: "error"}

    def __init__(self):
        self.logs: list[tuple[str, str]] = []
        self._logger = logging.getLogger("devkit.offline.evaluate")

    def Log(self, request):
        level = self._LEVELS.get(request.severity, "info")
        self.logs.append((level, request.message))
        getattr(self._logger, level)(request.message)

    def GetRootResource(self, request):  # pragma: no cover - only for completeness
        raise NotImplementedError

    def SetRootResource(self, request):  # pragma: no cover
        raise NotImplementedError
