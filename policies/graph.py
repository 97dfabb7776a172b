"""Plumbing shared by the domain modules: safe property access, the stack graph, fail-closed guards.

Nothing in this module knows about a particular rule. It turns the SDK's arguments into plain
data (keeping preview unknowns as sentinels, see :mod:`iam_docs`), indexes the stack's resources,
follows property dependencies, and wraps every validation so that no exception - in particular
no ``UnknownValueError`` - can escape and silently downgrade a mandatory policy to advisory.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sdk_patches  # noqa: F401  (installs the SDK patches once, before any policy runs)
from iam_docs import is_unknown, parse_arn, plain
from stack_context import stack_config as stack_config  # re-exported for the domain modules
from stack_context import stack_name

if TYPE_CHECKING:
    from pulumi_policy import (
        PolicyProviderResource,
        PolicyResource,
        ResourceValidationArgs,
        StackValidationArgs,
    )

PROJECT_NAMESPACE = "lambda-microvms"
ROLE_TAG = "lambda-microvms:role"
LOG_GROUP_TAG = "lambda-microvms:log-group"
#: Where the image's logs may be: the spelling seen live first (docs/service-facts.md §12.3).
DEFAULT_LOG_GROUP_PREFIXES = ["/aws/lambda-microvms/", "/aws/lambda/microvms/"]

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
ROLE_POLICY_ATTACHMENTS_EXCLUSIVE = (
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive"
)
MANAGED_POLICY = "aws:iam/policy:Policy"
BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
OBJECT_TYPES = (
    "aws:s3/bucketObjectv2:BucketObjectv2",
    "aws:s3/bucketObject:BucketObject",
)
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DYNAMIC_IMAGE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
IMAGE_TYPES = (
    DYNAMIC_IMAGE,
    "aws:lambdamicrovms/image:Image",
    "aws:lambda/microvmsImage:MicrovmsImage",
)
MICROVM = "aws:lambdamicrovms/microvm:Microvm"
COMMAND = "command:local:Command"
EXECUTION_ROLE_ENV = "MICROVMS_EXECUTION_ROLE_ARN"

# The SDK calls back with (message) or (message, urn); its own alias insists on both.
ReportViolation = Callable[..., None]
# A policy's validation function, as ``guarded`` wraps it.
Validation = Callable[[Any, ReportViolation], None]


# --------------------------------------------------------------------------------------------
# Safe, plain property access
# --------------------------------------------------------------------------------------------


def fast_plain(value: Any) -> Any:
    """Like :func:`iam_docs.plain`, but walks the SDK proxies' targets without raising."""
    kind = type(value).__name__
    if kind == "_DictProxy":
        return {k: fast_plain(v) for k, v in value["__target"].items()}
    if kind == "_ListProxy":
        return [fast_plain(v) for v in value["__target"]]
    if isinstance(value, dict):
        return {k: fast_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fast_plain(v) for v in value]
    if isinstance(value, Mapping) or (
        hasattr(value, "__getitem__") and hasattr(value, "__len__") and not isinstance(value, str)
    ):
        return plain(value)
    return value


def get_path(data: Any, *path: Any) -> Any:
    """Follow keys/indexes through plain data; None if missing, the sentinel if unknown."""
    for key in path:
        if is_unknown(data):
            return data
        if isinstance(data, Mapping):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
            data = data[key]
        else:
            return None
    return data


class Res:
    """A resource as the domain rules see it: plain props, provider props, dependency URNs."""

    __slots__ = (
        "urn",
        "type",
        "name",
        "_raw_props",
        "_props",
        "_provider",
        "_provider_props",
        "_deps",
    )

    def __init__(
        self,
        urn: str,
        type_: str,
        name: str,
        props: Any,
        provider: PolicyProviderResource | None = None,
        property_dependencies: dict[str, list[str]] | None = None,
    ) -> None:
        self.urn: str = urn
        self.type: str = type_
        self.name: str = name
        self._raw_props = props  # the SDK's (proxied) property bag, converted on first use
        self._props: dict[str, Any] | None = None
        self._provider = provider
        self._provider_props: dict[str, Any] | None = None
        # prop -> list of URNs
        self._deps: dict[str, list[str]] = property_dependencies or {}

    @classmethod
    def from_stack(cls, resource: PolicyResource) -> Res:
        deps = {
            key: [d.urn for d in value]
            for key, value in (getattr(resource, "property_dependencies", None) or {}).items()
        }
        return cls(
            resource.urn,
            resource.resource_type,
            resource.name,
            resource.props,
            resource.provider,
            deps,
        )

    @classmethod
    def from_args(cls, args: ResourceValidationArgs) -> Res:
        return cls(args.urn, args.resource_type, args.name, args.props, args.provider, {})

    @property
    def props(self) -> dict[str, Any]:
        if self._props is None:
            self._props = fast_plain(self._raw_props) or {}
        return self._props

    def get(self, *path: Any) -> Any:
        if self._props is None and path and type(self._raw_props).__name__ == "_DictProxy":
            # Convert only the top-level property asked for, not the whole bag.
            target = self._raw_props["__target"]
            return get_path({path[0]: fast_plain(target.get(path[0]))}, *path)
        return get_path(self.props, *path)

    @property
    def provider_props(self) -> dict[str, Any] | None:
        if self._provider is None:
            return None
        if self._provider_props is None:
            self._provider_props = fast_plain(self._provider.props) or {}
        return self._provider_props

    @property
    def provider_type(self) -> str | None:
        return None if self._provider is None else self._provider.resource_type

    def deps(self, prop: str) -> list[str]:
        return self._deps.get(prop, [])

    def label(self) -> str:
        return f"{self.type} '{self.name}'"

    def tags(self) -> Any:
        """``tags``, else the provider-merged ``tagsAll`` of stack outputs when it is known.

        In a real preview ``tagsAll`` of a new resource is computed by the provider (unknown, with
        no property dependencies); with no ``tags`` input that just means "no tags of its own".
        """
        tags = self.props.get("tags")
        if tags is None:
            tags_all = self.props.get("tagsAll")
            if is_unknown(tags_all) and not self.deps("tagsAll"):
                return None
            tags = tags_all
        return tags

    def provider_computed(self, prop: str) -> bool:
        """Unknown with no property dependencies: filled in by the provider, not by the program.

        The program can only make an input unknown by deriving it from another resource, which
        the engine records as a property dependency; an unknown without one is an output the
        provider computes (e.g. pulumi-aws v7's per-resource ``region`` in a preview).
        Only meaningful for stack resources (resource-policy arguments carry no dependencies).
        """
        return is_unknown(self.get(prop)) and not self.deps(prop)


class Graph:
    """An index over the stack's resources for stack policies."""

    def __init__(self, resources: Iterable[Res]):
        self.resources = list(resources)
        self.by_urn = {r.urn: r for r in self.resources}
        self._by_type: dict[str, list[Res]] = {}
        self._role_index: dict[str, list[Res]] | None = None
        self._bucket_index: dict[str, list[Res]] | None = None
        for r in self.resources:
            self._by_type.setdefault(r.type, []).append(r)

    @classmethod
    def from_args(cls, args: StackValidationArgs) -> Graph:
        return cls(Res.from_stack(r) for r in args.resources)

    def role_index(self) -> dict[str, list[Res]]:
        """Roles by their ARN, name and id (known values only)."""
        if self._role_index is None:
            index: dict[str, list[Res]] = {}
            for role in self.of_type(ROLE):
                keys = {role.get("arn"), role.get("name"), role.get("id")}
                for key in keys:
                    if isinstance(key, str) and key and not is_unknown(key):
                        index.setdefault(key, []).append(role)
            self._role_index = index
        return self._role_index

    def buckets_named(self, name: Any) -> list[Res]:
        """S3 buckets in the stack whose ``bucket`` (else ``id``) is ``name``; indexed once."""
        if self._bucket_index is None:
            index: dict[str, list[Res]] = {}
            for bucket in self.of_type(*BUCKET_TYPES):
                key = bucket.get("bucket")
                if key is None:
                    key = bucket.get("id")
                if isinstance(key, str) and not is_unknown(key):
                    index.setdefault(key, []).append(bucket)
            self._bucket_index = index
        if not isinstance(name, str) or is_unknown(name):
            return []
        return list(self._bucket_index.get(name, []))

    def of_type(self, *types: str) -> list[Res]:
        out: list[Res] = []
        for t in types:
            out.extend(self._by_type.get(t, []))
        return out

    def deps_of_type(self, res: Res, prop: str, *types: str) -> list[Res]:
        """Resources of ``types`` among ``res``'s dependencies for property ``prop``."""
        return [
            self.by_urn[u]
            for u in res.deps(prop)
            if u in self.by_urn and self.by_urn[u].type in types
        ]


# --------------------------------------------------------------------------------------------
# Matching roles and policies by name/ARN
# --------------------------------------------------------------------------------------------


def role_name_from_ref(ref: Any) -> str | None:
    """A role name from a role name, or from an IAM role ARN (path stripped)."""
    if not isinstance(ref, str) or is_unknown(ref):
        return None
    arn = parse_arn(ref)
    if arn:
        resource = arn["resource"]
        if not resource.startswith("role/"):
            return None
        return resource.rsplit("/", 1)[-1]
    return ref


def role_matches(role: Res, ref: Any) -> bool:
    """Does ``ref`` (name, ARN or id) denote ``role``?"""
    if not isinstance(ref, str) or is_unknown(ref):
        return False
    arn = role.get("arn")
    if isinstance(arn, str) and not is_unknown(arn) and ref == arn:
        return True
    name = role.get("name")
    if not isinstance(name, str) or is_unknown(name):
        name = role.get("id")
    if not isinstance(name, str) or is_unknown(name):
        return False
    return role_name_from_ref(ref) == name


def find_roles(graph: Graph, ref: Any) -> list[Res]:
    """Roles in the stack that ``ref`` (name, ARN or id) denotes; indexed once per graph."""
    if not isinstance(ref, str) or is_unknown(ref):
        return []
    index = graph.role_index()
    found = index.get(ref) or index.get(role_name_from_ref(ref) or "") or []
    return list(found)


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def unverifiable(where: str, prop: str, hint: str = "") -> str:
    """The standard fail-closed message for a value that is unknown in preview."""
    message = (
        f"{where}: '{prop}' is unknown during preview, so this guardrail cannot be verified "
        "until apply; it fails closed."
    )
    fix = (
        hint
        or "Compute the value from known inputs (names, config) rather than another resource's outputs"
    )
    return f"{message} Fix: {fix}."


# --------------------------------------------------------------------------------------------
# Guards, config and environment
# --------------------------------------------------------------------------------------------


def guarded(policy_name: str) -> Callable[[Validation], Validation]:
    """Wrap a validation so nothing escapes: any error becomes a violation at the policy's level."""

    def decorate(fn: Validation) -> Validation:
        @functools.wraps(fn)
        def wrapper(args: Any, report_violation: ReportViolation) -> None:
            from pulumi_policy.proxy import UnknownValueError

            try:
                fn(args, report_violation)
            except UnknownValueError as err:
                # Normally impossible (we read through plain()); if it happens, stay mandatory.
                where = getattr(args, "name", None) or "the stack"
                report_violation(unverifiable(f"{policy_name} on {where}", ".".join(err.props)))
            except Exception as err:  # noqa: BLE001 - fail closed, never crash or downgrade
                report_violation(
                    f"{policy_name} could not evaluate this input ({type(err).__name__}: {err}); "
                    "it fails closed. Fix the input, or report a bug in the policy pack."
                )

        return wrapper

    return decorate


def config_of(args: ResourceValidationArgs | StackValidationArgs) -> dict[str, Any]:
    try:
        return fast_plain(args.get_config()) or {}
    except Exception:  # noqa: BLE001
        return {}


def stack_from_urns(urns: Iterable[str]) -> str | None:
    """The stack every URN names (``urn:pulumi:<stack>::<project>::…``); None when none parses or
    they name different stacks."""
    stacks = set()
    for urn in urns:
        if isinstance(urn, str) and urn.startswith("urn:pulumi:"):
            stack = urn[len("urn:pulumi:") :].split("::", 1)[0]
            if stack:
                stacks.add(stack)
    return stacks.pop() if len(stacks) == 1 else None


def resolve_environment(configured: Any, urns: Iterable[str] = ()) -> tuple[str | None, str]:
    """(environment, where it came from): policy config, stack config, the stack name the engine
    sent, else the stack name in the judged resources' URNs.

    The last one matters for ``pulumi policy analyze`` over a stack's state (the drift workflow):
    the engine then sends the pack neither the stack's config nor its name, only the resources.
    """
    if isinstance(configured, str) and configured:
        return configured, "policy config 'environment'"
    value = stack_config().get(f"{PROJECT_NAMESPACE}:environment")
    if isinstance(value, str) and value:
        return value, f"stack config '{PROJECT_NAMESPACE}:environment'"
    stack = stack_name()
    if stack:
        return stack, "the stack name"
    stack = stack_from_urns(urns)
    if stack:
        return stack, "the stack name in the resources' URNs"
    return None, "nowhere"


# --------------------------------------------------------------------------------------------
# The image's artifact bucket (regions, storage and build-role policies)
# --------------------------------------------------------------------------------------------


def bucket_name_from_uri(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    name = uri[len("s3://") :].split("/", 1)[0]
    return name or None


def artifact_buckets(graph: Graph, image: Res) -> tuple[list[Res], str | None]:
    """Buckets named by ``image.codeArtifact.uri``, or reached through its dependencies.

    Returns (buckets, problem). Dependencies are followed through an S3 object to its bucket.
    """
    uri = image.get("codeArtifact", "uri")
    name = bucket_name_from_uri(uri)
    if name and not is_unknown(name):
        found = graph.buckets_named(name)
        if found:
            return found, None
        deps = _bucket_deps(graph, image)
        if deps:
            return deps, None
        return (
            [],
            f"artifact bucket {name!r} (codeArtifact.uri) is not defined in this stack, so its region cannot be checked",
        )
    if uri is None:
        return [], "it has no codeArtifact.uri"
    if is_unknown(uri) or is_unknown(image.get("codeArtifact")):
        deps = _bucket_deps(graph, image)
        if deps:
            return deps, None
        return [], "unknown"
    return [], f"codeArtifact.uri {uri!r} is not an s3://bucket/key URI"


def _bucket_deps(graph: Graph, image: Res) -> list[Res]:
    buckets = graph.deps_of_type(image, "codeArtifact", *BUCKET_TYPES)
    for obj in graph.deps_of_type(image, "codeArtifact", *OBJECT_TYPES):
        name = obj.get("bucket")
        found = graph.buckets_named(name)
        buckets.extend(found or graph.deps_of_type(obj, "bucket", *BUCKET_TYPES))
    unique = {b.urn: b for b in buckets}
    return list(unique.values())
