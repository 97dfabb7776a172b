"""``MicrovmImage``: the component (token ``lambda-microvms:image:MicrovmImage``).

Turns typed, snake_case args into the provider's camelCase properties and creates one
``MicrovmImageResource`` child named ``f"{name}-image"``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from .resource import MicrovmImageResource
from .spec import BUILD_KEYS, plain_numbers


@dataclass
class MicrovmImageArgs:
    """Inputs of a MicroVM image. ``None`` leaves a setting to the provider's ``check``, which
    fills in the defaults (``spec.fill_defaults``: the service's own where it has one)."""

    artifact_uri: pulumi.Input[str]
    """``s3://bucket/key.zip`` with a Dockerfile at the zip root; same region as the image."""
    build_role_arn: pulumi.Input[str]
    """IAM role the service assumes to build (reads the artifact, writes build logs)."""
    region: pulumi.Input[str] | None = None
    """Region of the image; defaults to ``aws:region``. Changing it replaces the image."""
    adopt_arn: str | None = None
    """An existing image to take over (imported on the first up; its name becomes ``image_name``)."""
    image_name: pulumi.Input[str] | None = None
    """Exact image name. Omit it to get ``<name_prefix>-<stable suffix>`` (deleted names are
    reserved forever, so generated names avoid collisions on replacement)."""
    name_prefix: str | None = None
    """Prefix of the generated name; defaults to the component name."""
    memory_mib: pulumi.Input[int] | None = None
    """Baseline memory: 512, 1024, 2048 (the default), 4096 or 8192 MiB."""
    architecture: str | None = None
    """CPU architecture; the service builds ARM_64 (Graviton, the default) only."""
    base_image_arn: pulumi.Input[str] | None = None
    """Managed base image; defaults to ``arn:aws:lambda:<region>:aws:microvm-image:al2023-1``."""
    base_image_version: pulumi.Input[str] | None = None
    """Major base version such as ``"1"``; omitted = latest."""
    hooks: pulumi.Input[Mapping[str, Any]] | None = None
    """The API's hooks object: ``{port, microvmImageHooks: {ready, …}, microvmHooks: {run, …}}``."""
    environment_variables: pulumi.Input[Mapping[str, str]] | None = None
    """Plain environment variables (visible in state)."""
    secret_environment_variables: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None
    """Environment variables whose values stay secret in state, previews and logs."""
    tags: pulumi.Input[Mapping[str, str]] | None = None
    """Tags; changing only tags never rebuilds."""
    endpoint_url: pulumi.Input[str] | None = None
    """API endpoint override (the local emulator); else ``AWS_ENDPOINT_URL_*`` apply."""
    keep_versions: int | None = None
    """How many newest versions to keep (default 3); older ones are set INACTIVE and deleted."""
    build_timeout_minutes: int | None = None
    """Give up waiting for a build after this long (default 30; the failed build is cleaned up)."""
    terminate_microvms_on_delete: bool | None = None
    """On delete, terminate MicroVMs still running this image instead of refusing (default no)."""
    description: pulumi.Input[str] | None = None
    """Free-text description."""
    logging: pulumi.Input[Mapping[str, Any]] | None = None
    """``{"cloudWatch": {"logGroup": …, "logStream": …}}`` or ``{"disabled": {}}``."""
    egress_network_connectors: Sequence[pulumi.Input[str]] | None = None
    """At most one egress connector ARN (or ``INTERNET_EGRESS``, the default)."""
    additional_os_capabilities: Sequence[str] = field(default_factory=list)
    """``["ALL"]`` or empty."""
    active_version: str | None = None
    """A retained version (``"<n>.0"``) to make the active one (a rollback without a rebuild);
    None = the newest version is active."""
    protect: bool = False
    """Protect the image (``pulumi destroy`` refuses) and retain it if it leaves the program
    (the stack's ``protect``). Not a provider property: resource options of the child."""


def image_props(name: str, args: MicrovmImageArgs) -> dict[str, Any]:
    """The provider properties for ``args`` (pure; ``None`` members are left out)."""
    region = args.region or pulumi.Config("aws").get("region")
    props: dict[str, Any] = {
        "name": args.image_name,
        "namePrefix": None if args.image_name else (args.name_prefix or name),
        "region": region,
        "baseImageArn": args.base_image_arn,
        "baseImageVersion": args.base_image_version,
        "buildRoleArn": args.build_role_arn,
        "codeArtifact": {"uri": args.artifact_uri},
        "description": args.description,
        "logging": args.logging,
        "egressNetworkConnectors": list(args.egress_network_connectors)
        if args.egress_network_connectors
        else None,
        "cpuConfigurations": [{"architecture": args.architecture}] if args.architecture else None,
        "resources": [{"minimumMemoryInMiB": args.memory_mib}]
        if args.memory_mib is not None
        else None,
        "additionalOsCapabilities": list(args.additional_os_capabilities),
        "hooks": args.hooks,
        "environmentVariables": args.environment_variables or {},
        "secretEnvironmentVariables": pulumi.Output.secret(args.secret_environment_variables)
        if args.secret_environment_variables
        else {},
        "tags": args.tags or {},
        "endpointUrl": args.endpoint_url,
        "keepVersions": args.keep_versions,
        "buildTimeoutMinutes": args.build_timeout_minutes,
        "terminateMicrovmsOnDelete": args.terminate_microvms_on_delete,
        "activeVersion": args.active_version,
    }
    return {k: v for k, v in props.items() if v is not None}


def fingerprint_of(build: Mapping[str, Any]) -> str:
    """A short digest of the build configuration (pure)."""
    text = json.dumps(
        plain_numbers(dict(build)), sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_fingerprint(props: Mapping[str, Any]) -> pulumi.Output[str]:
    """Digest of the properties a new version is built from (``spec.BUILD_KEYS``).

    It changes exactly when an update builds a new version, and it is computed from the inputs,
    so a preview knows it (the image's own outputs are unknown in a preview of an update).
    """
    build = {k: props[k] for k in BUILD_KEYS if k in props}
    return pulumi.Output.from_input(build).apply(fingerprint_of)


class MicrovmImage(pulumi.ComponentResource):
    """A MicroVM image built from an artifact in S3 by a build role.

    Outputs: ``image_arn``, ``image_name``, ``image_version`` (the version this state
    corresponds to), ``latest_active_image_version``, ``state``, ``resource`` (the child).
    """

    def __init__(
        self, name: str, args: MicrovmImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-microvms:image:MicrovmImage", name, None, opts)
        if args.adopt_arn:
            # The adopted image keeps its name; Create takes it over instead of making one (the
            # engine cannot import a Python dynamic resource: see MicrovmImageProvider._adopt).
            args = dataclasses.replace(args, image_name=args.adopt_arn.rsplit(":", 1)[1])
        props = image_props(name, args)
        if args.adopt_arn:
            props["adoptArn"] = args.adopt_arn
        child = pulumi.ResourceOptions(parent=self)
        if args.protect:
            child = pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(protect=True, retain_on_delete=True)
            )
        self.resource = MicrovmImageResource(f"{name}-image", props, child)
        # The id is the ARN, and unlike the outputs it stays known in a preview of an update.
        self.image_arn = self.resource.id
        self.build_fingerprint = build_fingerprint(props)
        self.image_name = self.resource.name
        self.image_version = self.resource.imageVersion
        self.latest_active_image_version = self.resource.latestActiveImageVersion
        self.state = self.resource.state
        self.register_outputs(
            {
                "imageArn": self.image_arn,
                "imageName": self.image_name,
                "imageVersion": self.image_version,
                "latestActiveImageVersion": self.latest_active_image_version,
                "state": self.state,
            }
        )
