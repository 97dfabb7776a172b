"""The ``pulumirpc.ResourceProvider`` servicer of the command test double.

Configure answers ``acceptSecrets=True`` (secrets arrive and leave as signatured wire objects, so
echoed inputs keep their secretness) and ``supportsPreview=False`` (the engine never asks for a
preview Create/Update; it shows the outputs as unknown itself). Requests for any type other than
``command:local:Command`` fail with ``INVALID_ARGUMENT`` naming the type; a failed command fails
the RPC with ``UNKNOWN`` and upstream's message, and a failed Create returns no id, so no state.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from devkit.offline import wire
from tests.engine.doubles.command_provider import LOCAL_COMMAND, VERSION
from tests.engine.doubles.command_provider.diff import diff_command
from tests.engine.doubles.command_provider.engine_log import EngineLog
from tests.engine.doubles.command_provider.inputs import (
    OUTPUTS,
    SUPPORTED,
    check_inputs,
    schema_json,
    unknown_config_keys,
)
from tests.engine.doubles.command_provider.runner import CommandFailed, Runner, RunSpec

_DOUBLE = "the pulumi-resource-command test double (tests/engine/doubles/command_provider)"
_KINDS = {
    name: getattr(provider_pb2.PropertyDiff, name)
    for name in ("ADD", "ADD_REPLACE", "DELETE", "DELETE_REPLACE", "UPDATE", "UPDATE_REPLACE")
}


def resource_type(urn: str, type_: str = "") -> str:
    """The resource type of a request (its ``type`` field, else the URN's last type segment)."""
    if type_:
        return type_
    parts = urn.split("::")
    return parts[2].split("$")[-1] if len(parts) >= 4 else ""


def resource_name(urn: str, name: str = "") -> str:
    return name or urn.split("::")[-1]


def _plain(value: Any) -> Any:
    return wire.unwrap_secrets(value)


def run_spec(command_key: str, props: Mapping[str, Any], previous: Mapping[str, Any]) -> RunSpec:
    """The run of ``props[command_key]`` with the inputs of ``props`` and outputs of ``previous``."""
    plain = {k: _plain(v) for k, v in props.items()}
    return RunSpec(
        command=plain[command_key],
        interpreter=plain.get("interpreter") or None,
        dir=plain.get("dir"),
        environment=plain.get("environment"),
        stdin=plain.get("stdin"),
        add_previous_output_in_env=plain.get("addPreviousOutputInEnv"),
        logging=plain.get("logging"),
        previous_stdout=_plain(previous.get("stdout")) or "",
        previous_stderr=_plain(previous.get("stderr")) or "",
        command_is_secret=wire.is_secret(props.get(command_key)),
    )


def _timeout(value: float) -> float | None:
    return value if value and value > 0 else None


class CommandProvider(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, engine_address: str | None = None, runner: Runner | None = None):
        self.runner = runner or Runner()
        self.engine_log = EngineLog(engine_address)

    # ---------------------------------------------------------------- plugin and configuration
    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=VERSION)

    def GetSchema(self, request, context):
        return provider_pb2.GetSchemaResponse(schema=schema_json())

    def CheckConfig(self, request, context):
        news = wire.from_struct(request.news)
        failures = [
            provider_pb2.CheckFailure(
                property=key,
                reason=(
                    f"provider config '{key}' is not supported: pulumi-resource-command has no "
                    "configuration; only 'version' is expected"
                ),
            )
            for key in unknown_config_keys(news)
        ]
        return provider_pb2.CheckResponse(inputs=request.news, failures=failures)

    def DiffConfig(self, request, context):
        same = wire.from_struct(request.olds) == wire.from_struct(request.news)
        changes = (
            provider_pb2.DiffResponse.DIFF_NONE if same else provider_pb2.DiffResponse.DIFF_SOME
        )
        return provider_pb2.DiffResponse(changes=changes)

    def Configure(self, request, context):
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, supportsPreview=False, acceptResources=False, acceptOutputs=False
        )

    def Cancel(self, request, context):
        self.runner.kill_all()
        return empty_pb2.Empty()

    # ---------------------------------------------------------------- refused surface
    def _require_local_command(self, request, context) -> None:
        kind = resource_type(request.urn, getattr(request, "type", ""))
        if kind != LOCAL_COMMAND:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown resource type '{kind}': {_DOUBLE} implements only {LOCAL_COMMAND}",
            )

    def Invoke(self, request, context):
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Unknown Invoke token '{request.tok}': {_DOUBLE} implements no functions "
            f"(only the resource {LOCAL_COMMAND})",
        )

    def StreamInvoke(self, request, context):
        self.Invoke(request, context)

    def Call(self, request, context):
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Unknown method '{request.tok}': {_DOUBLE} implements no methods",
        )

    def Construct(self, request, context):
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"unknown component type '{request.type}': {_DOUBLE} implements no components",
        )

    # ---------------------------------------------------------------- command:local:Command
    def Check(self, request, context):
        self._require_local_command(request, context)
        checked, failures = check_inputs(wire.from_struct(request.news))
        return provider_pb2.CheckResponse(
            inputs=wire.to_struct(checked),
            failures=[provider_pb2.CheckFailure(property=p, reason=r) for p, r in failures],
        )

    def Diff(self, request, context):
        self._require_local_command(request, context)
        diff = diff_command(
            wire.from_struct(request.olds),
            wire.from_struct(request.news),
            list(request.ignoreChanges),
        )
        return provider_pb2.DiffResponse(
            changes=(
                provider_pb2.DiffResponse.DIFF_SOME
                if diff.has_changes
                else provider_pb2.DiffResponse.DIFF_NONE
            ),
            replaces=diff.replaces,
            diffs=diff.changed,
            detailedDiff={
                path: provider_pb2.PropertyDiff(kind=_KINDS[kind], inputDiff=False)
                for path, kind in diff.detailed.items()
            },
            hasDetailedDiff=True,
            deleteBeforeReplace=False,
        )

    def _run(self, key: str, props, previous, urn: str, timeout: float, context) -> dict[str, str]:
        try:
            result = self.runner.run(
                run_spec(key, props, previous),
                timeout=_timeout(timeout),
                log_line=self.engine_log.for_urn(urn),
            )
        except CommandFailed as exc:
            context.abort(grpc.StatusCode.UNKNOWN, str(exc))
        return {"stdout": result.stdout, "stderr": result.stderr}

    def Create(self, request, context):
        self._require_local_command(request, context)
        props = wire.from_struct(request.properties)
        # Upstream's id: resource.NewUniqueHex(name, 8, 0), the name plus 8 random hex digits.
        rid = resource_name(request.urn, request.name) + secrets.token_hex(4)
        if request.preview:
            outputs = {**props, **{k: wire.UNKNOWN for k in OUTPUTS}}
        elif props.get("create") is None:
            outputs = {**props, "stdout": "", "stderr": ""}
        else:
            outputs = {
                **props,
                **self._run("create", props, {}, request.urn, request.timeout, context),
            }
        return provider_pb2.CreateResponse(id=rid, properties=wire.to_struct(outputs))

    def Update(self, request, context):
        self._require_local_command(request, context)
        olds = wire.from_struct(request.olds)
        news = wire.from_struct(request.news)
        previous = {k: _plain(olds.get(k)) or "" for k in OUTPUTS}
        # Update runs `update`, else `create`; with neither it only records the new inputs.
        key = "update" if news.get("update") is not None else "create"
        if request.preview or news.get(key) is None:
            return provider_pb2.UpdateResponse(properties=wire.to_struct({**news, **previous}))
        outputs = self._run(key, news, olds, request.urn, request.timeout, context)
        return provider_pb2.UpdateResponse(properties=wire.to_struct({**news, **outputs}))

    def Delete(self, request, context):
        self._require_local_command(request, context)
        props = wire.from_struct(request.properties)
        if props.get("delete") is not None:
            self._run("delete", props, props, request.urn, request.timeout, context)
        return empty_pb2.Empty()

    def Read(self, request, context):
        self._require_local_command(request, context)
        props = wire.from_struct(request.properties)
        missing = [k for k in OUTPUTS if k not in props]
        if missing:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Missing required field '{missing[0]}' on 'local.CommandOutputs': "
                f"{LOCAL_COMMAND} has no live state to read, so it cannot be imported "
                f"({_DOUBLE})",
            )
        unknown = sorted(k for k in props if k not in SUPPORTED and k not in OUTPUTS)
        if unknown:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Unrecognized field '{unknown[0]}' on 'local.CommandOutputs' ({_DOUBLE})",
            )
        return provider_pb2.ReadResponse(
            id=request.id, properties=request.properties, inputs=request.inputs
        )
