"""A policy pack that does nothing: the baseline the guardrails pack is measured against."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationPolicy,
    StackValidationPolicy,
)


def _nothing(args, report_violation):
    return None


PolicyPack(
    name="noop-pack",
    policies=[
        ResourceValidationPolicy(
            name="noop-resource",
            description="Does nothing.",
            validate=_nothing,
            enforcement_level=EnforcementLevel.MANDATORY,
        ),
        StackValidationPolicy(
            name="noop-stack",
            description="Does nothing.",
            validate=_nothing,
            enforcement_level=EnforcementLevel.MANDATORY,
        ),
    ],
)
