"""What policy reaches a role: the stack's IAM attachments, walked once and shared.

Roles are found by the domain that cares (execution roles, build roles); this module indexes every
RolePolicy, RolePolicyAttachment, PolicyAttachment and RolePolicyAttachmentsExclusive by the role
it reaches, and yields each policy document reaching a role, inline or attached, with where it came
from. It judges nothing itself: an AWS-managed policy is handed to the caller's ``judge_managed``
(or yielded as ``("aws-managed", arn)`` when there is none).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graph import (
    MANAGED_POLICY,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_POLICY,
    ROLE_POLICY_ATTACHMENT,
    ROLE_POLICY_ATTACHMENTS_EXCLUSIVE,
    Graph,
    Res,
    role_name_from_ref,
    unverifiable,
)
from iam_docs import is_unknown, parse_arn
from managed_policies import managed_policy_name

#: Judges an AWS-managed policy ARN found at ``where``: (violations, notes).
JudgeManaged = Callable[[str, str], tuple[list[str], list[str]]]


@dataclass
class ExecRole:
    key: str
    name: str
    why: str
    role: Res | None = None


@dataclass
class Findings:
    violations: list[tuple[str, str | None]] = field(default_factory=list)  # (message, urn)
    notes: list[tuple[str, str | None]] = field(default_factory=list)

    def fail(self, message: str, urn: str | None) -> None:
        self.violations.append((message, urn))


@dataclass
class Attachment:
    """Something that attaches policy to roles: which roles it reaches, and where its policy is."""

    res: Res
    kind: str  # "document" (RolePolicy), "arn" (policyArn) or "arns" (policyArns)
    label: str
    urns: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)


ATTACHMENT_KINDS = (
    (ROLE_POLICY, "role", "document", "role policy"),
    (ROLE_POLICY_ATTACHMENT, "role", "arn", "attachment"),
    (POLICY_ATTACHMENT, "roles", "arn", "policy attachment"),
    (ROLE_POLICY_ATTACHMENTS_EXCLUSIVE, "roleName", "arns", "exclusive attachments"),
)


def index_attachments(graph: Graph, out: Findings) -> dict[str, list[Attachment]]:
    """Attachments keyed by the role URN (or ``name:<role name>``) they reach; built once."""
    by_ref: dict[str, str] = {}
    role_urns = set()
    for role in graph.of_type(ROLE):
        role_urns.add(role.urn)
        for key in (role.get("arn"), role.get("name"), role.get("id")):
            if isinstance(key, str) and not is_unknown(key):
                by_ref.setdefault(key, role.urn)
    index: dict[str, list[Attachment]] = {}
    for type_, prop, kind, what in ATTACHMENT_KINDS:
        for res in graph.of_type(type_):
            att = Attachment(res, kind, f"{what} '{res.name}'")
            value = res.get(prop)
            refs = value if isinstance(value, list) else [value]
            deps = {u for u in res.deps(prop) if u in role_urns}
            for ref in refs:
                if ref is None:
                    continue
                if is_unknown(ref) or is_unknown(value):
                    if not deps:
                        out.fail(
                            unverifiable(res.label(), prop, "reference the role from this stack"),
                            res.urn,
                        )
                    att.urns |= deps
                    continue
                if not isinstance(ref, str):
                    continue
                name = role_name_from_ref(ref)
                urn = by_ref.get(ref) or (by_ref.get(name) if name else None)
                if urn:
                    att.urns.add(urn)
                if name:
                    att.names.add(name)
            # A known reference that matches neither name nor ARN may still come from a role's
            # outputs (the dependency says so); never let a policy slip through unjudged.
            att.urns |= deps
            for urn in att.urns:
                index.setdefault(urn, []).append(att)
            for name in att.names:
                index.setdefault(f"name:{name}", []).append(att)
    return index


def _policy_documents(
    graph: Graph,
    res: Res,
    prop: str,
    arns: Any,
    where: str,
    out: Findings,
    judge_managed: JudgeManaged | None = None,
) -> Iterator[tuple[str, Any]]:
    """Resolve policy ARN(s) in ``res.prop`` to (label, document); AWS-managed ones judged here."""
    values = arns if isinstance(arns, list) else [arns]
    dep_policies = graph.deps_of_type(res, prop, MANAGED_POLICY)
    used_deps = False
    for arn in values:
        if is_unknown(arn) or is_unknown(arns):
            if not dep_policies:
                out.fail(
                    unverifiable(where, prop, "attach a policy defined in this stack"), res.urn
                )
            elif not used_deps:
                used_deps = True
                for pol in dep_policies:
                    yield f"{where} → policy '{pol.name}'", pol.get("policy")
            continue
        if not isinstance(arn, str):
            continue
        if managed_policy_name(arn) is not None:
            if judge_managed is None:
                yield where, ("aws-managed", arn)
                continue
            violations, notes = judge_managed(arn, where)
            for message in violations:
                out.fail(message, res.urn)
            for note in notes:
                out.notes.append((note, res.urn))
            continue
        found = [p for p in graph.of_type(MANAGED_POLICY) if p.get("arn") == arn]
        if not found:
            parsed = parse_arn(arn)
            leaf = parsed["resource"].rsplit("/", 1)[-1] if parsed else None
            # By name only while the stack policy's ARN is unknown (preview); a known ARN that
            # differs (another account or path) is another policy.
            found = [
                p
                for p in graph.of_type(MANAGED_POLICY)
                if leaf and p.get("name") == leaf and not _known_str(p.get("arn"))
            ]
        if not found:
            found = dep_policies
        if not found:
            out.fail(
                f"{where}: customer-managed policy {arn!r} is not defined in this stack, so it cannot "
                "be verified as read-only; it fails closed. Fix: define the policy in this stack.",
                res.urn,
            )
        for pol in found:
            yield f"{where} → policy '{pol.name}'", pol.get("policy")


def _known_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and not is_unknown(value)


def documents_for(
    entry: ExecRole,
    graph: Graph,
    out: Findings,
    index: dict[str, list[Attachment]],
    judge_managed: JudgeManaged | None = None,
) -> list[tuple[str, Any, str | None]]:
    """Every identity policy document reaching ``entry``: (where, document, urn to blame)."""
    urn = entry.role.urn if entry.role else None
    label = f"role '{entry.name}' ({entry.why})"
    docs: list[tuple[str, Any, str | None]] = []

    def attached(res: Res, prop: str, arns: Any, where: str) -> None:
        for w, document in _policy_documents(graph, res, prop, arns, where, out, judge_managed):
            docs.append((w, document, res.urn))

    if entry.role is not None:
        role = entry.role
        # Unknown without dependencies = computed by the provider from the role's separate
        # RolePolicy/attachment resources, which are judged on their own below.
        inline = None if role.provider_computed("inlinePolicies") else role.get("inlinePolicies")
        if is_unknown(inline):
            out.fail(unverifiable(label, "inlinePolicies"), urn)
        for i, item in enumerate(inline if isinstance(inline, list) else []):
            pname = item.get("name") if isinstance(item, dict) else None
            document = item.get("policy") if isinstance(item, dict) else item
            docs.append((f"{label}, inline policy {pname or i!r}", document, urn))
        managed = role.get("managedPolicyArns")
        if managed is not None and not role.provider_computed("managedPolicyArns"):
            if is_unknown(managed):
                # Derived as a whole (an apply): AWS-managed ARNs inside it would be hidden.
                out.fail(
                    unverifiable(
                        label,
                        "managedPolicyArns",
                        "pass a list whose entries are the policies' ARNs, not one computed value",
                    ),
                    urn,
                )
            attached(role, "managedPolicyArns", managed, f"{label}, managedPolicyArns")
    seen: set[str] = set()
    for key in [urn or f"name:{entry.name}"]:
        for att in index.get(key, []):
            if att.res.urn in seen:
                continue
            seen.add(att.res.urn)
            where = f"{label}, {att.label}"
            if att.kind == "document":
                docs.append((where, att.res.get("policy"), att.res.urn))
            elif att.kind == "arn":
                attached(att.res, "policyArn", att.res.get("policyArn"), where)
            else:
                attached(att.res, "policyArns", att.res.get("policyArns"), where)
    return docs
