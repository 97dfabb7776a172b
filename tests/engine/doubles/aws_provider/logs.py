"""``aws:cloudwatch/logGroup:LogGroup`` against CloudWatch Logs (moto) with boto3."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from tests.engine.doubles.aws_provider import wire
from tests.engine.doubles.aws_provider.base import ResourceType, as_int, error_code, expect
from tests.engine.doubles.aws_provider.config import Session

#: The retention values CloudWatch Logs accepts (0 = never expire).
RETENTION_DAYS = (
    0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
LOG_GROUP_CLASSES = ("STANDARD", "INFREQUENT_ACCESS", "DELIVERY")


class LogGroup(ResourceType):
    token = "aws:cloudwatch/logGroup:LogGroup"
    inputs = frozenset(
        {
            "kmsKeyId",
            "logGroupClass",
            "name",
            "namePrefix",
            "region",
            "retentionInDays",
            "skipDestroy",
            "tags",
        }
    )
    force_new = frozenset({"name", "namePrefix", "logGroupClass", "region"})
    name_property = "name"
    name_prefix_property = "namePrefix"
    name_max_length = 512
    taggable = True
    output_defaults = {
        "kmsKeyId": "",
        "logGroupClass": "STANDARD",
        "retentionInDays": 0,
        "skipDestroy": False,
    }

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = expect(inputs, "skipDestroy", bool, "a boolean")
        failures += expect(inputs, "tags", dict, "a map of strings")
        days = inputs.get("retentionInDays")
        bad_days = not isinstance(days, (int, float)) or days not in RETENTION_DAYS
        if days is not None and not wire.is_unknown(days) and bad_days:
            allowed = ", ".join(str(d) for d in RETENTION_DAYS)
            failures.append(("retentionInDays", f"{wire.normalize(days)!r}; allowed: {allowed}"))
        group_class = inputs.get("logGroupClass")
        if group_class is not None and group_class not in (*LOG_GROUP_CLASSES, wire.UNKNOWN):
            allowed = ", ".join(LOG_GROUP_CLASSES)
            failures.append(("logGroupClass", f"{group_class!r}; allowed: {allowed}"))
        return failures

    def _logs(self, session: Session, inputs: dict[str, Any]) -> Any:
        return session.client("logs", self.region(session, inputs))

    def create(self, session: Session, inputs: dict[str, Any]) -> str:
        logs = self._logs(session, inputs)
        name = inputs["name"]
        params: dict[str, Any] = {"logGroupName": name}
        if inputs.get("kmsKeyId"):
            params["kmsKeyId"] = inputs["kmsKeyId"]
        if inputs.get("logGroupClass"):
            params["logGroupClass"] = inputs["logGroupClass"]
        tags = self.all_tags(session, inputs)
        if tags:
            params["tags"] = tags
        logs.create_log_group(**params)
        if inputs.get("retentionInDays"):
            logs.put_retention_policy(
                logGroupName=name, retentionInDays=as_int(inputs["retentionInDays"])
            )
        return name

    def read(self, session: Session, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        logs = self._logs(session, inputs)
        groups = logs.describe_log_groups(logGroupNamePrefix=id_).get("logGroups", [])
        group = next((g for g in groups if g["logGroupName"] == id_), None)
        if group is None:
            return None
        tags = logs.list_tags_log_group(logGroupName=id_).get("tags", {})
        observed = {
            "name": id_,
            "arn": group["arn"].removesuffix(":*"),
            "retentionInDays": group.get("retentionInDays", 0),
            "kmsKeyId": group.get("kmsKeyId", ""),
            "logGroupClass": group.get("logGroupClass") or "STANDARD",
        }
        observed.update(self.tag_outputs(session, inputs, tags))
        return observed

    def update(
        self, session: Session, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> None:
        logs = self._logs(session, news)
        if (olds.get("kmsKeyId") or "") != (news.get("kmsKeyId") or ""):
            raise RuntimeError(
                f"{self.token}: the aws test double does not implement changing kmsKeyId"
            )
        old_days, new_days = olds.get("retentionInDays") or 0, news.get("retentionInDays") or 0
        if old_days != new_days:
            if new_days:
                logs.put_retention_policy(logGroupName=id_, retentionInDays=as_int(new_days))
            else:
                logs.delete_retention_policy(logGroupName=id_)
        old_tags, new_tags = self.all_tags(session, olds), self.all_tags(session, news)
        removed = sorted(set(old_tags) - set(new_tags))
        if removed:
            logs.untag_log_group(logGroupName=id_, tags=removed)
        changed = {k: v for k, v in new_tags.items() if old_tags.get(k) != v}
        if changed:
            logs.tag_log_group(logGroupName=id_, tags=changed)

    def delete(self, session: Session, id_: str, state: dict[str, Any]) -> None:
        if state.get("skipDestroy"):
            return  # upstream only forgets it
        try:
            self._logs(session, state).delete_log_group(logGroupName=id_)
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
