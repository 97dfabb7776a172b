"""Build roles: read the artifact, write the image's own build logs, nothing broader."""

from __future__ import annotations

from typing import Any

from attachments import ExecRole, Findings, documents_for, index_attachments
from graph import (
    BUCKET_TYPES,
    DEFAULT_LOG_GROUP_PREFIXES,
    IMAGE_TYPES,
    LOG_GROUP,
    OBJECT_TYPES,
    ROLE,
    ROLE_TAG,
    Graph,
    ReportViolation,
    Res,
    bucket_name_from_uri,
    config_of,
    find_roles,
    guarded,
    unverifiable,
)
from iam_docs import (
    Action,
    DocumentError,
    contains_unknown,
    expand_action,
    is_unknown,
    parse_arn,
    parse_document,
)
from policy_metadata import meta
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    StackValidationArgs,
    StackValidationPolicy,
)


def artifact_location(graph: Graph, image: Res) -> tuple[str, str] | None:
    """(bucket, key) of the image's code artifact, from the URI or the S3 object it depends on."""
    uri = image.get("codeArtifact", "uri")
    if isinstance(uri, str) and not is_unknown(uri) and uri.startswith("s3://"):
        bucket = bucket_name_from_uri(uri)
        key = uri[len("s3://") :].partition("/")[2]
        if bucket and key:
            return bucket, key
    for obj in graph.deps_of_type(image, "codeArtifact", *OBJECT_TYPES):
        bucket, key = obj.get("bucket"), obj.get("key")
        if not isinstance(bucket, str) or is_unknown(bucket):
            names = [b.get("bucket") for b in graph.deps_of_type(obj, "bucket", *BUCKET_TYPES)]
            bucket = next((n for n in names if isinstance(n, str) and not is_unknown(n)), None)
        if isinstance(bucket, str) and isinstance(key, str) and not is_unknown(key):
            return bucket, key
    return None


def image_log_groups(image: Res, prefixes: list[str], graph: Graph | None = None) -> set[str]:
    """The image's build log group: ``logging.cloudWatch.logGroup`` (through the log group it
    depends on when unknown in preview), else ``<prefix><name>``; empty if it cannot be told."""
    explicit = image.get("logging", "cloudWatch", "logGroup")
    if isinstance(explicit, str) and explicit and not is_unknown(explicit):
        return {explicit}
    if is_unknown(explicit) and graph is not None:
        names = {g.get("name") for g in graph.deps_of_type(image, "logging", LOG_GROUP)}
        names = {n for n in names if isinstance(n, str) and not is_unknown(n)}
        if names:
            return names
    name = image.get("name")
    if isinstance(name, str) and name and not is_unknown(name):
        return {f"{p}{name}" for p in prefixes}
    return set()


def key_prefix(key: str) -> str:
    """The artifact's "directory": everything up to the last '/', or the key itself."""
    return key.rsplit("/", 1)[0] + "/" if "/" in key else key


def s3_resource_ok(resource: str, bucket: str, prefix: str) -> bool:
    arn = parse_arn(resource)
    if not arn or arn["service"] != "s3":
        return False
    path = arn["resource"]
    if not path.startswith(f"{bucket}/"):
        return False
    rest = path[len(bucket) + 1 :]
    return rest.startswith(prefix) and "*" not in rest[: len(prefix)]


def logs_resource_ok(resource: str, groups: set[str]) -> bool:
    arn = parse_arn(resource)
    if not arn or arn["service"] != "logs" or not arn["resource"].startswith("log-group:"):
        return False
    rest = arn["resource"][len("log-group:") :]
    for group in groups:
        if rest in (group, f"{group}:*", f"{group}:log-stream:*") or rest.startswith(
            f"{group}:log-stream:"
        ):
            return True
    return False


def fallback_s3_ok(resource: str, buckets: set[str]) -> bool:
    """Without an image: an object ARN in a stack bucket, below some non-wildcard prefix."""
    arn = parse_arn(resource)
    if not arn or arn["service"] != "s3":
        return False
    bucket, _, key = arn["resource"].partition("/")
    return bucket in buckets and bool(key) and not key.startswith("*")


def fallback_logs_ok(resource: str, prefixes: list[str]) -> bool:
    """Without an image: a log group under one of the prefixes, no wildcard in its name."""
    arn = parse_arn(resource)
    if not arn or arn["service"] != "logs" or not arn["resource"].startswith("log-group:"):
        return False
    rest = arn["resource"][len("log-group:") :]
    for suffix in (":log-stream:*", ":*"):
        if rest.endswith(suffix):
            rest = rest[: -len(suffix)]
            break
    return not any(c in rest for c in "*?:") and any(
        rest.startswith(p) and len(rest) > len(p) for p in prefixes
    )


def judge_build_document(
    document: Any,
    where: str,
    locations: list[tuple[str, str]],
    groups: set[str],
    buckets: set[str] | None = None,
    prefixes: list[str] | None = None,
) -> list[str]:
    """Violations of build-role-scope for one document.

    ``locations``/``groups`` come from the images using the role; when no image uses it (yet), the
    check falls back to "an object prefix in a stack bucket" and "a log group under a prefix".
    """
    buckets = buckets or set()
    prefixes = prefixes or list(DEFAULT_LOG_GROUP_PREFIXES)
    if is_unknown(document):
        return [unverifiable(where, "policy", "build the policy document from known values")]
    if isinstance(document, tuple):  # ("aws-managed", arn)
        return [
            f"{where}: AWS-managed policy {document[1]!r} is not scoped to the artifact prefix or the "
            "image's log group. Fix: replace it with an inline policy scoped to both."
        ]
    try:
        statements = parse_document(document)
    except DocumentError as err:
        return [f"{where}: not a valid policy document: {err}."]
    out = []
    for st in statements:
        if st.effect != "Allow":
            continue
        if contains_unknown([st.actions, st.not_actions, st.resources]):
            out.append(unverifiable(f"{where}, {st.label}", "Action/Resource"))
            continue
        if st.not_actions is not None or st.not_resources is not None:
            out.append(
                f"{where}, {st.label}: uses NotAction/NotResource, which cannot be scoped to the "
                "artifact and log group. Fix: list the actions and resources explicitly."
            )
            continue
        actions = [a for p in st.actions or [] if isinstance(p, str) for a in expand_action(p)]
        s3 = [a for a in actions if a.name.lower().startswith("s3:")]
        logs = [a for a in actions if a.name.lower().startswith("logs:")]
        resources = [r for r in st.resources or [] if isinstance(r, str)]
        problems = []
        writes = sorted({a.name for a in s3 if not a.read_only})
        if writes:
            problems.append(
                f"S3 write actions {', '.join(writes[:5])}{' ...' if len(writes) > 5 else ''}"
            )
        if (s3 or logs) and not resources:
            problems.append("no Resource")

        def scoped(resource: str, s3: list[Action] = s3, logs: list[Action] = logs) -> bool:
            if locations:
                in_artifact = any(s3_resource_ok(resource, b, key_prefix(k)) for b, k in locations)
            else:
                in_artifact = fallback_s3_ok(resource, buckets)
            if groups:
                in_group = logs_resource_ok(resource, groups)
            else:
                in_group = fallback_logs_ok(resource, prefixes)
            return bool(s3 and in_artifact) or bool(logs and in_group)

        bad = [r for r in resources if (s3 or logs) and not scoped(r)]
        if bad:
            artifact = ", ".join(f"arn:aws:s3:::{b}/{key_prefix(k)}*" for b, k in locations)
            artifact = (
                artifact
                or f"an object prefix in one of this stack's buckets: {', '.join(sorted(buckets)) or 'none'}"
            )
            group = ", ".join(sorted(groups)) or f"a log group under {', '.join(prefixes)}"
            problems.append(
                f"Resource {bad[0][:200]!r} is neither the artifact prefix, {artifact}, nor the "
                f"image's log group, {group}"
            )
        if problems:
            out.append(
                f"{where}, {st.label}: {'; '.join(problems)}. Fix: grant s3:GetObject on the artifact "
                "prefix and logs actions on the image's own log group only."
            )
    return out


def evaluate(graph: Graph, config: dict[str, Any]) -> Findings:
    out = Findings()
    prefixes = config.get("logGroupPrefixes") or list(DEFAULT_LOG_GROUP_PREFIXES)
    roles: dict[str, tuple[ExecRole, list[Res]]] = {}
    for role in graph.of_type(ROLE):
        tags = role.tags()
        if isinstance(tags, dict) and tags.get(ROLE_TAG) == "build":
            roles[role.urn] = (ExecRole(role.urn, role.name, f"tagged {ROLE_TAG}=build", role), [])
    for image in graph.of_type(*IMAGE_TYPES):
        ref = image.get("buildRoleArn")
        found = find_roles(graph, ref) if not is_unknown(ref) else []
        found = found or graph.deps_of_type(image, "buildRoleArn", ROLE)
        for role in found:
            entry = roles.setdefault(
                role.urn,
                (ExecRole(role.urn, role.name, f"build role of {image.label()}", role), []),
            )
            entry[1].append(image)
    index = index_attachments(graph, out) if roles else {}
    stack_buckets = {
        b.get("bucket") for b in graph.of_type(*BUCKET_TYPES) if isinstance(b.get("bucket"), str)
    }
    for exec_role, images in roles.values():
        locations = [loc for img in images if (loc := artifact_location(graph, img))]
        groups = {group for img in images for group in image_log_groups(img, prefixes, graph)}
        for where, document, urn in documents_for(exec_role, graph, out, index):
            for message in judge_build_document(
                document, where, locations, groups, stack_buckets, prefixes
            ):
                out.fail(message, urn)
    return out


@guarded("build-role-scope")
def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for message, urn in evaluate(Graph.from_args(args), config_of(args)).violations:
        if urn:
            report_violation(message, urn)
        else:
            report_violation(message)


build_role_scope = StackValidationPolicy(
    name="build-role-scope",
    description=(
        "A MicroVM image build role may read only its artifact prefix in S3 and write logs only to "
        "the image's own log group."
    ),
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=PolicyConfigSchema(
        properties={
            "logGroupPrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(DEFAULT_LOG_GROUP_PREFIXES),
                "description": "Prefixes of image log groups (<prefix><image name>).",
            }
        }
    ),
    validate=_validate,
    **meta("build-role-scope"),
)
