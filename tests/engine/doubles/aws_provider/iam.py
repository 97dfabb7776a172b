"""``aws:iam/role:Role``, ``aws:iam/rolePolicy:RolePolicy`` and
``aws:iam/rolePolicyAttachment:RolePolicyAttachment`` against IAM (moto) with boto3."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from tests.engine.doubles.aws_provider import wire
from tests.engine.doubles.aws_provider.base import (
    ResourceType,
    as_int,
    error_code,
    expect,
    json_equivalent,
    require,
)
from tests.engine.doubles.aws_provider.config import Session


def _document(value: Any) -> str:
    """IAM returns documents URL-decoded (boto3 parses them to dicts); keep a JSON string."""
    return value if isinstance(value, str) else json.dumps(value)


def _json_failures(inputs: dict[str, Any], key: str) -> list[tuple[str, str]]:
    value = inputs.get(key)
    if isinstance(value, str) and not wire.contains_unknown(value):
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            return [(key, f"not a JSON document: {exc}")]
    return []


class Role(ResourceType):
    token = "aws:iam/role:Role"
    inputs = frozenset(
        {
            "assumeRolePolicy",
            "description",
            "forceDetachPolicies",
            "maxSessionDuration",
            "name",
            "namePrefix",
            "path",
            "permissionsBoundary",
            "tags",
        }
    )
    force_new = frozenset({"name", "namePrefix", "path"})
    name_property = "name"
    name_prefix_property = "namePrefix"
    name_max_length = 64
    regional = False
    taggable = True
    output_defaults = {
        "forceDetachPolicies": False,
        "maxSessionDuration": 3600,
        "path": "/",
        "description": "",
        "permissionsBoundary": "",
    }

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        failures = require(inputs, "assumeRolePolicy") + _json_failures(inputs, "assumeRolePolicy")
        failures += expect(inputs, "forceDetachPolicies", bool, "a boolean")
        failures += expect(inputs, "maxSessionDuration", (int, float), "a number of seconds")
        failures += expect(inputs, "tags", dict, "a map of strings")
        return failures

    def create(self, session: Session, inputs: dict[str, Any]) -> str:
        iam = session.client("iam")
        params: dict[str, Any] = {
            "RoleName": inputs["name"],
            "AssumeRolePolicyDocument": inputs["assumeRolePolicy"],
            "Path": inputs.get("path") or "/",
        }
        if inputs.get("description"):
            params["Description"] = inputs["description"]
        if inputs.get("maxSessionDuration"):
            params["MaxSessionDuration"] = as_int(inputs["maxSessionDuration"])
        if inputs.get("permissionsBoundary"):
            params["PermissionsBoundary"] = inputs["permissionsBoundary"]
        tags = self.all_tags(session, inputs)
        if tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        iam.create_role(**params)
        return inputs["name"]

    def read(self, session: Session, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        iam = session.client("iam")
        try:
            role = iam.get_role(RoleName=id_)["Role"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        policy = _document(role["AssumeRolePolicyDocument"])
        wanted = inputs.get("assumeRolePolicy")
        tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=id_).get("Tags", [])}
        observed = {
            "arn": role["Arn"],
            "name": role["RoleName"],
            "uniqueId": role["RoleId"],
            "path": role.get("Path", "/"),
            "createDate": role["CreateDate"].isoformat().replace("+00:00", "Z"),
            "maxSessionDuration": role.get("MaxSessionDuration", 3600),
            "description": role.get("Description", ""),
            "assumeRolePolicy": wanted if json_equivalent(wanted, policy) else policy,
            "permissionsBoundary": (role.get("PermissionsBoundary") or {}).get(
                "PermissionsBoundaryArn", ""
            ),
        }
        observed.update(self.tag_outputs(session, inputs, tags))
        return observed

    def update(
        self, session: Session, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> None:
        iam = session.client("iam")
        if not json_equivalent(olds.get("assumeRolePolicy"), news["assumeRolePolicy"]):
            iam.update_assume_role_policy(RoleName=id_, PolicyDocument=news["assumeRolePolicy"])
        if (olds.get("description") or "") != (news.get("description") or "") or olds.get(
            "maxSessionDuration"
        ) != news.get("maxSessionDuration"):
            iam.update_role(
                RoleName=id_,
                Description=news.get("description") or "",
                MaxSessionDuration=as_int(news.get("maxSessionDuration") or 3600),
            )
        if (olds.get("permissionsBoundary") or "") != (news.get("permissionsBoundary") or ""):
            if news.get("permissionsBoundary"):
                iam.put_role_permissions_boundary(
                    RoleName=id_, PermissionsBoundary=news["permissionsBoundary"]
                )
            else:
                iam.delete_role_permissions_boundary(RoleName=id_)
        old_tags, new_tags = self.all_tags(session, olds), self.all_tags(session, news)
        removed = sorted(set(old_tags) - set(new_tags))
        if removed:
            iam.untag_role(RoleName=id_, TagKeys=removed)
        changed = {k: v for k, v in new_tags.items() if old_tags.get(k) != v}
        if changed:
            iam.tag_role(
                RoleName=id_, Tags=[{"Key": k, "Value": v} for k, v in sorted(changed.items())]
            )

    def delete(self, session: Session, id_: str, state: dict[str, Any]) -> None:
        iam = session.client("iam")
        try:
            for profile in iam.list_instance_profiles_for_role(RoleName=id_)["InstanceProfiles"]:
                iam.remove_role_from_instance_profile(
                    InstanceProfileName=profile["InstanceProfileName"], RoleName=id_
                )
            if state.get("forceDetachPolicies"):
                for policy in iam.list_attached_role_policies(RoleName=id_)["AttachedPolicies"]:
                    iam.detach_role_policy(RoleName=id_, PolicyArn=policy["PolicyArn"])
                for name in iam.list_role_policies(RoleName=id_)["PolicyNames"]:
                    iam.delete_role_policy(RoleName=id_, PolicyName=name)
            iam.delete_role(RoleName=id_)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return
            raise RuntimeError(f"deleting IAM Role ({id_}): {exc}") from None


class RolePolicy(ResourceType):
    token = "aws:iam/rolePolicy:RolePolicy"
    inputs = frozenset({"name", "namePrefix", "policy", "role"})
    force_new = frozenset({"name", "namePrefix", "role"})
    name_property = "name"
    name_prefix_property = "namePrefix"
    name_max_length = 128
    regional = False

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        return require(inputs, "policy", "role") + _json_failures(inputs, "policy")

    @staticmethod
    def _split(id_: str) -> tuple[str, str]:
        role, _, name = id_.partition(":")
        return role, name

    def create(self, session: Session, inputs: dict[str, Any]) -> str:
        session.client("iam").put_role_policy(
            RoleName=inputs["role"], PolicyName=inputs["name"], PolicyDocument=inputs["policy"]
        )
        return f"{inputs['role']}:{inputs['name']}"

    def read(self, session: Session, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        role, name = self._split(id_)
        try:
            response = session.client("iam").get_role_policy(RoleName=role, PolicyName=name)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        actual = _document(response["PolicyDocument"])
        wanted = inputs.get("policy")
        return {
            "role": role,
            "name": name,
            "policy": wanted if json_equivalent(wanted, actual) else actual,
        }

    def update(
        self, session: Session, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> None:
        self.create(session, news)

    def delete(self, session: Session, id_: str, state: dict[str, Any]) -> None:
        role, name = self._split(id_)
        try:
            session.client("iam").delete_role_policy(RoleName=role, PolicyName=name)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise


class RolePolicyAttachment(ResourceType):
    token = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    inputs = frozenset({"policyArn", "role"})
    force_new = frozenset({"policyArn", "role"})
    regional = False

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        return require(inputs, "policyArn", "role")

    def create(self, session: Session, inputs: dict[str, Any]) -> str:
        session.client("iam").attach_role_policy(
            RoleName=inputs["role"], PolicyArn=inputs["policyArn"]
        )
        # Upstream's id is ``<role>-<unique suffix>``; the suffix here is derived, not timed.
        digest = hashlib.sha256(f"{inputs['role']}|{inputs['policyArn']}".encode()).hexdigest()
        return f"{inputs['role']}-{digest[:26]}"

    def read(self, session: Session, id_: str, inputs: dict[str, Any]) -> dict[str, Any] | None:
        role, arn = inputs.get("role"), inputs.get("policyArn")
        if not (role and arn):
            role, _, arn = id_.partition("/")  # import id: <role>/<policy arn>
        try:
            attached = session.client("iam").list_attached_role_policies(RoleName=role)
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise
        if arn not in {p["PolicyArn"] for p in attached["AttachedPolicies"]}:
            return None
        return {"role": role, "policyArn": arn}

    def delete(self, session: Session, id_: str, state: dict[str, Any]) -> None:
        try:
            session.client("iam").detach_role_policy(
                RoleName=state["role"], PolicyArn=state["policyArn"]
            )
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
