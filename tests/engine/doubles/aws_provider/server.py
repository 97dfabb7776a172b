"""The ``pulumirpc.ResourceProvider`` gRPC service of the double.

RPCs the engine uses: ``GetPluginInfo``, ``GetSchema`` (a minimal schema), ``CheckConfig``,
``DiffConfig``, ``Configure``, ``Check``, ``Diff``, ``Create``, ``Read``, ``Update``, ``Delete``,
``Invoke``, ``Cancel``, ``Attach``. ``Handshake``, ``Construct``, ``Call``, ``Parameterize`` and the
mapping RPCs stay UNIMPLEMENTED (the engine falls back for ``Handshake``). ``Configure`` answers
``supportsPreview=True`` as upstream does: in a preview ``Create`` echoes the inputs (computed
outputs stay unknown) and ``Update`` returns the planned state (old outputs overlaid by the new
inputs), as a bridged provider plans it.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import grpc
from botocore.exceptions import BotoCoreError, ClientError
from google.protobuf import empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from tests.engine.doubles.aws_provider import wire
from tests.engine.doubles.aws_provider.base import (
    NotImplementedByDouble,
    ResourceType,
    equivalent,
)
from tests.engine.doubles.aws_provider.config import (
    ConfigError,
    Session,
    check_config,
    parse_config,
)
from tests.engine.doubles.aws_provider.resources import invoke, resource_type
from tests.engine.doubles.plugins import AWS_PLUGIN_VERSION

VERSION = AWS_PLUGIN_VERSION  # the pulumi_aws SDK's own pulumi-plugin.json
SCHEMA = json.dumps({"name": "aws", "version": VERSION})
LOG = logging.getLogger("aws-test-double")

_KIND = provider_pb2.PropertyDiff.Kind
_KINDS = {
    ("add", False): _KIND.ADD,
    ("add", True): _KIND.ADD_REPLACE,
    ("delete", False): _KIND.DELETE,
    ("delete", True): _KIND.DELETE_REPLACE,
    ("update", False): _KIND.UPDATE,
    ("update", True): _KIND.UPDATE_REPLACE,
}


def _type_of(request: Any) -> str:
    if getattr(request, "type", ""):
        return request.type
    # urn:pulumi:<stack>::<project>::<parent types $>type::<name>
    return request.urn.split("::")[2].split("$")[-1]


def _name_of(request: Any) -> str:
    return getattr(request, "name", "") or request.urn.split("::")[-1]


def rpc(operation: str) -> Callable:
    """Turn exceptions into gRPC errors that name the operation, type and id (never values)."""

    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self: AwsProvider, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return method(self, request, context)
            except NotImplementedByDouble as exc:
                LOG.warning("%s refused: %s", operation, exc)
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except ConfigError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except (ClientError, BotoCoreError, RuntimeError, ValueError, OSError) as exc:
                if operation == "Configure":
                    # Upstream's own words, e.g. "AWS account ID not allowed: ".
                    context.abort(grpc.StatusCode.UNKNOWN, str(exc))
                subject = getattr(request, "tok", "") or _safe_type(request)
                ident = getattr(request, "id", "")
                where = f"{operation} {subject}" + (f" ({ident})" if ident else "")
                LOG.warning("%s failed: %s", where, type(exc).__name__)
                context.abort(grpc.StatusCode.UNKNOWN, f"{where}: {exc}")

        return wrapper

    return decorate


def _safe_type(request: Any) -> str:
    try:
        return _type_of(request)
    except (AttributeError, IndexError):
        return ""


class AwsProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Session | None = None

    # --- plugin -----------------------------------------------------------------------------

    def GetPluginInfo(self, request: empty_pb2.Empty, context: Any) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=VERSION)

    def GetSchema(self, request: Any, context: Any) -> provider_pb2.GetSchemaResponse:
        return provider_pb2.GetSchemaResponse(schema=SCHEMA)

    def Cancel(self, request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    def Attach(self, request: Any, context: Any) -> empty_pb2.Empty:
        return empty_pb2.Empty()

    # --- provider configuration -----------------------------------------------------------

    @rpc("CheckConfig")
    def CheckConfig(self, request: provider_pb2.CheckRequest, context: Any):
        news = wire.from_struct(request.news)
        failures = check_config(news)
        return provider_pb2.CheckResponse(
            inputs=wire.to_struct(news),
            failures=[provider_pb2.CheckFailure(property=k, reason=r) for k, r in failures],
        )

    @rpc("DiffConfig")
    def DiffConfig(self, request: provider_pb2.DiffRequest, context: Any):
        olds = wire.from_struct(request.old_inputs) or wire.from_struct(request.olds)
        news = wire.from_struct(request.news)
        changed = sorted(
            k
            for k in set(olds) | set(news)
            if wire.contains_unknown(news.get(k))
            or wire.normalize(olds.get(k)) != wire.normalize(news.get(k))
        )
        if not changed:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME,
            diffs=changed,
            detailedDiff={k: provider_pb2.PropertyDiff(kind=_KIND.UPDATE) for k in changed},
            hasDetailedDiff=True,
        )

    @rpc("Configure")
    def Configure(self, request: provider_pb2.ConfigureRequest, context: Any):
        if request.HasField("args"):
            raw = wire.from_struct(request.args)
        else:
            raw = {k.split(":")[-1]: v for k, v in request.variables.items()}
        if wire.contains_unknown(raw):
            # Preview with unknown provider config: configure what is known, skip the checks.
            known = {k: v for k, v in raw.items() if not wire.contains_unknown(v)}
            session = Session(parse_config(known))
        else:
            session = Session(parse_config(raw))
            session.configure()
        with self._lock:
            self._session = session
        LOG.info("configured: region %s, account %r", session.region, session.account_id)
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, supportsPreview=True, acceptResources=False
        )

    def session(self) -> Session:
        with self._lock:
            if self._session is None:
                raise RuntimeError("the aws test double was used before Configure")
            return self._session

    # --- resources ------------------------------------------------------------------------

    @rpc("Check")
    def Check(self, request: provider_pb2.CheckRequest, context: Any):
        kind = resource_type(_type_of(request))
        news = wire.from_struct(request.news)
        olds = wire.from_struct(request.olds)
        checked, failures = kind.check(news, olds, _name_of(request), request.randomSeed)
        return provider_pb2.CheckResponse(
            inputs=wire.to_struct(checked),
            failures=[provider_pb2.CheckFailure(property=k, reason=r) for k, r in failures],
        )

    @rpc("Diff")
    def Diff(self, request: provider_pb2.DiffRequest, context: Any):
        kind = resource_type(_type_of(request))
        old_outputs = wire.from_struct(request.olds)
        olds = wire.from_struct(request.old_inputs) if request.HasField("old_inputs") else {}
        if not olds:
            olds = {k: v for k, v in old_outputs.items() if k in kind.inputs}
        news = wire.from_struct(request.news)
        ignore = {path.split(".")[0].split("[")[0] for path in request.ignoreChanges}
        changes, delete_first = kind.diff(self.session(), olds, news, old_outputs, ignore)
        if not changes:
            return provider_pb2.DiffResponse(changes=provider_pb2.DiffResponse.DIFF_NONE)
        return provider_pb2.DiffResponse(
            changes=provider_pb2.DiffResponse.DIFF_SOME,
            replaces=sorted(k for k, (_, replace) in changes.items() if replace),
            diffs=sorted(changes),
            detailedDiff={
                k: provider_pb2.PropertyDiff(kind=_KINDS[c], inputDiff=True)
                for k, c in changes.items()
            },
            hasDetailedDiff=True,
            deleteBeforeReplace=delete_first,
        )

    @rpc("Create")
    def Create(self, request: provider_pb2.CreateRequest, context: Any):
        kind = resource_type(_type_of(request))
        inputs = wire.from_struct(request.properties)
        if request.preview:
            return provider_pb2.CreateResponse(properties=request.properties)
        session = self.session()
        plain = wire.unwrap(inputs)
        id_ = kind.create(session, plain)
        LOG.info("created %s %s", kind.token, id_)
        outputs = self._observe(kind, session, id_, inputs, "Create")
        return provider_pb2.CreateResponse(id=id_, properties=wire.to_struct(outputs))

    @rpc("Read")
    def Read(self, request: provider_pb2.ReadRequest, context: Any):
        kind = resource_type(_type_of(request))
        session = self.session()
        state = wire.from_struct(request.properties)
        inputs = wire.from_struct(request.inputs)
        lookup = inputs or {k: v for k, v in state.items() if k in kind.inputs}
        observed = kind.read(session, request.id, wire.unwrap(lookup))
        if observed is None:
            LOG.info("read %s %s: gone", kind.token, request.id)
            return provider_pb2.ReadResponse(id="")
        outputs = kind.outputs(session, request.id, lookup, observed)
        if inputs:
            new_inputs = _refreshed_inputs(kind, inputs, wire.unwrap(outputs))
        else:
            new_inputs = kind.inputs_from_state(session, wire.unwrap(outputs))
        return provider_pb2.ReadResponse(
            id=request.id,
            properties=wire.to_struct(outputs),
            inputs=wire.to_struct(new_inputs),
        )

    @rpc("Update")
    def Update(self, request: provider_pb2.UpdateRequest, context: Any):
        kind = resource_type(_type_of(request))
        news = wire.from_struct(request.news)
        if request.preview:
            # Like a bridged provider's planned state: computed outputs that the update does not
            # touch (arn, id, ...) keep their values, so dependents preview with known inputs.
            planned = {**wire.from_struct(request.olds), **news}
            if "tags" in news:
                session = self.session()
                planned["tagsAll"] = {**session.default_tags, **(wire.unwrap(news["tags"]) or {})}
            return provider_pb2.UpdateResponse(properties=wire.to_struct(planned))
        session = self.session()
        olds = wire.from_struct(request.old_inputs) if request.HasField("old_inputs") else {}
        if not olds:
            olds = {k: v for k, v in wire.from_struct(request.olds).items() if k in kind.inputs}
        kind.update(session, request.id, wire.unwrap(olds), wire.unwrap(news))
        LOG.info("updated %s %s", kind.token, request.id)
        outputs = self._observe(kind, session, request.id, news, "Update")
        return provider_pb2.UpdateResponse(properties=wire.to_struct(outputs))

    @rpc("Delete")
    def Delete(self, request: provider_pb2.DeleteRequest, context: Any):
        kind = resource_type(_type_of(request))
        state = wire.unwrap(wire.from_struct(request.properties))
        kind.delete(self.session(), request.id, state)
        LOG.info("deleted %s %s", kind.token, request.id)
        return empty_pb2.Empty()

    @rpc("Invoke")
    def Invoke(self, request: provider_pb2.InvokeRequest, context: Any):
        result = invoke(self.session(), request.tok, wire.from_struct(request.args))
        return provider_pb2.InvokeResponse(**{"return": wire.to_struct(result)})

    @staticmethod
    def _observe(
        kind: ResourceType, session: Session, id_: str, inputs: dict[str, Any], operation: str
    ) -> dict[str, Any]:
        observed = kind.read(session, id_, wire.unwrap(inputs))
        if observed is None:
            raise RuntimeError(f"{kind.token} {id_} is missing right after {operation}")
        return kind.outputs(session, id_, inputs, observed)


def _refreshed_inputs(
    kind: ResourceType, inputs: dict[str, Any], outputs: dict[str, Any]
) -> dict[str, Any]:
    """Old inputs with the values AWS now holds (as upstream's refresh does), secrets kept."""
    result = dict(inputs)
    for key, value in inputs.items():
        if key == wire.DEFAULTS_KEY or key not in outputs or wire.is_asset(wire.unwrap(value)):
            continue
        if not equivalent(wire.unwrap(value), outputs[key]):
            result[key] = wire.secret(outputs[key]) if wire.is_secret(value) else outputs[key]
    return result
