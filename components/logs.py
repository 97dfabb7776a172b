"""``ImageLogGroup``: the CloudWatch log group one MicroVM image's builds and VMs write to.

It is its own component, not a child of either role: both roles are granted writes to it, the
image (builds) and its MicroVMs use it, and it must outlive a role replacement. Owning it in
one role would make the other role depend on that one for no reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.protection import protection
from components.roles import log_group_name


@dataclass
class ImageLogGroupArgs:
    """Inputs of ``ImageLogGroup``."""

    image_name: str
    """MicroVM image; the group is ``/aws/lambda-microvms/<image-name>``."""
    retention_days: int
    """Retention in days (config ``logRetentionDays``; one of CloudWatch's allowed values)."""
    region: str | None = None
    """Region of the group (the image's); None = the provider's."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on the log group."""
    protect: bool = False
    """Protect the log group (``pulumi destroy`` refuses) and retain it if it leaves the program."""


class ImageLogGroup(pulumi.ComponentResource):
    """Creates the log group up front, so retention is ours (a group the service creates on
    first write keeps its logs forever) and the roles can be scoped to exactly this ARN."""

    def __init__(
        self, name: str, args: ImageLogGroupArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-microvms:logs:ImageLogGroup", name, None, opts)
        self.log_group_name: str = log_group_name(args.image_name)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-log-group",
            name=self.log_group_name,
            retention_in_days=args.retention_days,
            region=args.region,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=self), protection(args.protect)
            ),
        )
        self.group_name: pulumi.Output[str] = self.log_group.name
        self.arn: pulumi.Output[str] = self.log_group.arn

        self.register_outputs({"name": self.log_group.name, "arn": self.log_group.arn})
