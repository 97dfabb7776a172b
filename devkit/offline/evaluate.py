"""Evaluate the real Pulumi program under mocks and return the resource graph the engine would see.

This is the flow of the CLI's ``pulumi-language-python-exec`` with the gRPC resource monitor swapped
for :class:`CapturingMonitor`, a :class:`pulumi.runtime.mocks.MockMonitor` subclass that records the
raw ``RegisterResourceRequest`` / ``ReadResource`` / ``Invoke`` / ``RegisterResourceOutputs`` messages.
The engine's own contributions are emulated: config assembly (``Pulumi.yaml`` defaults, then
``Pulumi.<stack>.yaml``, then overrides; ``secure:`` values become ``<secret:KEY>`` placeholders),
default providers (``pulumi:providers:aws::default_7_51_1`` with the namespace-stripped ``aws:*``
config; ``pulumi:providers:pulumi-python::default`` with the full config), provider references
``<urn>::<id>``, and preview (``dry_run``) where only inputs are known.

Usage::

    from tests.harness.program import evaluate_program

    graph = evaluate_program("dev", preview=True, overrides={"lambda-microvms:memoryMiB": 1024})
    bucket = graph.one("aws:s3/bucket:Bucket")
    assert graph.provider_of(bucket).inputs["region"] == "us-east-1"

Importing this module has no side effects; Pulumi's global state is only touched inside
:func:`evaluate_program`, in a copied :mod:`contextvars` context that is discarded afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import runpy
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.harness import wire

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
ORGANIZATION = "organization"
STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_TYPE_PREFIX = "pulumi:providers:"
DYNAMIC_PACKAGE = "pulumi-python"

# Module-level lock: an evaluation changes cwd, sys.path and os.environ for its duration.
_EVAL_LOCK = threading.RLock()


class ProgramError(Exception):
    """The program failed (for example ``components.config.ConfigError``).

    ``str(error)`` is the program's own message; ``error.error_type`` the exception class name,
    ``error.graph`` what had been registered before the failure, ``__cause__`` the original.
    """

    def __init__(self, message: str, *, error_type: str = "", graph: ProgramGraph | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.graph = graph


@dataclasses.dataclass(frozen=True)
class SecretValue:
    """An override value that the engine would hand the program as a secret config value."""

    value: Any


# ---------------------------------------------------------------------------------------------
# Records


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


# ---------------------------------------------------------------------------------------------
# Config: Pulumi.yaml defaults -> Pulumi.<stack>.yaml -> overrides


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


def _program_main(program_dir: Path, project_doc: Mapping[str, Any]) -> Path:
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


# ---------------------------------------------------------------------------------------------
# URNs, default providers, realistic outputs


def _urn(stack: str, project: str, parent_urn: str, type_: str, name: str) -> str:
    """The engine's URN: the parent's qualified type is prefixed, except for the root Stack."""
    qualified = type_
    if parent_urn:
        parent_qualified = parent_urn.split("::")[2]
        if parent_qualified != STACK_TYPE:
            qualified = f"{parent_qualified}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _package_of(type_token: str) -> str:
    return type_token.split(":", 1)[0]


def default_provider_name(version: str) -> str:
    if not version:
        return "default"
    return "default_" + re.sub(r"[^A-Za-z0-9_]", "_", version)


def default_provider_inputs(
    package: str, version: str, config: Mapping[str, str], secret_keys: Iterable[str]
) -> dict[str, Any]:
    """The inputs the engine gives a default provider, as wire JSON.

    For ``pulumi-python`` (dynamic providers) the whole, namespaced config (``deploy/target.go``);
    otherwise the package's keys with the namespace stripped, plus ``version``. Secret keys wrapped.
    """
    secret_keys = set(secret_keys)
    inputs: dict[str, Any] = {}
    for key, value in config.items():
        ns, _, name = key.partition(":")
        if package == DYNAMIC_PACKAGE:
            out_key = key
        elif ns == package:
            out_key = name
        else:
            continue
        inputs[out_key] = wire.secret(value) if key in secret_keys else value
    if version:
        inputs["version"] = version
    return inputs


def _short_hash(*parts: str, length: int = 7) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


# Property that the AWS provider autonames, per type. Types not listed get no autoname.
_AUTONAME_PROPERTY = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:s3/bucketV2:BucketV2": "bucket",
    "aws:iam/role:Role": "name",
    "aws:iam/policy:Policy": "name",
    "aws:iam/user:User": "name",
    "aws:iam/group:Group": "name",
    "aws:iam/instanceProfile:InstanceProfile": "name",
    "aws:iam/rolePolicy:RolePolicy": "name",
    "aws:cloudwatch/logGroup:LogGroup": "name",
    "aws:lambda/function:Function": "name",
    "aws:ecr/repository:Repository": "name",
    "aws:sqs/queue:Queue": "name",
    "aws:sns/topic:Topic": "name",
    "aws:dynamodb/table:Table": "name",
    "aws:secretsmanager/secret:Secret": "name",
    "aws:ssm/parameter:Parameter": "name",
}

# Types whose ID is their (auto)name.
_ID_IS_NAME = set(_AUTONAME_PROPERTY) - {"aws:iam/rolePolicy:RolePolicy"}

# Types that have no ARN attribute.
_NO_ARN_SUFFIXES = ("Attachment", "Versioning", "Configuration", "Block", "Rule", "Association")


def _plain(value: Any) -> Any:
    """A wire value as the mocks see it: secrets unwrapped, unknowns as None."""
    value = wire.unwrap_secrets(value)
    if wire.is_unknown(value):
        return None
    return value


def aws_arn(
    type_token: str, name: str, resource_id: str, *, region: str, account_id: str
) -> str | None:
    """A plausible ARN for an AWS resource (``None`` for types without one, e.g. attachments)."""
    _, _, rest = type_token.partition(":")
    module_part, _, short = rest.partition(":")
    module = module_part.split("/", 1)[0]
    if short.endswith(_NO_ARN_SUFFIXES) or short in ("RolePolicy", "BucketPolicy"):
        return None
    part = "aws"
    if module == "s3":
        return f"arn:{part}:s3:::{name}"
    if module == "iam":
        kind = {"Role": "role", "Policy": "policy", "User": "user", "Group": "group"}.get(
            short, short[0].lower() + short[1:]
        )
        if short == "InstanceProfile":
            kind = "instance-profile"
        return f"arn:{part}:iam::{account_id}:{kind}/{name}"
    if module == "cloudwatch" and short == "LogGroup":
        return f"arn:{part}:logs:{region}:{account_id}:log-group:{name}"
    if module == "lambda" and short == "Function":
        return f"arn:{part}:lambda:{region}:{account_id}:function:{name}"
    if module in ("sqs", "sns"):
        return f"arn:{part}:{module}:{region}:{account_id}:{name}"
    if module == "ecr" and short == "Repository":
        return f"arn:{part}:ecr:{region}:{account_id}:repository/{name}"
    if module == "kms" and short == "Key":
        return f"arn:{part}:kms:{region}:{account_id}:key/{resource_id}"
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", short).lower()
    return f"arn:{part}:{module}:{region}:{account_id}:{kebab}/{name or resource_id}"


def _default_tags(provider_inputs: Mapping[str, Any]) -> dict[str, str]:
    value = provider_inputs.get("defaultTags")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    tags = value.get("tags") if isinstance(value, Mapping) else None
    return dict(tags) if isinstance(tags, Mapping) else {}


def _policy_document(args: Mapping[str, Any]) -> dict[str, Any]:
    """``aws.iam.get_policy_document`` as the provider renders it (the common shapes)."""
    statements = []
    for st in args.get("statements") or []:
        out: dict[str, Any] = {}
        if st.get("sid"):
            out["Sid"] = st["sid"]
        out["Effect"] = st.get("effect") or "Allow"
        for src, dst in (
            ("actions", "Action"),
            ("notActions", "NotAction"),
            ("resources", "Resource"),
            ("notResources", "NotResource"),
        ):
            vals = st.get(src)
            if vals:
                out[dst] = vals[0] if len(vals) == 1 else sorted(vals, reverse=True)
        for src, dst in (("principals", "Principal"), ("notPrincipals", "NotPrincipal")):
            if st.get(src):
                principal: dict[str, Any] = {}
                for p in st[src]:
                    ids = p.get("identifiers") or []
                    if p.get("type") == "*" and ids == ["*"]:
                        principal = "*"  # type: ignore[assignment]
                        break
                    principal[p["type"]] = ids[0] if len(ids) == 1 else ids
                out[dst] = principal
        if st.get("conditions"):
            cond: dict[str, dict[str, Any]] = {}
            for c in st["conditions"]:
                vals = c.get("values") or []
                cond.setdefault(c["test"], {})[c["variable"]] = vals[0] if len(vals) == 1 else vals
            out["Condition"] = cond
        statements.append(out)
    doc = {"Version": args.get("version") or "2012-10-17", "Statement": statements}
    if args.get("policyId"):
        doc = {"Version": doc["Version"], "Id": args["policyId"], "Statement": statements}
    text = json.dumps(doc, indent=2)
    return {
        "json": text,
        "minifiedJson": json.dumps(doc, separators=(",", ":")),
        "id": _short_hash(text, length=10),
    }


class HarnessMocks:
    """Answers resource registrations and invokes with realistic AWS-shaped values.

    Duck-types :class:`pulumi.runtime.mocks.Mocks`; the monitor passes extra context
    (``urn``, ``region``, ``account_id``, ``preview``) as keyword arguments.
    """

    def __init__(self, *, account_id: str, region: str, preview: bool):
        self.account_id = account_id
        self.region = region
        self.preview = preview

    # Resources -------------------------------------------------------------------------
    def new_resource(
        self,
        args: Any,
        *,
        urn: str = "",
        region: str | None = None,
        read: bool = False,
        provider_inputs: Mapping[str, Any] | None = None,
    ) -> tuple[str, dict]:
        inputs = dict(args.inputs)
        if self.preview and not read:
            # The engine only knows the (checked) inputs during preview; the SDK marks the rest unknown.
            return "", inputs
        if args.typ.startswith(PROVIDER_TYPE_PREFIX):
            return str(uuid.uuid5(uuid.NAMESPACE_URL, urn or args.name)), inputs
        region = region or self.region
        outputs = dict(inputs)
        autoname_prop = _AUTONAME_PROPERTY.get(args.typ)
        suffix = _short_hash(urn or args.name)
        if autoname_prop and not outputs.get(autoname_prop):
            prefix = outputs.get(f"{autoname_prop}Prefix")
            outputs[autoname_prop] = f"{prefix}{suffix}" if prefix else f"{args.name}-{suffix}"
        name = (
            str(outputs.get(autoname_prop) or outputs.get("name") or "")
            if autoname_prop
            else str(outputs.get("name") or "")
        )
        if args.resource_id:
            resource_id = str(args.resource_id)
        elif args.typ in _ID_IS_NAME and name:
            resource_id = name
        elif args.typ.startswith("aws:"):
            resource_id = f"{args.name}-{suffix}"
        else:
            resource_id = f"{args.name}-{suffix}"
        if args.typ.startswith("aws:"):
            outputs.setdefault("id", resource_id)
            arn = aws_arn(
                args.typ,
                name or resource_id,
                resource_id,
                region=region,
                account_id=self.account_id,
            )
            if arn and "arn" not in outputs:
                outputs["arn"] = arn
            if "tags" in outputs and "tagsAll" not in outputs:
                # The provider merges its defaultTags under the resource's own tags.
                outputs["tagsAll"] = {
                    **_default_tags(provider_inputs or {}),
                    **(outputs.get("tags") or {}),
                }
            if args.typ == "aws:iam/role:Role":
                outputs.setdefault("uniqueId", "AROA" + _short_hash(urn, length=17).upper())
                outputs.setdefault("path", "/")
            if args.typ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
                outputs.setdefault("bucketDomainName", f"{name}.s3.amazonaws.com")
                outputs.setdefault("bucketRegionalDomainName", f"{name}.s3.{region}.amazonaws.com")
                outputs.setdefault("region", region)
        if args.typ == "pulumi-python:dynamic/lambda-microvms:MicrovmImage":
            # What our dynamic provider returns after a first successful build.
            image_region = outputs.get("region") or region
            image_name = (
                outputs.get("name") or f"{outputs.get('namePrefix', args.name)}-{suffix[:8]}"
            )
            image_arn = (
                f"arn:aws:lambda:{image_region}:{self.account_id}:microvm-image:{image_name}"
            )
            outputs.setdefault("name", image_name)
            outputs.setdefault("imageArn", image_arn)
            outputs.setdefault("imageVersion", "1.0")
            outputs.setdefault("latestActiveImageVersion", "1.0")
            outputs.setdefault("state", "CREATED")
            resource_id = image_arn
        return resource_id, outputs

    # Invokes ---------------------------------------------------------------------------
    def call(self, args: Any, *, region: str | None = None) -> tuple[dict, list | None]:
        region = (args.args or {}).get("region") or region or self.region
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:aws:iam::{self.account_id}:user/pulumi-harness",
                "userId": "AIDAHARNESS0000000000",
                "id": self.account_id,
            }, None
        if token == "aws:index/getRegion:getRegion":
            return {
                "name": region,
                "region": region,
                "id": region,
                "description": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
            }, None
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }, None
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return _policy_document(args.args or {}), None
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{z}" for z in "abc"]
            return {
                "names": names,
                "zoneIds": [f"use1-az{i}" for i in (1, 2, 3)],
                "id": region,
            }, None
        return {}, None


# ---------------------------------------------------------------------------------------------
# The recording monitor


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
            return _urn(self.stack, self.project, parent, type_, name)

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
            package = _package_of(type_token)
            return wire.unwrap_secrets(
                default_provider_inputs(package, version, self.config, self.secret_keys)
            )

        def _region_for(
            self, provider_ref: str, inputs: Mapping[str, Any], provider_inputs: Mapping[str, Any]
        ) -> str:
            for candidate in (inputs.get("region"), provider_inputs.get("region")):
                region = _plain(candidate)
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


def __getattr__(name: str):  # PEP 562: ``from tests.harness.program import CapturingMonitor``
    if name == "CapturingMonitor":
        return capturing_monitor_class()
    raise AttributeError(name)


class _RecordingEngine:
    """A ``MockEngine`` that keeps the program's log messages."""

    _LEVELS = {0: "debug", 1: "info", 2: "warning", 3: "error"}

    def __init__(self):
        self.logs: list[tuple[str, str]] = []
        self._logger = logging.getLogger("tests.harness.program")

    def Log(self, request):
        level = self._LEVELS.get(request.severity, "info")
        self.logs.append((level, request.message))
        getattr(self._logger, level)(request.message)

    def GetRootResource(self, request):  # pragma: no cover - only for completeness
        raise NotImplementedError

    def SetRootResource(self, request):  # pragma: no cover
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Evaluation


def _with_default_providers(
    records: list[ResourceRecord],
    config: Mapping[str, str],
    secret_keys: list[str],
    *,
    stack: str,
    project: str,
    preview: bool,
) -> list[ResourceRecord]:
    """Insert the providers the engine would create for resources that named none."""
    result: list[ResourceRecord] = []
    created: dict[str, ResourceRecord] = {}
    by_urn = {r.urn: r for r in records}
    for rec in records:
        if rec.custom and not rec.is_provider and not rec.provider:
            package = _package_of(rec.type)
            if package != "pulumi":
                version = rec.options.get("version", "")
                key = f"{package}@{version}"
                prov = created.get(key)
                if prov is None:
                    name = default_provider_name(version)
                    prov_type = f"{PROVIDER_TYPE_PREFIX}{package}"
                    prov_urn = _urn(stack, project, "", prov_type, name)
                    prov_id = (
                        wire.UNKNOWN if preview else str(uuid.uuid5(uuid.NAMESPACE_URL, prov_urn))
                    )
                    inputs = default_provider_inputs(package, version, config, secret_keys)
                    prov = ResourceRecord(
                        urn=prov_urn,
                        type=prov_type,
                        name=name,
                        custom=True,
                        parent="",
                        inputs=inputs,
                        outputs=copy.deepcopy(inputs),
                        id=prov_id,
                        options={"defaultProvider": True, "version": version},
                    )
                    created[key] = prov
                    by_urn[prov_urn] = prov
                    result.append(prov)
                rec.provider = f"{prov.urn}::{prov.id}"
        result.append(rec)
    for rec in result:
        if rec.provider:
            rec.provider_record = by_urn.get(rec.provider_urn)
    return result


def _purge_program_modules(before: set[str], program_dir: Path) -> None:
    """Forget modules the program imported from its own directory during this run.

    The program's sibling modules (``components.*``) are re-imported by the next evaluation, so a
    module that reads config or keeps a cache at import time cannot leak one stack's settings into
    another run. Modules the caller had imported before the run are left alone (the caller holds
    references to them, e.g. monkeypatched attributes or exception classes).
    """
    root = str(program_dir.resolve())
    venv = os.path.join(root, ".venv")
    harness_dir = str(Path(__file__).resolve().parent)
    for name in list(sys.modules):
        if name in before:
            continue
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if not file:
            continue
        file = str(Path(file).resolve())
        if not file.startswith(root + os.sep) or file.startswith(venv + os.sep):
            continue
        if os.path.dirname(file) == harness_dir:
            continue  # never drop the harness itself (the toy program lives below it)
        del sys.modules[name]


def evaluate_program(
    stack: str,
    *,
    preview: bool = False,
    overrides: Mapping[str, Any] | None = None,
    program_dir: Path | str = REPO_ROOT,
    mocks: HarnessMocks | None = None,
) -> ProgramGraph:
    """Run ``<program_dir>/__main__.py`` for ``stack`` under mocks and return its resource graph.

    ``preview=True`` runs as ``pulumi preview`` (``dry_run``): resources get only their inputs back,
    so derived values are unknown. Exceptions raised by the program surface as
    :class:`ProgramError` carrying the program's message.
    """
    program_dir = Path(program_dir).resolve()
    project_doc = load_project(program_dir)
    project, config, secret_keys = load_config(stack, overrides=overrides, program_dir=program_dir)
    main_path = _program_main(program_dir, project_doc)
    account_id = account_id_from_config(config, project)
    region = config.get("aws:region") or DEFAULT_REGION
    mocks = mocks or HarnessMocks(account_id=account_id, region=region, preview=preview)

    with _EVAL_LOCK, _pulumi_defaults_restored():
        ctx = contextvars.copy_context()
        return ctx.run(
            _evaluate_in_context,
            main_path,
            program_dir,
            stack,
            project,
            config,
            secret_keys,
            preview,
            mocks,
        )


@contextlib.contextmanager
def _pulumi_defaults_restored():
    """Undo the one piece of Pulumi state a copied context does not isolate.

    ``pulumi._utils.ContextProperty.fset`` replaces the property's *default* when the current value
    is ``None``, so configuring settings (as ``set_mocks`` does too) would leak this run's monitor,
    stack and dry-run flag into every later context. Save and restore those defaults.
    """
    from pulumi._utils import ContextProperty
    from pulumi.runtime.settings import Settings

    props = [v for v in vars(Settings).values() if isinstance(v, ContextProperty)]
    saved = [(p, p._ContextProperty__default) for p in props]  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for prop, default in saved:
            prop._ContextProperty__default = default  # type: ignore[attr-defined]


def reset_pulumi_state() -> None:
    """Reset Pulumi's ambient state in the *current* context (for tests that use ``set_mocks``)."""
    import pulumi.runtime
    from pulumi.runtime import settings as pulumi_settings

    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_all_config({}, [])
    pulumi_settings.configure(
        pulumi_settings.Settings(project="project", stack="stack", organization=ORGANIZATION)
    )


def _evaluate_in_context(
    main_path: Path,
    program_dir: Path,
    stack: str,
    project: str,
    config: dict[str, str],
    secret_keys: list[str],
    preview: bool,
    mocks: HarnessMocks,
) -> ProgramGraph:
    import pulumi.runtime
    from pulumi.runtime import settings as pulumi_settings
    from pulumi.runtime.mocks import MockSettings
    from pulumi.runtime.stack import run_in_stack

    monitor = capturing_monitor_class()(
        mocks, stack=stack, project=project, preview=preview, config=config, secret_keys=secret_keys
    )
    engine = _RecordingEngine()

    saved_env = {k: os.environ.get(k) for k in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS")}
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    modules_before = set(sys.modules)
    loop = asyncio.new_event_loop()
    error: BaseException | None = None
    try:
        os.environ["PULUMI_CONFIG"] = json.dumps(config)
        os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
        pulumi.runtime.set_all_config(config, secret_keys)
        pulumi_settings.ROOT.set(None)
        pulumi_settings.configure(
            MockSettings(
                monitor=monitor,
                monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
                engine=engine,
                project=project,
                stack=stack,
                organization=ORGANIZATION,
                dry_run=preview,
                parallel=16,
                callbacks=None,
                root_directory=str(program_dir),
                outputs=set(),
                lock=threading.Lock(),
            )
        )
        os.chdir(program_dir)
        sys.path.insert(0, str(program_dir))
        asyncio.set_event_loop(loop)
        loop.run_until_complete(
            run_in_stack(lambda: runpy.run_path(str(main_path), run_name="__main__"))
        )
    except BaseException as exc:  # noqa: BLE001 - re-raised as ProgramError below
        error = exc
    finally:
        try:
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            asyncio.set_event_loop(None)
        pulumi_settings.ROOT.set(None)
        pulumi.runtime.set_all_config({}, [])
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _purge_program_modules(modules_before, program_dir)

    with monitor.lock:
        records = list(monitor.records)
        invokes = list(monitor.invokes)
        raw_requests = list(monitor.requests)
    resources = _with_default_providers(
        records, config, secret_keys, stack=stack, project=project, preview=preview
    )
    stack_rec = next((r for r in resources if r.type == STACK_TYPE), None)
    graph = ProgramGraph(
        stack=stack,
        project=project,
        preview=preview,
        config=dict(config),
        secret_keys=list(secret_keys),
        resources=resources,
        outputs=dict(stack_rec.outputs) if stack_rec else {},
        invokes=invokes,
        logs=list(engine.logs),
        raw_requests=raw_requests,
    )
    if error is not None:
        if isinstance(error, KeyboardInterrupt):
            raise error
        message = str(error) or type(error).__name__
        raise ProgramError(message, error_type=type(error).__name__, graph=graph) from error
    return graph


# ---------------------------------------------------------------------------------------------
# Synthetic records for policy tables


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
    urn = _urn(stack, project, parent_urn, type, name)
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
        package = _package_of(type)
        version = _package_version(package)
        if provider_inputs is None:
            provider_inputs = _stack_provider_inputs(package, version, stack)
        prov_inputs = json.loads(json.dumps(dict(provider_inputs)))
        if version and "version" not in prov_inputs and package != DYNAMIC_PACKAGE:
            prov_inputs["version"] = version
        prov_name = default_provider_name(version if package != DYNAMIC_PACKAGE else "")
        prov_type = f"{PROVIDER_TYPE_PREFIX}{package}"
        prov_urn = _urn(stack, project, "", prov_type, prov_name)
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
