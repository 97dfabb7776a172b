"""Regions: MicroVMs only exist in a few regions, and each environment deploys to its own."""

from __future__ import annotations

from typing import Any

from graph import (
    COMMAND,
    DYNAMIC_IMAGE,
    IMAGE_TYPES,
    MICROVM,
    Graph,
    ReportViolation,
    Res,
    artifact_buckets,
    config_of,
    guarded,
    resolve_environment,
    unverifiable,
)
from iam_docs import is_unknown
from policy_metadata import meta
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    StackValidationArgs,
    StackValidationPolicy,
)

SUPPORTED_REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1"]
DEFAULT_ALLOWED_BY_ENVIRONMENT = {env: list(SUPPORTED_REGIONS) for env in ("dev", "prod", "local")}
MICROVM_TYPES = (*IMAGE_TYPES, MICROVM)
COMMAND_REGION_ENV = "MICROVMS_REGION"  # how components.runs passes the region to the CLI


def is_judged(res: Res) -> bool:
    """Regional AWS resources and our dynamic image; IAM is global; providers/components skipped."""
    if res.type == DYNAMIC_IMAGE:
        return True
    if not res.type.startswith("aws:"):
        return False
    return not res.type.startswith("aws:iam/")


def effective_region(res: Res) -> tuple[str | None, str]:
    """(region, source). region is the unknown sentinel if unknown, None if nowhere."""
    own = res.get("region")
    if isinstance(own, str) and own and not res.provider_computed("region"):
        return own, "its own 'region'"
    provider = res.provider_props
    if provider is not None:
        region = provider.get("region")
        if isinstance(region, str) and region:
            return region, f"its provider's 'region', {res.provider_type}"
    return None, "nowhere"


def evaluate(graph: Graph, config: dict[str, Any]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    supported = config.get("supportedRegions") or list(SUPPORTED_REGIONS)
    by_env = config.get("allowedRegionsByEnvironment")
    if by_env is None:
        by_env = DEFAULT_ALLOWED_BY_ENVIRONMENT
    environment, source = resolve_environment(
        config.get("environment"), (res.urn for res in graph.resources)
    )
    allowed: list[str] | None = None
    if environment is None:
        out.append(
            (
                "The stack's environment cannot be determined (no policy config 'environment', no "
                "stack config 'lambda-microvms:environment', no stack name, no single stack in the "
                "resources' URNs), so regions cannot be checked; it fails closed. Fix: set "
                "'environment' in the policy config.",
                None,
            )
        )
    elif environment not in by_env:
        out.append(
            (
                f"Environment {environment!r} (from {source}) has no entry in "
                f"allowedRegionsByEnvironment ({', '.join(sorted(by_env)) or 'empty'}); a missing entry "
                "is not 'no restriction'. Fix: add an entry for it to the policy config.",
                None,
            )
        )
    else:
        allowed = list(by_env[environment])

    regions: dict[str, Any] = {}
    for res in graph.resources:
        if not is_judged(res):
            continue
        region, where = effective_region(res)
        regions[res.urn] = region
        if region is None:
            out.append(
                (
                    f"{res.label()} has no region on itself or its provider; it would come from "
                    "AWS_REGION at run time and cannot be checked. Fix: set 'aws:region' in the "
                    "stack config or 'region' on the provider.",
                    res.urn,
                )
            )
            continue
        if is_unknown(region):
            out.append((unverifiable(res.label(), "region", "use a literal region"), res.urn))
            continue
        message = _region_problem(
            res, region, where, res.type in MICROVM_TYPES, supported, allowed, environment
        )
        if message:
            out.append((message, res.urn))

    for cmd in graph.of_type(COMMAND):
        out.extend(_command_findings(cmd, supported, allowed, environment))

    for image in graph.of_type(*IMAGE_TYPES):
        image_region = regions.get(image.urn)
        if not isinstance(image_region, str) or is_unknown(image_region):
            continue
        buckets, problem = artifact_buckets(graph, image)
        if problem == "unknown":
            out.append(
                (
                    unverifiable(
                        image.label(),
                        "codeArtifact.uri",
                        "derive the bucket from a bucket in this stack",
                    ),
                    image.urn,
                )
            )
            continue
        if problem:
            out.append(
                (
                    f"{image.label()}: {problem}; it fails closed. The artifact bucket must be in the "
                    f"image's region ({image_region}). Fix: create the bucket in this stack.",
                    image.urn,
                )
            )
            continue
        for bucket in buckets:
            bucket_region = regions.get(bucket.urn)
            if bucket_region is None or is_unknown(bucket_region):
                continue  # already reported above
            if bucket_region != image_region:
                out.append(
                    (
                        f"{image.label()} is in {image_region} but its artifact bucket "
                        f"{bucket.label()} is in {bucket_region}; builds fail with "
                        "S3_CROSS_REGION_ACCESS_DENIED. Fix: put the bucket in the image's region.",
                        image.urn,
                    )
                )
    return out


def _region_problem(
    res: Res,
    region: str,
    where: str,
    microvm: bool,
    supported: list[str],
    allowed: list[str] | None,
    environment: str | None,
) -> str | None:
    """One message per resource: an unsupported MicroVM region is one cause, not two."""
    if microvm and region not in supported:
        fits = [r for r in supported if allowed is None or r in allowed] or supported
        return (
            f"{res.label()} is in {region}, from {where}, where Lambda MicroVMs are not "
            f"available. Fix: use one of {', '.join(fits)}."
        )
    if allowed is not None and region not in allowed:
        return (
            f"{res.label()} is in {region}, from {where}, which environment {environment!r} "
            f"does not allow. Fix: deploy to one of {', '.join(allowed) or 'no region'} or "
            "change allowedRegionsByEnvironment."
        )
    return None


def _command_findings(
    cmd: Res, supported: list[str], allowed: list[str] | None, environment: str | None
) -> list[tuple[str, str | None]]:
    """A command that runs ``python -m microvms`` creates MicroVMs in ``MICROVMS_REGION``."""
    env = cmd.get("environment")
    if is_unknown(env):
        return [
            (
                unverifiable(
                    cmd.label(),
                    "environment",
                    f"build the environment as a map so {COMMAND_REGION_ENV} is its own entry",
                ),
                cmd.urn,
            )
        ]
    if not isinstance(env, dict) or not any(str(k).startswith("MICROVMS_") for k in env):
        return []  # not a MicroVM command
    region = env.get(COMMAND_REGION_ENV)
    where = f"its environment's {COMMAND_REGION_ENV}"
    if region is None:
        region, where = env.get("AWS_REGION"), "its environment's AWS_REGION"
    if is_unknown(region):
        name = COMMAND_REGION_ENV if COMMAND_REGION_ENV in env else "AWS_REGION"
        return [(unverifiable(cmd.label(), f"environment.{name}", "use a literal region"), cmd.urn)]
    if not isinstance(region, str) or not region:
        return [
            (
                f"{cmd.label()} runs MicroVMs but its environment sets no {COMMAND_REGION_ENV}; "
                "the region would come from wherever pulumi runs and cannot be checked. "
                f"Fix: set {COMMAND_REGION_ENV} in the command's environment.",
                cmd.urn,
            )
        ]
    message = _region_problem(cmd, region, where, True, supported, allowed, environment)
    return [(message, cmd.urn)] if message else []


@guarded("microvm-regions")
def _validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for message, urn in evaluate(Graph.from_args(args), config_of(args)):
        if urn:
            report_violation(message, urn)
        else:
            report_violation(message)


microvm_regions = StackValidationPolicy(
    name="microvm-regions",
    description=(
        "MicroVM images and MicroVMs must be in a supported region, their artifact bucket in the "
        "same region, and every regional resource in a region the environment allows."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "supportedRegions": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(SUPPORTED_REGIONS),
                "description": "Regions where Lambda MicroVMs are available.",
            },
            "allowedRegionsByEnvironment": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "default": DEFAULT_ALLOWED_BY_ENVIRONMENT,
                "description": "environment → regions its resources may be in; a missing entry fails.",
            },
            "environment": {
                "type": "string",
                "description": "Overrides stack config lambda-microvms:environment and the stack name.",
            },
        }
    ),
    validate=_validate,
    **meta("microvm-regions"),
)
