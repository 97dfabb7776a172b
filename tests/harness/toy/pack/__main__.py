"""Toy policy pack: one resource policy, one stack policy with a config schema."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)

TAGGED_TYPES = ("aws:s3/bucket:Bucket", "aws:iam/role:Role")


def _owner_tag(args, report_violation):
    if args.resource_type not in TAGGED_TYPES:
        return
    region = args.provider.props.get("region") if args.provider else None
    tags = args.props.get("tags") or {}
    if "owner" not in tags:
        report_violation(f"{args.name} (region {region}) has no 'owner' tag; tags: {sorted(tags)}")


owner_tag = ResourceValidationPolicy(
    name="toy-owner-tag",
    description="Buckets and roles carry an owner tag.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_owner_tag,
)


def _stack_shape(args, report_violation):
    cfg = args.get_config()
    if len(args.resources) > cfg["maxResources"]:
        report_violation(
            f"{len(args.resources)} resources exceed maxResources={cfg['maxResources']}"
        )
    files = [r for r in args.resources if r.resource_type == "pulumi-python:dynamic/toy:File"]
    for f in files:
        if cfg["requireRoleDependency"] and not any(
            d.resource_type == "aws:iam/role:Role" for d in f.dependencies
        ):
            report_violation("the toy file must depend on the IAM role", f.urn)
        deps = [d.name for d in f.property_dependencies.get("content", [])]
        parent = f.parent.resource_type if f.parent else None
        content = f.props["content"]  # unknown during preview: aborts this policy
        if not content.startswith("bucket=arn:aws:s3:::"):
            report_violation(f"content {content!r} (deps {deps}, parent {parent})", f.urn)
        else:
            report_violation(f"ok: content from {deps} under {parent}", f.urn)


stack_shape = StackValidationPolicy(
    name="toy-stack-shape",
    description="The toy stack stays small and wired correctly.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_stack_shape,
    config_schema=PolicyConfigSchema(
        properties={
            "maxResources": {"type": "integer", "minimum": 1, "default": 50},
            "requireRoleDependency": {"type": "boolean", "default": True},
        },
    ),
)

PolicyPack(name="toy-pack", policies=[owner_tag, stack_shape])
