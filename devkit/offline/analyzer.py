"""Drive a CrossGuard policy pack over the real ``Analyzer`` gRPC protocol, as the engine does.

The engine launches a Python pack as ``python -u -m pulumi.policy <engineAddr> <packDir>`` with the
pack directory as cwd and ``PULUMI_CONFIG``/``PULUMI_PROJECT``/``PULUMI_STACK``/
``PULUMI_ORGANIZATION``/``PULUMI_DRY_RUN`` in the environment; the pack's ``PolicyPack(...)`` prints
its port and serves. :class:`PolicyPack` then replays the engine's sequence: ``Handshake`` (not
implemented by pulumi_policy), ``ConfigureStack``, ``GetAnalyzerInfo``, ``GetPluginInfo``, the
engine-side config reconciliation (schema defaults -> pack ``initialConfig`` -> user config, then
JSON-schema validation; an invalid config raises :class:`PolicyConfigError` before any Analyze),
``Configure``, then per resource ``Remediate`` + ``Analyze`` and finally ``AnalyzeStack``::

    from devkit.offline.analyzer import PolicyPack
    from devkit.offline.evaluate import evaluate_program

    graph = evaluate_program("dev", preview=True)
    with PolicyPack.for_graph("policies", graph, policy_config="policies/config/dev.json") as pack:
        diags = pack.run(graph)
    assert not [d for d in diags if d.enforcement_level == "mandatory"]

Properties are marshalled with the engine's analyzer options: unknowns and secrets kept, internal
``__*`` keys dropped, resource references / output values downgraded.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from devkit.offline import wire
from devkit.offline.config import REPO_ROOT
from devkit.offline.provider import STARTUP_TIMEOUT, _Plugin, default_python
from devkit.offline.records import ProgramGraph, ResourceRecord

ENFORCEMENT_LEVELS = ("advisory", "mandatory", "remediate", "disabled")
# pulumirpc.EnforcementLevel: ADVISORY=0, MANDATORY=1, DISABLED=2, REMEDIATE=3 (note the order).
_LEVEL_TO_PROTO = {"advisory": 0, "mandatory": 1, "disabled": 2, "remediate": 3}
_PROTO_TO_LEVEL = {v: k for k, v in _LEVEL_TO_PROTO.items()}
_SEVERITIES = {0: "", 1: "low", 2: "medium", 3: "high", 4: "critical"}


class PolicyConfigError(Exception):
    """The policy config does not parse or does not validate against a policy's schema.

    ``errors`` lists ``"<policy>: <problem>"`` strings, as ``pulumi preview`` prints them.
    """

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("invalid policy pack config: " + "; ".join(self.errors))


class AnalyzerError(Exception):
    """An Analyzer RPC failed (``code`` is the ``grpc.StatusCode``)."""

    def __init__(self, code: Any, details: str, method: str = ""):
        self.code = code
        self.details = details or ""
        super().__init__(f"{method}: {getattr(code, 'name', code)}: {self.details}")


@dataclasses.dataclass
class Diagnostic:
    policy_name: str
    #: ``"advisory"``, ``"mandatory"``, ``"remediate"`` or ``"disabled"``.
    enforcement_level: str
    #: The offending resource's URN; for ``Analyze`` the analyzed resource when the policy named
    #: none (as the engine attributes it); ``""`` for stack-level diagnostics without a URN.
    urn: str
    message: str
    description: str
    policy_pack_name: str = ""
    policy_pack_version: str = ""
    severity: str = ""
    #: ``"analyze"``, ``"analyzeStack"`` or ``"remediate"``.
    source: str = "analyze"


@dataclasses.dataclass
class Remediation:
    policy_name: str
    urn: str
    description: str
    properties: dict[str, Any] | None
    diagnostic: str


# ---------------------------------------------------------------------------------------------
# Engine-side policy config handling (pkg/resource/analyzer/config.go)


def parse_policy_config(raw: Mapping[str, Any] | str | Path | None) -> dict[str, dict[str, Any]]:
    """``--policy-pack-config`` JSON (a mapping, JSON text or a file path) to ``{policy: {level, props}}``."""
    if raw is None:
        return {}
    if isinstance(raw, Path) or (isinstance(raw, str) and not raw.lstrip().startswith("{")):
        text = Path(raw).read_text(encoding="utf-8")
        raw = json.loads(text) if text.strip() else {}
    elif isinstance(raw, str):
        raw = json.loads(raw)
    result: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for key, value in dict(raw).items():
        level, props = "", None
        if isinstance(value, str):
            if value not in ENFORCEMENT_LEVELS:
                errors.append(
                    f"parsing enforcement level for {key!r}: {value!r} is not a valid enforcement level"
                )
                continue
            level = value
        elif isinstance(value, Mapping):
            props = dict(value)
            if "enforcementLevel" in props:
                level = props.pop("enforcementLevel")
                if not isinstance(level, str) or level not in ENFORCEMENT_LEVELS:
                    errors.append(
                        f"parsing enforcement level for {key!r}: {level!r} is not a valid enforcement level"
                    )
                    continue
            props = props or None
        else:
            errors.append(
                f"parsing {key!r}: {value!r} is not a valid value; must be a string or object"
            )
            continue
        if not level and not props:
            continue
        result[key] = {"enforcementLevel": level, "properties": props}
    if errors:
        raise PolicyConfigError(errors)
    return result


def _apply_config(result: dict[str, dict[str, Any]], given: Mapping[str, dict[str, Any]]) -> None:
    everything = given.get("all")
    if everything and everything.get("enforcementLevel"):
        for value in result.values():
            value["enforcementLevel"] = everything["enforcementLevel"]
    for policy, cfg in given.items():
        current = result.get(policy, {"enforcementLevel": "", "properties": None})
        level = cfg.get("enforcementLevel") or current["enforcementLevel"]
        props = current["properties"]
        if cfg.get("properties") and props is None:
            props = {}
        for k, v in (cfg.get("properties") or {}).items():
            props[k] = v
        result[policy] = {"enforcementLevel": level, "properties": props}


def reconcile_policy_config(
    policies: list[dict[str, Any]],
    initial_config: Mapping[str, dict[str, Any]] | None,
    config: Mapping[str, dict[str, Any]] | None,
) -> dict[str, dict[str, Any]]:
    """Defaults from schemas, then the pack's initial config, then the user's; then validate."""
    import jsonschema

    result: dict[str, dict[str, Any]] = {}
    for policy in policies:
        props = None
        for key, schema in (policy.get("configSchema", {}).get("properties") or {}).items():
            if isinstance(schema, Mapping) and "default" in schema:
                props = props or {}
                props[key] = copy.deepcopy(schema["default"])
        result[policy["name"]] = {
            "enforcementLevel": policy["enforcementLevel"],
            "properties": props,
        }
    if initial_config:
        _apply_config(result, initial_config)
    if config:
        _apply_config(result, config)

    errors: list[str] = []
    for policy in policies:
        schema_info = policy.get("configSchema")
        if not schema_info or not (schema_info.get("properties") or schema_info.get("required")):
            continue
        schema: dict[str, Any] = {"type": "object"}
        if schema_info.get("properties"):
            schema["properties"] = schema_info["properties"]
        if schema_info.get("required"):
            schema["required"] = schema_info["required"]
        props = (result.get(policy["name"]) or {}).get("properties") or {}
        validator = jsonschema.Draft7Validator(schema)
        for err in sorted(validator.iter_errors(props), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in err.absolute_path)
            errors.append(f"{policy['name']}: {where + ': ' if where else ''}{err.message}")
    if errors:
        raise PolicyConfigError(errors)
    return result


# ---------------------------------------------------------------------------------------------
# The driver


def _struct_json(s: Any) -> dict[str, Any]:
    return wire.from_struct(s)


#: PolicyPack's keyword arguments that a started pack can take again (``reconfigure``); the rest
#: (the directory, the interpreter, the environment, the timeout) need a new process.
RECONFIGURABLE = (
    "project",
    "stack",
    "config",
    "dry_run",
    "policy_config",
    "organization",
    "secret_keys",
    "tags",
)
_ATTR = {"policy_config": "user_config"}


def graph_settings(graph: ProgramGraph) -> dict[str, Any]:
    """The per-run settings the engine gives a pack for ``graph``'s stack and preview mode."""
    return {
        "project": graph.project,
        "stack": graph.stack,
        "config": graph.config,
        "secret_keys": graph.secret_keys,
        "dry_run": graph.preview,
        "organization": graph.organization,
    }


class PolicyPack:
    """Context manager around a policy pack process speaking ``Analyzer`` gRPC."""

    def __init__(
        self,
        pack_dir: Path | str,
        *,
        project: str = "lambda-microvms",
        stack: str = "dev",
        config: Mapping[str, str] | None = None,
        dry_run: bool = False,
        policy_config: Mapping[str, Any] | str | Path | None = None,
        organization: str = "organization",
        secret_keys: Iterable[str] = (),
        tags: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        python: str | None = None,
        rpc_timeout: float = 60.0,
    ):
        pack_dir = Path(pack_dir)
        if not pack_dir.is_absolute():
            pack_dir = (REPO_ROOT / pack_dir) if not pack_dir.exists() else pack_dir.resolve()
        self.pack_dir = pack_dir
        self.project = project
        self.stack = stack
        self.config = {
            k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()
        }
        self.secret_keys = list(secret_keys)
        self.dry_run = dry_run
        self.organization = organization
        self.tags = dict(tags or {})
        self.extra_env = dict(env or {})
        self.python = python or default_python(REPO_ROOT)
        self.rpc_timeout = rpc_timeout
        self.user_config = parse_policy_config(policy_config)
        self.info: dict[str, Any] = {}
        self.plugin_info: dict[str, Any] = {}
        self.policy_config: dict[str, dict[str, Any]] = {}
        self.remediations: list[Remediation] = []
        self.not_applicable: list[dict[str, str]] = []
        self.pack_version = ""
        self._plugin: _Plugin | None = None
        self._channel = None
        self._stub = None

    @classmethod
    def for_graph(
        cls, pack_dir: Path | str, graph: ProgramGraph, *, policy_config=None, **kwargs
    ) -> PolicyPack:
        """A pack configured like the engine would for ``graph``'s stack and preview mode."""
        return cls(pack_dir, **graph_settings(graph), policy_config=policy_config, **kwargs)

    # Lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> PolicyPack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        import grpc
        from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

        env = dict(os.environ)
        env.update(
            {
                "PULUMI_CONFIG": json.dumps(self.config),
                "PULUMI_PROJECT": self.project,
                "PULUMI_STACK": self.stack,
                "PULUMI_ORGANIZATION": self.organization,
                "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        self._plugin = _Plugin(
            [self.python, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(self.pack_dir)],
            cwd=self.pack_dir,
            env=env,
            name=f"policy pack {self.pack_dir}",
        )
        try:
            self._channel = grpc.insecure_channel(f"127.0.0.1:{self._plugin.port}")
            grpc.channel_ready_future(self._channel).result(timeout=STARTUP_TIMEOUT)
            self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
            try:
                self._stub.Handshake(
                    analyzer_pb2.AnalyzerHandshakeRequest(
                        engine_address="127.0.0.1:1",
                        root_directory=str(self.pack_dir),
                        program_directory=str(self.pack_dir),
                    ),
                    timeout=self.rpc_timeout,
                )
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise AnalyzerError(exc.code(), exc.details(), "Handshake") from None
            self._configure_run()
        except BaseException:
            self.stop()
            raise

    def _configure_run(self) -> None:
        """What the engine sends a started pack before each run: the stack, then the policy config."""
        from google.protobuf import empty_pb2
        from pulumi.runtime.proto import analyzer_pb2

        self.remediations = []
        self.not_applicable = []
        self._call(
            "ConfigureStack",
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=self.stack,
                project=self.project,
                organization=self.organization,
                dry_run=self.dry_run,
                config=self.config,
                config_secret_keys=self.secret_keys,
                tags=self.tags,
            ),
        )
        if not self.info:
            self.info = _info_to_dict(self._call("GetAnalyzerInfo", empty_pb2.Empty()))
            self.plugin_info = {"version": self._call("GetPluginInfo", empty_pb2.Empty()).version}
        self.pack_version = _yaml_version(self.pack_dir) or self.info.get("version", "")
        self.policy_config = reconcile_policy_config(
            self.info["policies"], self.info.get("initialConfig"), self.user_config
        )
        if self.info.get("supportsConfig"):
            self._call(
                "Configure",
                analyzer_pb2.ConfigureAnalyzerRequest(
                    policyConfig={
                        name: analyzer_pb2.PolicyConfig(
                            enforcementLevel=_LEVEL_TO_PROTO.get(
                                cfg["enforcementLevel"] or "advisory", 0
                            ),
                            properties=wire.to_struct(cfg.get("properties") or {}),
                        )
                        for name, cfg in self.policy_config.items()
                    }
                ),
            )

    def reconfigure(self, **settings: Any) -> PolicyPack:
        """Point a started pack at another stack, mode or policy config, as the engine's next run
        would (``ConfigureStack`` then ``Configure``), without starting a new process.

        ``settings`` are :class:`PolicyPack`'s keyword arguments that do not change the process:
        ``project``, ``stack``, ``config``, ``dry_run``, ``policy_config``, ``organization``,
        ``secret_keys``, ``tags``; those not given take their defaults, as for a new pack. A
        policy config the pack refuses raises :class:`PolicyConfigError` as :meth:`start` does.
        """
        unknown = set(settings) - set(RECONFIGURABLE)
        if unknown:
            raise TypeError(f"reconfigure: not a per-run setting: {sorted(unknown)}")
        fresh = PolicyPack(self.pack_dir, **settings)
        for name in RECONFIGURABLE:
            setattr(self, _ATTR.get(name, name), getattr(fresh, _ATTR.get(name, name)))
        self._configure_run()
        return self

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._plugin is not None:
            self._plugin.stop()

    @property
    def stderr(self) -> str:
        return self._plugin.stderr if self._plugin else ""

    @property
    def stdout(self) -> str:
        return self._plugin.stdout if self._plugin else ""

    def _call(self, method: str, request: Any) -> Any:
        import grpc

        if self._stub is None:
            raise RuntimeError("PolicyPack is not started (use it as a context manager)")
        try:
            return getattr(self._stub, method)(request, timeout=self.rpc_timeout)
        except grpc.RpcError as exc:
            raise AnalyzerError(exc.code(), exc.details(), method) from None

    # Messages --------------------------------------------------------------------------
    @staticmethod
    def _props(wire_props: Mapping[str, Any] | None) -> Any:
        return wire.to_struct(
            wire.engine_remarshal(
                dict(wire_props or {}),
                keep_unknowns=True,
                keep_secrets=True,
                skip_internal_keys=True,
            )
        )

    @staticmethod
    def _options(record: ResourceRecord) -> Any:
        from pulumi.runtime.proto import analyzer_pb2

        opts = record.options or {}
        timeouts = opts.get("customTimeouts") or {}
        kwargs: dict[str, Any] = {
            "protect": bool(opts.get("protect", False)),
            "ignoreChanges": list(opts.get("ignoreChanges") or []),
            "deleteBeforeReplace": bool(opts.get("deleteBeforeReplace", False)),
            "deleteBeforeReplaceDefined": bool(opts.get("deleteBeforeReplaceDefined", False)),
            "additionalSecretOutputs": list(opts.get("additionalSecretOutputs") or []),
            "aliases": [a for a in (opts.get("aliases") or []) if isinstance(a, str)],
            "parent": record.parent,
        }
        if timeouts:
            kwargs["customTimeouts"] = analyzer_pb2.AnalyzerResourceOptions.CustomTimeouts(
                create=_seconds(timeouts.get("create")),
                update=_seconds(timeouts.get("update")),
                delete=_seconds(timeouts.get("delete")),
            )
        return analyzer_pb2.AnalyzerResourceOptions(**kwargs)

    def _provider(self, record: ResourceRecord, graph: ProgramGraph | None) -> Any:
        from pulumi.runtime.proto import analyzer_pb2

        prov = record.provider_record
        if prov is None and graph is not None and record.provider:
            try:
                prov = graph.by_urn(record.provider_urn)
            except KeyError:
                prov = None
        if prov is None:
            return None
        return analyzer_pb2.AnalyzerProviderResource(
            type=prov.type, name=prov.name, urn=prov.urn, properties=self._props(prov.inputs)
        )

    def _diagnostics(self, response: Any, source: str, default_urn: str) -> list[Diagnostic]:
        out = []
        for d in response.diagnostics:
            out.append(
                Diagnostic(
                    policy_name=d.policyName,
                    enforcement_level=_PROTO_TO_LEVEL[d.enforcementLevel],
                    urn=d.urn or default_urn,
                    message=d.message,
                    description=d.description,
                    policy_pack_name=d.policyPackName,
                    policy_pack_version=self.pack_version or d.policyPackVersion,
                    severity=_SEVERITIES.get(d.severity, ""),
                    source=source,
                )
            )
        for na in response.not_applicable:
            self.not_applicable.append(
                {"policy": na.policy_name, "reason": na.reason, "source": source}
            )
        return out

    # Analysis --------------------------------------------------------------------------
    def analyze(
        self, record: ResourceRecord, graph: ProgramGraph | None = None
    ) -> list[Diagnostic]:
        """``Remediate`` then ``Analyze`` one resource (its checked inputs), as the engine does.

        Remediated properties replace the inputs for the ``Analyze`` call (and are recorded in
        ``self.remediations``).
        """
        from pulumi.runtime.proto import analyzer_pb2

        props = dict(record.inputs)
        common = {
            "type": record.type,
            "urn": record.urn,
            "name": record.name,
            "options": self._options(record),
        }
        provider = self._provider(record, graph)
        if provider is not None:
            common["provider"] = provider
        diagnostics: list[Diagnostic] = []
        rem = self._call(
            "Remediate", analyzer_pb2.AnalyzeRequest(properties=self._props(props), **common)
        )
        for r in rem.remediations:
            new_props = _struct_json(r.properties) if r.HasField("properties") else None
            self.remediations.append(
                Remediation(r.policyName, record.urn, r.description, new_props, r.diagnostic)
            )
            if new_props:
                props = new_props
            if r.diagnostic:
                diagnostics.append(
                    Diagnostic(
                        policy_name=r.policyName,
                        enforcement_level="advisory",
                        urn=record.urn,
                        message=r.diagnostic,
                        description=r.description,
                        policy_pack_name=r.policyPackName,
                        policy_pack_version=self.pack_version or r.policyPackVersion,
                        source="remediate",
                    )
                )
        for na in rem.not_applicable:
            self.not_applicable.append(
                {"policy": na.policy_name, "reason": na.reason, "source": "remediate"}
            )
        resp = self._call(
            "Analyze", analyzer_pb2.AnalyzeRequest(properties=self._props(props), **common)
        )
        diagnostics.extend(self._diagnostics(resp, "analyze", record.urn))
        return diagnostics

    def analyze_stack(
        self, records: Iterable[ResourceRecord], graph: ProgramGraph | None = None
    ) -> list[Diagnostic]:
        """``AnalyzeStack`` with every resource's outputs, parent and dependencies."""
        from pulumi.runtime.proto import analyzer_pb2

        resources = []
        for rec in records:
            kwargs: dict[str, Any] = {
                "type": rec.type,
                "urn": rec.urn,
                "name": rec.name,
                "properties": self._props(rec.outputs),
                "options": self._options(rec),
                "parent": rec.parent,
                "dependencies": list(rec.dependencies),
                "propertyDependencies": {
                    k: analyzer_pb2.AnalyzerPropertyDependencies(urns=list(v))
                    for k, v in rec.property_dependencies.items()
                    if v
                },
            }
            provider = self._provider(rec, graph)
            if provider is not None:
                kwargs["provider"] = provider
            resources.append(analyzer_pb2.AnalyzerResource(**kwargs))
        resp = self._call("AnalyzeStack", analyzer_pb2.AnalyzeStackRequest(resources=resources))
        return self._diagnostics(resp, "analyzeStack", "")

    def run(self, graph_or_records: ProgramGraph | Iterable[ResourceRecord]) -> list[Diagnostic]:
        """Analyze each resource in registration order, then the stack, as a deployment does."""
        graph = graph_or_records if isinstance(graph_or_records, ProgramGraph) else None
        records = list(graph.resources if graph is not None else graph_or_records)
        diagnostics: list[Diagnostic] = []
        for rec in records:
            diagnostics.extend(self.analyze(rec, graph))
        diagnostics.extend(self.analyze_stack(records, graph))
        return diagnostics


class PackPool:
    """Started packs reused across analyses: one process per (directory, interpreter, extra
    environment, timeout), pointed at each caller's stack, mode and policy config by
    :meth:`PolicyPack.reconfigure` (what the engine itself sends a pack before a run).

    Starting a pack costs about half a second of CPU (a Python process importing the SDK and the
    pack); a policy gate that judges several modes or stacks, and the policy tables of the test
    suite, start one per process key instead of one per question.
    """

    def __init__(self) -> None:
        self._packs: dict[str, PolicyPack] = {}

    def get(self, pack_dir: Path | str, **settings: Any) -> PolicyPack:
        """A started pack for ``settings`` (:class:`PolicyPack`'s keyword arguments)."""
        per_run = {k: v for k, v in settings.items() if k in RECONFIGURABLE}
        per_process = {k: v for k, v in settings.items() if k not in RECONFIGURABLE}
        wanted = PolicyPack(pack_dir, **per_process)
        key = json.dumps(
            [str(wanted.pack_dir), wanted.python, wanted.extra_env, wanted.rpc_timeout],
            sort_keys=True,
        )
        pack = self._packs.get(key)
        if pack is None:
            pack = PolicyPack(pack_dir, **settings)
            pack.start()
            self._packs[key] = pack
            return pack
        return pack.reconfigure(**per_run)

    def for_graph(
        self, pack_dir: Path | str, graph: ProgramGraph, *, policy_config=None, **settings: Any
    ) -> PolicyPack:
        """:meth:`get` configured like the engine would for ``graph``'s stack and preview mode."""
        return self.get(pack_dir, **graph_settings(graph), policy_config=policy_config, **settings)

    def close(self) -> None:
        for pack in self._packs.values():
            pack.stop()
        self._packs.clear()

    def __enter__(self) -> PackPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _seconds(value: Any) -> float:
    """``customTimeouts`` strings like ``"10m"`` (the SDK's form) as seconds."""
    if not value:
        return 0.0
    if isinstance(value, (int, float)):
        return float(value)
    total, num = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for ch in str(value):
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in units and num:
            total += float(num) * units[ch]
            num = ""
    return total + (float(num) if num else 0.0)


def _info_to_dict(info: Any) -> dict[str, Any]:
    policies = []
    for p in info.policies:
        schema = {
            "properties": _struct_json(p.configSchema.properties),
            "required": list(p.configSchema.required),
        }
        policies.append(
            {
                "name": p.name,
                "displayName": p.displayName,
                "description": p.description,
                "enforcementLevel": _PROTO_TO_LEVEL[p.enforcementLevel],
                "configSchema": schema,
                "policyType": {1: "resource", 2: "stack"}.get(p.policy_type, ""),
                "severity": _SEVERITIES.get(p.severity, ""),
                "tags": list(p.tags),
                "remediationSteps": p.remediation_steps,
                "url": p.url,
            }
        )
    initial = {}
    for name, cfg in info.initialConfig.items():
        props = _struct_json(cfg.properties) or None
        initial[name] = {
            "enforcementLevel": _PROTO_TO_LEVEL[cfg.enforcementLevel],
            "properties": props,
        }
    return {
        "name": info.name,
        "displayName": info.displayName,
        "version": info.version,
        "supportsConfig": info.supportsConfig,
        "description": info.description,
        "policies": policies,
        "initialConfig": initial,
        "tags": list(info.tags),
    }


def _yaml_version(pack_dir: Path) -> str:
    path = pack_dir / "PulumiPolicy.yaml"
    if not path.is_file():
        return ""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return str(data.get("version") or "")
