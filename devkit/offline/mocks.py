"""The engine's naming and the AWS provider's answers, as the offline engine emulates them.

URNs (:func:`engine_urn`), default providers (:func:`default_provider_name`,
:func:`default_provider_inputs`) and :class:`HarnessMocks`, which answers registrations and invokes
with realistic AWS-shaped values (autonames, ARNs, ``tagsAll``, the dynamic image's outputs,
``getCallerIdentity``/``getRegion``/``getPolicyDocument``...).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from devkit.offline import wire
from devkit.offline.records import DYNAMIC_PACKAGE, PROVIDER_TYPE_PREFIX, STACK_TYPE


def engine_urn(stack: str, project: str, parent_urn: str, type_: str, name: str) -> str:
    """The engine's URN: the parent's qualified type is prefixed, except for the root Stack."""
    qualified = type_
    if parent_urn:
        parent_qualified = parent_urn.split("::")[2]
        if parent_qualified != STACK_TYPE:
            qualified = f"{parent_qualified}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def package_of(type_token: str) -> str:
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


def plain_value(value: Any) -> Any:
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
