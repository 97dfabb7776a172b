"""Role trust policies: confused-deputy protection for roles the Lambda service can assume."""

from __future__ import annotations

from typing import Any

from graph import (
    ROLE,
    ReportViolation,
    Res,
    config_of,
    get_path,
    guarded,
    stack_config,
    unverifiable,
)
from iam_docs import (
    LAMBDA_SERVICE,
    DocumentError,
    Statement,
    as_account_id,
    contains_unknown,
    has_wildcard,
    is_unknown,
    parse_account_list,
    parse_arn,
    parse_document,
    principal_admits_service,
    statement_admits_service,
    statement_grants,
)
from policy_metadata import meta
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

ASSUME_ROLE = "sts:AssumeRole"
SOURCE_ACCOUNT = "aws:sourceaccount"
SOURCE_ARN = "aws:sourcearn"
SOURCE_ACCOUNT_OPERATORS = ("StringEquals", "StringLike", "ForAnyValue:StringEquals")
SOURCE_ARN_OPERATORS = ("ArnEquals", "ArnLike", "StringEquals", "StringLike")
NEGATED_OPERATORS = ("StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike")
MAX_REASONS = 3


# --------------------------------------------------------------------------------------------
# Pure evaluation
# --------------------------------------------------------------------------------------------


POSITIVE_OPERATOR = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _add_condition(example: str) -> str:
    return f'add "Condition": {{"StringEquals": {{"aws:SourceAccount": "{example}"}}}}'


def _condition_verdict(
    operator: str, key: str, values: tuple[Any, ...], accounts: list[str]
) -> tuple[str, str] | None:
    """None if this one condition restricts the caller to a deploying account, else
    (what is wrong, the edit that fixes it)."""
    key_lower = key.lower()
    shown = f"'{operator}' on '{key}'"
    deploying = ", ".join(accounts)
    if key_lower not in (SOURCE_ACCOUNT, SOURCE_ARN):
        return (
            f"{shown}: only aws:SourceAccount or aws:SourceArn identify the calling resource's account",
            f"{_add_condition(accounts[0])} next to the {key} condition",
        )
    if operator.endswith("IfExists"):
        base = operator[: -len("IfExists")]
        base = POSITIVE_OPERATOR.get(base, base)
        return (
            f"{shown}: an ...IfExists operator passes when the key is absent",
            f"use {base} instead of {operator} on {key}",
        )
    if operator.startswith("ForAllValues:"):
        return (
            f"{shown}: ForAllValues: passes when the key is absent",
            f"use {operator.split(':', 1)[1]} instead of {operator} on {key}",
        )
    if operator == "Null":
        return (
            f"{shown}: Null only tests whether the key is present",
            f'replace the Null test with "StringEquals": {{"aws:SourceAccount": "{accounts[0]}"}}',
        )
    if operator in NEGATED_OPERATORS:
        return (
            f"{shown}: a negated operator on an Allow admits every other account",
            f"use {POSITIVE_OPERATOR[operator]} instead of {operator} on {key}",
        )
    allowed = SOURCE_ACCOUNT_OPERATORS if key_lower == SOURCE_ACCOUNT else SOURCE_ARN_OPERATORS
    if operator not in allowed:
        return f"{shown}: use one of {', '.join(allowed)}", f"use {allowed[0]} on {key}"
    if not values:
        return f"{shown}: no values", f"give {key} the deploying account {accounts[0]}"
    for value in values:
        if is_unknown(value):
            return (
                f"{shown}: a value is unknown during preview and cannot be verified until apply",
                "build the value from known inputs such as the account id in config",
            )
        if key_lower == SOURCE_ACCOUNT:
            account = as_account_id(value)
            if account is None:
                return (
                    f"{shown}: value {_short(value)} is not a 12-digit account id",
                    f"replace {_short(value)} with a deploying account id: {deploying}",
                )
            if account not in accounts:
                return (
                    f"{shown}: account {account} is not a deploying account; deploying: {deploying}",
                    f"remove the foreign account {account} from {key}",
                )
        else:
            arn = parse_arn(value)
            if arn is None:
                return (
                    f"{shown}: value {_short(value)} is not an ARN",
                    f"replace {_short(value)} with an ARN in a deploying account: {deploying}",
                )
            account = arn["account"]
            if not account or has_wildcard(account):
                return (
                    f"{shown}: value {_short(value)} has no account in its account field",
                    f"put a deploying account, {deploying}, in the account field of {_short(value)}",
                )
            if account not in accounts:
                return (
                    f"{shown}: account {account} in {_short(value)} is not a deploying account; "
                    f"deploying: {deploying}",
                    f"remove the ARN in the foreign account {account} from {key}",
                )
    return None


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def statement_is_restricted(
    statement: Statement, accounts: list[str]
) -> tuple[bool, list[str], list[str]]:
    """(restricted, reasons, fixes): restricted if any one condition is effective (conditions AND)."""
    if not statement.conditions:
        return (
            False,
            ["it has no Condition"],
            [f"{_add_condition(accounts[0])} to {statement.label}"],
        )
    reasons: list[str] = []
    fixes: list[str] = []
    for cond in statement.conditions:
        if is_unknown(cond.key) or is_unknown(cond.operator):
            reasons.append(
                "its Condition is unknown during preview and cannot be verified until apply"
            )
            fixes.append("build the Condition from known values")
            continue
        verdict = _condition_verdict(cond.operator, cond.key, cond.values, accounts)
        if verdict is None:
            return True, [], []
        reasons.append(verdict[0])
        if verdict[1] not in fixes:
            fixes.append(verdict[1])
    return False, reasons, fixes


def deny_protects(statement: Statement, accounts: list[str]) -> bool:
    """A Deny of sts:AssumeRole to the Lambda principal unless aws:SourceAccount is ours."""
    if statement.effect != "Deny" or statement.has_unknown or statement.not_principal is not None:
        return False
    if not principal_admits_service(statement.principal, LAMBDA_SERVICE):
        return False
    if not statement_grants(statement, ASSUME_ROLE):
        return False
    if len(statement.conditions) != 1:
        return False
    cond = statement.conditions[0]
    if cond.operator != "StringNotEquals" or cond.key_lower != SOURCE_ACCOUNT or not cond.values:
        return False
    return all(as_account_id(v) in accounts for v in cond.values)


def trust_violations(document: Any, accounts: list[str] | None, where: str) -> list[str]:
    """Every violation of lambda-trust-source-account for one trust policy (empty = compliant)."""
    if document is None:
        return []
    if is_unknown(document):
        return [
            unverifiable(
                where,
                "assumeRolePolicy",
                "build the trust policy from known values (account id from config) so it is known in preview",
            )
        ]
    try:
        statements = parse_document(document)
    except DocumentError as err:
        return [
            f"{where}: assumeRolePolicy is not a valid policy document: {err}. Fix the document."
        ]

    in_scope: list[Statement] = []
    unknown: list[Statement] = []
    for st in statements:
        if st.effect == "Allow" or is_unknown(st.effect):
            if st.actions is None and st.not_actions is None:
                unknown.append(st)  # the whole statement is unknown
                continue
            # A part that is known and rules Lambda or sts:AssumeRole out settles it: out of scope.
            who_known = not contains_unknown([st.principal, st.not_principal])
            what_known = not contains_unknown([st.actions, st.not_actions])
            if who_known and not statement_admits_service(st):
                continue
            if what_known and not statement_grants(st, ASSUME_ROLE):
                continue
            if who_known and what_known and not is_unknown(st.effect):
                in_scope.append(st)
            else:
                unknown.append(st)
    if not in_scope and not unknown:
        return []  # the role does not admit Lambda: out of scope
    if accounts is None:
        return [
            f"{where}: the trust policy admits {LAMBDA_SERVICE} but the deploying account ids cannot be "
            "determined, so aws:SourceAccount cannot be checked; it fails closed. Fix: set the policy "
            "config 'accountIds' or the stack config 'aws:allowedAccountIds'."
        ]
    if any(deny_protects(st, accounts) for st in statements):
        return []
    out = []
    for st in unknown:
        out.append(
            unverifiable(
                f"{where} trust policy {st.label}",
                "Principal/Action",
                "build the trust policy from known values so it is known in preview",
            )
        )
    for st in in_scope:
        restricted, reasons, fixes = statement_is_restricted(st, accounts)
        if restricted:
            continue
        fix = "; or ".join(fixes[:2]) if len(fixes) > 1 else fixes[0]
        out.append(
            f"{where}: trust policy {st.label} lets {LAMBDA_SERVICE} call {ASSUME_ROLE} without an "
            f"effective source condition: {'; '.join(reasons[:MAX_REASONS])}. Statements are "
            f"OR-ed, so every such statement needs one. Fix: {fix}."
        )
    return out


def deploying_accounts(
    config: dict[str, Any], provider_props: dict[str, Any] | None
) -> list[str] | None:
    """Policy config ``accountIds``, else the AWS provider's ``allowedAccountIds``."""
    configured = config.get("accountIds") or []
    if configured:
        return parse_account_list(configured)
    if provider_props is not None:
        return parse_account_list(provider_props.get("allowedAccountIds"))
    # No provider on the request: the default provider is configured from the stack config.
    return parse_account_list(stack_config().get("aws:allowedAccountIds"))


def source_arn_image_warnings(document: Any, where: str) -> list[str]:
    """Statements that condition a Lambda trust on aws:SourceArn ...:microvm-image... ."""
    if document is None or is_unknown(document):
        return []
    try:
        statements = parse_document(document)
    except DocumentError:
        return []
    out = []
    for st in statements:
        if st.effect != "Allow" or not statement_admits_service(st):
            continue
        for cond in st.conditions:
            if cond.key_lower != SOURCE_ARN:
                continue
            hits = [v for v in cond.values if isinstance(v, str) and ":microvm-image" in v]
            if hits:
                out.append(
                    f"{where}: trust policy {st.label} conditions {cond.key} with {cond.operator} "
                    f"{hits[0]!r}. No image ARN exists when the service first assumes the role, so "
                    "image builds end CREATE_FAILED and runs fail with 'unable to assume role'. "
                    "Fix: drop the aws:SourceArn condition and keep aws:SourceAccount only."
                )
    return out


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


@guarded("lambda-trust-source-account")
def _validate_trust(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ROLE:
        return
    res = Res.from_args(args)
    accounts = deploying_accounts(config_of(args), res.provider_props)
    for message in trust_violations(res.get("assumeRolePolicy"), accounts, f"role '{args.name}'"):
        report_violation(message)


lambda_trust_source_account = ResourceValidationPolicy(
    name="lambda-trust-source-account",
    description=(
        "Every trust-policy statement that lets lambda.amazonaws.com assume a role must restrict "
        "aws:SourceAccount (or aws:SourceArn) to the deploying accounts."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "accountIds": {
                "type": "array",
                "items": {"type": "string", "pattern": "^[0-9]{12}$"},
                "default": [],
                "description": "Deploying account ids; empty = the AWS provider's allowedAccountIds.",
            }
        }
    ),
    validate=_validate_trust,
    **meta("lambda-trust-source-account"),
)


@guarded("source-arn-microvm-image-condition")
def _validate_source_arn(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != ROLE:
        return
    document = get_path(Res.from_args(args).props, "assumeRolePolicy")
    for message in source_arn_image_warnings(document, f"role '{args.name}'"):
        report_violation(message)


source_arn_microvm_image_condition = ResourceValidationPolicy(
    name="source-arn-microvm-image-condition",
    description=(
        "An aws:SourceArn condition on ...:microvm-image:* in a Lambda trust policy makes MicroVM "
        "image builds and runs fail."
    ),
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_validate_source_arn,
    **meta("source-arn-microvm-image-condition"),
)
