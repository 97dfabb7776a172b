"""``MicrovmImageResource``: the dynamic resource (token
``pulumi-python:dynamic/lambda-microvms:MicrovmImage``) that the component creates.

Its props are the provider's camelCase properties (see ``spec.py``); outputs declared here as
``None`` become attributes (``resource.imageArn`` …).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.dynamic as dyn

from .provider import MicrovmImageProvider

OUTPUT_KEYS = (
    "name",
    "imageArn",
    "imageVersion",
    "versionState",
    "latestActiveImageVersion",
    "latestFailedImageVersion",
    "state",
    "resolvedBaseImageVersion",
    "retainedVersions",
    "builds",
    "logGroup",
)
SECRET_OUTPUTS = ["secretEnvironmentVariables"]


class MicrovmImageResource(dyn.Resource, module="lambda-microvms", name="MicrovmImage"):
    """A Lambda MicroVM image managed by :class:`MicrovmImageProvider`."""

    name: pulumi.Output[str]
    imageArn: pulumi.Output[str]
    imageVersion: pulumi.Output[str]
    versionState: pulumi.Output[str]
    latestActiveImageVersion: pulumi.Output[str]
    latestFailedImageVersion: pulumi.Output[str]
    state: pulumi.Output[str]
    resolvedBaseImageVersion: pulumi.Output[str]
    retainedVersions: pulumi.Output[list[str]]
    builds: pulumi.Output[list[dict[str, Any]]]
    logGroup: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        props: dict[str, Any],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = dict(props)
        # Seed for the default name suffix: stable across runs of this stack (the Python dynamic
        # provider is not told the URN or the engine's random seed in check/create).
        props.setdefault("nameSeed", f"{pulumi.get_project()}/{pulumi.get_stack()}/{resource_name}")
        for key in OUTPUT_KEYS:
            props.setdefault(key, None)
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        )
        super().__init__(MicrovmImageProvider(), resource_name, props, opts)
