"""State and ARNs of images, versions, builds, MicroVMs and auth tokens.

One :class:`EmulatorState` holds every region's :class:`RegionBackend`, the shared clock, settings,
fault injection, auth tokens and call counters. All mutation happens under one re-entrant lock.
How things move from state to state over time (builds, hooks, idle and duration timers) is in
``lifecycle.py``.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import random
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import hooks as hook_calls
from .clock import Clock
from .connectors import ConnectorBackend
from .exceptions import (
    AccessDeniedException,
    ConflictException,
    ResourceNotFoundException,
    ServiceQuotaExceededException,
    ValidationException,
)
from .lifecycle import Lifecycle

MANAGED_ACCOUNT = "aws"
MANAGED_IMAGE_NAME = "al2023-1"
# Recorded catalogue of the managed base image (docs/service-facts.md §4.1, §5): versions "1" and "0", newest first.
MANAGED_VERSIONS: tuple[dict[str, Any], ...] = (
    {"imageVersion": "1", "createdAt": 1784165751.854, "updatedAt": 1784165751.854},
    {"imageVersion": "0", "createdAt": 1782086400.0, "updatedAt": 1782086400.0},
)
MANAGED_IMAGE_CREATED = 1782086400.0
SUPPORTED_MEMORY_MIB = (512, 1024, 2048, 4096, 8192)
DEFAULT_MEMORY_MIB = 2048
SUPPORTED_ARCHITECTURES = ("ARM_64",)
DEFAULT_MAX_DURATION = 28800
MAX_TOKEN_MINUTES = 60
GRAVITON_GENERATIONS = ("4", "3")
SNAPSHOT_BUILD = {
    "codeInstallSizeInBytes": 186400768,
    "diskSnapshotSizeInBytes": 25600000,
    "memorySnapshotSizeInBytes": 609087488,
}
BUILD_SETTING_KEYS = (
    "additionalOsCapabilities",
    "baseImageArn",
    "baseImageVersion",
    "buildRoleArn",
    "codeArtifact",
    "cpuConfigurations",
    "description",
    "egressNetworkConnectors",
    "environmentVariables",
    "hooks",
    "logging",
    "resources",
)
# Members the live recordings predate (botocore 1.44.8 added ``kmsKeyIdentifier``,
# docs/service-facts.md §18 "Model drift"): kept and answered where the model's output shapes have
# them, but only when set, so the recorded bodies (which never show them) still replay unchanged.
KMS_KEY = "kmsKeyIdentifier"
RUNTIME_HOOKS = ("run", "resume", "suspend", "terminate")
LIVE_VM_STATES = ("PENDING", "RUNNING", "SUSPENDING", "SUSPENDED", "TERMINATING")

MSG_READY_HOOK_REQUIRED = (
    "The ready (/ready) MicroVM image hook must be enabled when any MicroVM lifecycle hook "
    "(run, resume, suspend, or terminate) is enabled. The ready hook signals when the application "
    "has finished initializing so the snapshot is taken in a ready state."
)
MSG_RUN_HOOK_PAYLOAD = (
    "The run hook must be enabled in the MicroVM image to pass the run hook payload"
)
MSG_MALFORMED_ARN = "Malformed ARN - doesn't start with 'arn:'"
MSG_MALFORMED_CONNECTOR = "Malformed network connector ARN"
MSG_CLIENT_TOKEN = "The provided clientToken was used with different request parameters."
MSG_SHELL_INGRESS = (
    "Shell access requires SHELL_INGRESS network connector to be configured on the MicroVM."
)
MSG_RUNNING_VMS = "Cannot delete microvm image with running microvms."
MSG_MEMORY_QUOTA = "The base maximum allocated memory limit has been reached for this account."


def managed_image_arn(region: str) -> str:
    return f"arn:aws:lambda:{region}:{MANAGED_ACCOUNT}:microvm-image:{MANAGED_IMAGE_NAME}"


def managed_connector_arn(region: str, kind: str) -> str:
    return f"arn:aws:lambda:{region}:aws:network-connector:aws-network-connector:{kind}"


def image_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:microvm-image:{name}"


def normalize_version(version: str) -> str:
    """``"1"`` and ``"1.0"`` name the same image version (docs/service-facts.md §3)."""
    text = str(version).strip()
    if text.isascii() and text.isdigit():  # str.isdigit() also holds for "²", which int() refuses
        return f"{int(text)}.0"
    return text


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token() -> str:
    """A token shaped like the live compact JWE: 5 parts, empty key part, ~760 characters."""
    header = json.dumps(
        {"kid": str(uuid.uuid4()), "alg": "dir", "enc": "A256GCM"}, separators=(",", ":")
    ).encode()
    return ".".join(
        [_b64(header), "", _b64(os.urandom(12)), _b64(os.urandom(467)), _b64(os.urandom(16))]
    )


def token_is_well_formed(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 5 or parts[1] != "":
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, TypeError):
        return False
    return isinstance(header, dict) and "kid" in header and header.get("alg") == "dir"


def _time_bucket(state: str, when: float) -> str:
    return f"{state}#{datetime.fromtimestamp(when, UTC).strftime('%y%m%d%H')}"


@dataclass
class Settings:
    account_id: str = "123456789012"
    build_seconds: float = 1.0
    run_seconds: float = 0.5
    transition_seconds: float = 0.2
    delete_seconds: float = 0.5
    upstreams: dict[int, str] = field(default_factory=dict)
    s3_endpoint: str | None = None
    iam_endpoint: str | None = None
    memory_quota_mib: int | None = None
    hook_retry_interval: float = 0.1
    connector_seconds: float = 0.5


@dataclass
class Faults:
    throttle_rate: float = 0.0
    fail_next_builds: deque = field(default_factory=deque)
    latency_ms: float = 0.0

    def as_dict(self) -> dict:
        return {
            "throttleRate": self.throttle_rate,
            "failNextBuilds": list(self.fail_next_builds),
            "latencyMs": self.latency_ms,
        }


@dataclass
class Build:
    build_id: str
    generation: str
    created_at: float
    state: str = "PENDING"
    state_reason: str | None = None
    termination_reason_code: str | None = None


@dataclass
class Version:
    image: Image
    version: str
    settings: dict
    created_at: float
    done_at: float
    in_progress_at: float
    state: str = "PENDING"
    status: str = "ACTIVE"
    state_reason: str | None = None
    updated_at: float = 0.0
    state_changed_at: float = 0.0
    builds: list[Build] = field(default_factory=list)
    busy: bool = False
    delete_at: float | None = None
    first: bool = False

    @property
    def major(self) -> int:
        try:
            return int(self.version.split(".")[0])
        except ValueError:
            return 0

    def hooks_enabled(self, group: str, hook: str) -> bool:
        hooks = self.settings.get("hooks") or {}
        return (hooks.get(group) or {}).get(hook) == "ENABLED"

    def hook_timeout(self, group: str, hook: str, default: float) -> float:
        hooks = self.settings.get("hooks") or {}
        return float((hooks.get(group) or {}).get(f"{hook}TimeoutInSeconds") or default)

    @property
    def hook_port(self) -> int:
        hooks = self.settings.get("hooks") or {}
        return int(hooks.get("port") or hook_calls.DEFAULT_HOOK_PORT)

    @property
    def memory_mib(self) -> int:
        resources = self.settings.get("resources") or []
        if resources and resources[0].get("minimumMemoryInMiB"):
            return int(resources[0]["minimumMemoryInMiB"])
        return DEFAULT_MEMORY_MIB

    def set_state(self, state: str, when: float) -> None:
        self.state = state
        self.updated_at = when
        self.state_changed_at = when

    def describe(self) -> dict:
        data = {key: copy.deepcopy(self.settings.get(key)) for key in BUILD_SETTING_KEYS}
        data.update(
            {
                "imageArn": self.image.arn,
                "imageVersion": self.version,
                "state": self.state,
                "status": self.status,
                "stateReason": self.state_reason,
                "tags": None,
                "createdAt": self.created_at,
                "updatedAt": self.updated_at,
                "versionStateTimeBucket": _time_bucket(self.state, self.state_changed_at),
            }
        )
        if self.settings.get(KMS_KEY) is not None:
            data[KMS_KEY] = self.settings[KMS_KEY]
        return data

    def describe_build(self, build: Build, *, detail: bool = False) -> dict:
        data = {
            "architecture": "ARM_64",
            "buildId": build.build_id,
            "buildState": build.state,
            "chipset": "GRAVITON",
            "chipsetGeneration": build.generation,
            "createdAt": build.created_at,
            "imageArn": self.image.arn,
            "imageVersion": self.version,
            "stateReason": build.state_reason,
            "terminationReasonCode": build.termination_reason_code,
        }
        if detail:
            data["snapshotBuild"] = dict(SNAPSHOT_BUILD) if build.state == "SUCCESSFUL" else None
        return data


@dataclass
class Image:
    name: str
    arn: str
    region: str
    created_at: float
    image_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "CREATING"
    updated_at: float = 0.0
    tags: dict = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    delete_at: float | None = None
    max_major: int = 0

    def live_versions(self) -> list[Version]:
        return [v for v in self.versions.values() if v.state not in ("DELETING", "DELETED")]

    @property
    def latest_active(self) -> str | None:
        ok = [v for v in self.live_versions() if v.state == "SUCCESSFUL" and v.status == "ACTIVE"]
        return max(ok, key=lambda v: v.major).version if ok else None

    @property
    def latest_failed(self) -> str | None:
        failed = [v for v in self.versions.values() if v.state == "FAILED"]
        return max(failed, key=lambda v: v.major).version if failed else None

    def next_version(self) -> str:
        majors = [v.major for v in self.versions.values()] + [self.max_major]
        return f"{max(majors) + 1}.0"

    def summary(self) -> dict:
        return {
            "createdAt": self.created_at,
            "id": self.image_id,
            "imageArn": self.arn,
            "latestActiveImageVersion": self.latest_active,
            "latestFailedImageVersion": self.latest_failed,
            "name": self.name,
            "state": self.state,
        }

    def describe(self) -> dict:
        data = self.summary()
        data["tags"] = dict(self.tags)
        data["updatedAt"] = self.updated_at
        return data

    def describe_full(self, version: Version, *, tags) -> dict:
        data = {key: copy.deepcopy(version.settings.get(key)) for key in BUILD_SETTING_KEYS}
        data.update(self.summary())
        data.update(
            {
                "buildPhaseOverrides": None,
                "roleConfiguration": None,
                "imageVersion": version.version,
                "updatedAt": self.updated_at,
            }
        )
        if tags is not _ABSENT:
            data["tags"] = tags
        if version.settings.get(KMS_KEY) is not None:
            data[KMS_KEY] = version.settings[KMS_KEY]
        return data


_ABSENT = object()


@dataclass
class Microvm:
    microvm_id: str
    endpoint: str
    region: str
    image: Image
    version: Version
    started_at: float
    ready_at: float
    idle_policy: dict | None
    maximum_duration: int
    ingress: list[str]
    egress: list[str]
    execution_role_arn: str | None
    run_hook_payload: str | None
    memory_mib: int
    kms_key_identifier: str | None = None
    state: str = "PENDING"
    phase: str = "starting"  # while PENDING: "starting" (first run) or "resuming"
    state_reason: str | None = None
    terminated_at: float | None = None
    termination_reason_code: str | None = None
    next_at: float | None = None
    busy: bool = False
    last_activity: float = 0.0
    suspended_at: float | None = None
    was_running: bool = False

    def describe(self) -> dict:
        return {
            "egressNetworkConnectors": list(self.egress),
            "endpoint": self.endpoint,
            "executionRoleArn": self.execution_role_arn,
            "idlePolicy": copy.deepcopy(self.idle_policy),
            "imageArn": self.image.arn,
            "imageVersion": self.version.version,
            "ingressNetworkConnectors": list(self.ingress),
            "maximumDurationInSeconds": self.maximum_duration,
            "microvmId": self.microvm_id,
            "startedAt": self.started_at,
            "state": self.state,
            "stateReason": self.state_reason,
            "terminatedAt": self.terminated_at,
            "terminationReasonCode": self.termination_reason_code,
        } | ({KMS_KEY: self.kms_key_identifier} if self.kms_key_identifier is not None else {})

    def item(self) -> dict:
        return {
            "imageArn": self.image.arn,
            "imageVersion": self.version.version,
            "microvmId": self.microvm_id,
            "startedAt": self.started_at,
            "state": self.state,
        }

    def has_ingress(self, *kinds: str) -> bool:
        return any(arn.rsplit(":", 1)[-1] in kinds for arn in self.ingress)


@dataclass
class Grant:
    token: str
    microvm_id: str
    expires_at: float
    ports: list[dict]
    kind: str  # "http" or "shell"

    def allows(self, port: int) -> bool:
        for spec in self.ports:
            if "allPorts" in spec:
                return True
            if spec.get("port") == port:
                return True
            rng = spec.get("range")
            if rng and rng["startPort"] <= port <= rng["endPort"]:
                return True
        return False


class RegionBackend:
    """Images and MicroVMs of one region of the emulated account."""

    def __init__(self, state: EmulatorState, region: str):
        self.state = state
        self.region = region
        self.images: dict[str, Image] = {}
        self.vms: dict[str, Microvm] = {}
        self.connectors = ConnectorBackend(self)

    # ------------------------------------------------------------------ helpers
    @property
    def account(self) -> str:
        return self.state.settings.account_id

    @property
    def now(self) -> float:
        return self.state.clock.now()

    def _image_from_identifier(self, identifier: str, *, missing: str) -> Image:
        """Image routes need a full ARN (docs/service-facts.md §3): bare names get ``Invalid ARN format``."""
        if not identifier.startswith("arn:"):
            raise ValidationException(f"Invalid ARN format: {identifier}")
        parts = identifier.split(":", 6)
        if len(parts) != 7 or parts[5] != "microvm-image":
            raise ValidationException(f"Invalid ARN format: {identifier}")
        account = parts[4]
        if account not in (self.account, MANAGED_ACCOUNT):
            raise AccessDeniedException(
                f"User: arn:aws:iam::{self.account}:user/emulator is not authorized to access "
                f"resource: {identifier} because no resource-based policy allows it"
            )
        image = (
            self.images.get(parts[6])
            if parts[3] == self.region and account == self.account
            else None
        )
        if image is None:
            raise ResourceNotFoundException(missing.format(arn=identifier))
        return image

    def image_for(self, identifier: str) -> Image:
        return self._image_from_identifier(
            identifier, missing="MicroVMImage not found for MicroVMImageID: {arn}"
        )

    def version_for(self, identifier: str, version: str) -> Version:
        missing = "MicroVMImage not found for MicroVMImage: {arn}, Version: " + version
        image = self._image_from_identifier(identifier, missing=missing)
        found = image.versions.get(normalize_version(version))
        if found is None:
            raise ResourceNotFoundException(missing.format(arn=identifier))
        return found

    def vm_for(self, identifier: str) -> Microvm:
        vm = self.vms.get(identifier)
        if vm is None and identifier.startswith("arn:"):
            vm = self.vms.get(identifier.rsplit(":", 1)[-1].rsplit("/", 1)[-1])
        if vm is None:
            raise ResourceNotFoundException(f"MicroVM not found: {identifier}")
        return vm

    # ------------------------------------------------------------------ image rules
    def _check_build_settings(self, params: dict) -> dict:
        """Service rules the model does not state (docs/service-facts.md §4.1, §4.8); returns normalised settings."""
        base_arn = params["baseImageArn"]
        requested = params.get("baseImageVersion")
        if base_arn != managed_image_arn(self.region):
            raise ValidationException(
                f"No managed runtime with arn {base_arn} and version {requested or 'latest'} is available."
            )
        known = {normalize_version(v["imageVersion"]) for v in MANAGED_VERSIONS}
        base_version = (
            normalize_version(requested)
            if requested
            else normalize_version(MANAGED_VERSIONS[0]["imageVersion"])
        )
        if base_version not in known:
            raise ValidationException(
                f"No managed runtime with arn {base_arn} and version {requested} is available."
            )
        resources = params.get("resources") or [{"minimumMemoryInMiB": DEFAULT_MEMORY_MIB}]
        memory = resources[0].get("minimumMemoryInMiB")
        if memory not in SUPPORTED_MEMORY_MIB:
            raise ValidationException(
                f"The requested memory size of {memory} MiB is not supported by base MicroVM image "
                f"{base_arn}. Supported memory sizes in MiB are: "
                f"[{', '.join(str(m) for m in SUPPORTED_MEMORY_MIB)}]."
            )
        for cpu in params.get("cpuConfigurations") or []:
            if cpu.get("architecture") not in SUPPORTED_ARCHITECTURES:
                # Not recorded live; m80 rejects x86 too (docs/service-facts.md §4.1). Emulator wording.
                raise ValidationException(
                    f"The requested architecture {cpu.get('architecture')} is not supported by base "
                    f"MicroVM image {base_arn}. Supported architectures are: [ARM_64]."
                )
        hooks = params.get("hooks") or {}
        runtime = hooks.get("microvmHooks") or {}
        image_hooks = hooks.get("microvmImageHooks") or {}
        if any(runtime.get(h) == "ENABLED" for h in RUNTIME_HOOKS) and (
            image_hooks.get("ready") != "ENABLED"
        ):
            raise ValidationException(MSG_READY_HOOK_REQUIRED)
        egress = params.get("egressNetworkConnectors")
        for arn in egress or []:
            if not arn.startswith("arn:"):
                raise ValidationException(MSG_MALFORMED_CONNECTOR)
        settings = {key: copy.deepcopy(params.get(key)) for key in BUILD_SETTING_KEYS}
        settings[KMS_KEY] = params.get(KMS_KEY)
        settings["baseImageVersion"] = base_version
        settings["resources"] = copy.deepcopy(resources)
        settings["egressNetworkConnectors"] = egress or [
            managed_connector_arn(self.region, "INTERNET_EGRESS")
        ]
        return settings

    def _new_version(self, image: Image, settings: dict, *, first: bool) -> Version:
        now = self.now
        build_seconds = self.state.settings.build_seconds
        version = Version(
            image=image,
            version=image.next_version(),
            settings=settings,
            created_at=now,
            updated_at=now,
            state_changed_at=now,
            in_progress_at=now + build_seconds * 0.2,
            done_at=now + build_seconds,
            first=first,
        )
        version.builds = [
            Build(build_id=str(uuid.uuid4()), generation=gen, created_at=now)
            for gen in GRAVITON_GENERATIONS
        ]
        image.versions[version.version] = version
        image.max_major = max(image.max_major, version.major)
        return version

    # ------------------------------------------------------------------ image operations
    def create_image(self, params: dict) -> dict:
        settings = self._check_build_settings(params)
        name = params["name"]
        if name in self.images:
            existing = self.images[name]
            raise ValidationException(
                f"MicroVM image {existing.arn} already exists"
                + (" and is being deleted." if existing.state == "DELETING" else ".")
            )
        now = self.now
        image = Image(
            name=name,
            arn=image_arn(self.region, self.account, name),
            region=self.region,
            created_at=now,
            updated_at=now,
            tags=dict(params.get("tags") or {}),
        )
        self.images[name] = image
        version = self._new_version(image, settings, first=True)
        return image.describe_full(version, tags=copy.deepcopy(params.get("tags")))

    def get_image(self, identifier: str) -> dict:
        return self.image_for(identifier).describe()

    def list_images(self, name_filter: str | None) -> list[dict]:
        images = sorted(self.images.values(), key=lambda i: i.created_at)
        if name_filter:
            images = [i for i in images if i.name.startswith(name_filter)]
        return [i.summary() for i in images]

    def update_image(self, params: dict) -> dict:
        image = self.image_for(params["imageIdentifier"])
        if image.state in ("CREATING", "UPDATING", "DELETING"):
            raise ConflictException(f"MicroVM Image is already in state: {image.state}")
        settings = self._check_build_settings(params)
        image.state = "UPDATING"
        image.updated_at = self.now
        version = self._new_version(image, settings, first=False)
        return image.describe_full(version, tags=_ABSENT)

    def delete_image(self, identifier: str) -> dict:
        image = self.image_for(identifier)
        if image.state == "DELETING":
            return {"imageIdentifier": image.arn, "state": "DELETING"}
        draining = any(v.state == "DELETING" for v in image.versions.values())
        if image.state in ("CREATING", "UPDATING") or draining:
            state = (
                "DELETING"
                if draining and image.state not in ("CREATING", "UPDATING")
                else image.state
            )
            raise ValidationException(f"Cannot delete MicroVM image in its current state: {state}")
        if any(vm.image is image and vm.state in LIVE_VM_STATES for vm in self.vms.values()):
            raise ValidationException(MSG_RUNNING_VMS)
        now = self.now
        image.state = "DELETING"
        image.updated_at = now
        image.delete_at = now + self.state.settings.delete_seconds
        for version in image.versions.values():
            if version.state != "DELETING":
                version.set_state("DELETING", now)
        return {"imageIdentifier": image.arn, "state": "DELETING"}

    def get_version(self, identifier: str, version: str) -> dict:
        return self.version_for(identifier, version).describe()

    def list_versions(self, identifier: str) -> list[dict]:
        image = self.image_for(identifier)
        versions = sorted(image.versions.values(), key=lambda v: -v.major)
        return [v.describe() for v in versions]

    def update_version(self, identifier: str, version: str, status: str) -> dict:
        found = self.version_for(identifier, version)
        image = found.image
        if image.state in ("UPDATING", "CREATING", "DELETING"):
            raise ConflictException(f"MicroVM Image is already in state: {image.state}")
        found.status = status
        found.updated_at = self.now
        return found.describe()

    def delete_version(self, identifier: str, version: str) -> dict:
        found = self.version_for(identifier, version)
        image = found.image
        if found.state == "DELETING":
            return {
                "imageIdentifier": image.arn,
                "imageVersion": found.version,
                "state": "DELETING",
            }
        if image.state in ("CREATING", "UPDATING", "DELETING") or found.state in (
            "PENDING",
            "IN_PROGRESS",
        ):
            raise ConflictException(f"MicroVM Image is already in state: {image.state}")
        if len(image.live_versions()) <= 1:
            # Documented, not recorded (docs/service-facts.md §4.3): the last version goes with the image.
            raise ValidationException(
                f"Cannot delete the only version of MicroVM image {image.arn}. "
                "Delete the MicroVM image instead."
            )
        if any(vm.version is found and vm.state in LIVE_VM_STATES for vm in self.vms.values()):
            raise ValidationException(MSG_RUNNING_VMS)
        now = self.now
        found.set_state("DELETING", now)
        found.delete_at = now + self.state.settings.delete_seconds
        return {"imageIdentifier": image.arn, "imageVersion": found.version, "state": "DELETING"}

    def list_builds(self, identifier: str, version: str, filters: dict) -> list[dict]:
        found = self.version_for(identifier, version)
        items = [found.describe_build(b) for b in found.builds]
        for key in ("architecture", "chipset", "chipsetGeneration"):
            if filters.get(key):
                items = [i for i in items if i[key] == filters[key]]
        return items

    def get_build(self, identifier: str, version: str, build_id: str) -> dict:
        found = self.version_for(identifier, version)
        for build in found.builds:
            if build.build_id == build_id:
                return found.describe_build(build, detail=True)
        raise ResourceNotFoundException(
            f"MicroVMImage build not found for MicroVMImage: {identifier}, "
            f"Version: {version}, BuildId: {build_id}"
        )

    # ------------------------------------------------------------------ managed images
    def list_managed_images(self) -> list[dict]:
        return [
            {
                "createdAt": MANAGED_IMAGE_CREATED,
                "imageArn": managed_image_arn(self.region),
                "updatedAt": MANAGED_VERSIONS[0]["updatedAt"],
            }
        ]

    def list_managed_versions(self, identifier: str) -> list[dict]:
        if not identifier.startswith("arn:"):
            raise ValidationException(f"Invalid ARN format: {identifier}")
        if identifier != managed_image_arn(self.region):
            raise ResourceNotFoundException(
                f"Managed MicroVMImage not found for MicroVMImageID: {identifier}"
            )
        return [
            {
                "createdAt": v["createdAt"],
                "imageArn": identifier,
                "imageVersion": v["imageVersion"],
                "status": "AVAILABLE",
                "updatedAt": v["updatedAt"],
            }
            for v in MANAGED_VERSIONS
        ]

    # ------------------------------------------------------------------ tags
    def _taggable(self, resource: str):
        parts = resource.split(":", 6)
        if len(parts) == 7 and parts[5] == "microvm-image" and parts[3] == self.region:
            image = self.images.get(parts[6]) if parts[4] == self.account else None
            if image is not None:
                return image
            raise ResourceNotFoundException(
                f"MicroVMImage not found for MicroVMImageID: {resource}"
            )
        if len(parts) == 7 and parts[5] == "network-connector":
            for connector in self.connectors.connectors.values():
                if connector.arn == resource:
                    return connector
            raise ResourceNotFoundException(f"Network connector not found for: {resource}")
        raise ResourceNotFoundException(f"The resource you requested does not exist: {resource}")

    def tag(self, resource: str, tags: dict) -> None:
        self._taggable(resource).tags.update(tags)

    def untag(self, resource: str, keys: list[str]) -> None:
        image = self._taggable(resource)
        for key in keys:
            image.tags.pop(key, None)

    def list_tags(self, resource: str) -> dict:
        return {"Tags": dict(self._taggable(resource).tags)}

    # ------------------------------------------------------------------ MicroVMs
    def _connectors(self, values: list[str] | None, default_kind: str) -> list[str]:
        if not values:
            return [managed_connector_arn(self.region, default_kind)]
        for arn in values:
            if not arn.startswith("arn:"):
                raise ValidationException(MSG_MALFORMED_CONNECTOR)
        return list(values)

    def run_microvm(self, params: dict) -> dict:
        identifier = params["imageIdentifier"]
        if not identifier.startswith("arn:"):
            raise ValidationException(MSG_MALFORMED_ARN)
        ingress = self._connectors(params.get("ingressNetworkConnectors"), "HTTP_INGRESS")
        egress = self._connectors(params.get("egressNetworkConnectors"), "INTERNET_EGRESS")
        missing = f"No active version found for MicroVM image {identifier}"
        image = self._image_from_identifier(identifier, missing=missing)
        if image.state == "DELETING":
            raise ResourceNotFoundException(missing)
        requested = params.get("imageVersion")
        candidates = [
            v for v in image.live_versions() if v.state == "SUCCESSFUL" and v.status == "ACTIVE"
        ]
        if requested:
            candidates = [v for v in candidates if v.version == normalize_version(requested)]
        if not candidates:
            raise ResourceNotFoundException(missing)
        version = max(candidates, key=lambda v: v.major)
        payload = params.get("runHookPayload")
        if payload is not None and not version.hooks_enabled("microvmHooks", "run"):
            raise ValidationException(MSG_RUN_HOOK_PAYLOAD)
        quota = self.state.settings.memory_quota_mib
        if quota is not None:
            used = sum(vm.memory_mib for vm in self.vms.values() if vm.state in LIVE_VM_STATES)
            if used + version.memory_mib > quota:
                raise ServiceQuotaExceededException(MSG_MEMORY_QUOTA)
        now = self.now
        vm = Microvm(
            microvm_id=f"microvm-{uuid.uuid4()}",
            endpoint=f"{uuid.uuid4()}.lambda-microvm.{self.region}.on.aws",
            region=self.region,
            image=image,
            version=version,
            started_at=now,
            ready_at=now + self.state.settings.run_seconds,
            idle_policy=copy.deepcopy(params.get("idlePolicy")),
            maximum_duration=int(params.get("maximumDurationInSeconds") or DEFAULT_MAX_DURATION),
            ingress=ingress,
            egress=egress,
            execution_role_arn=params.get("executionRoleArn"),
            run_hook_payload=payload,
            memory_mib=version.memory_mib,
            kms_key_identifier=params.get(KMS_KEY),
        )
        vm.next_at = vm.ready_at
        self.vms[vm.microvm_id] = vm
        self.state.endpoints[vm.endpoint] = (self.region, vm.microvm_id)
        return vm.describe()

    def get_microvm(self, identifier: str) -> dict:
        return self.vm_for(identifier).describe()

    def list_microvms(self, image_identifier: str | None, image_version: str | None) -> list[dict]:
        vms = list(self.vms.values())
        if image_identifier:
            if not image_identifier.startswith("arn:"):
                raise ValidationException(MSG_MALFORMED_ARN)
            vms = [vm for vm in vms if vm.image.arn == image_identifier]
        if image_version:
            wanted = normalize_version(image_version)
            vms = [vm for vm in vms if vm.version.version == wanted]
        return [vm.item() for vm in vms]

    def _terminated_message(self, vm: Microvm) -> str:
        return f"The MicroVM {vm.microvm_id} has been terminated and its state cannot be changed."

    def suspend_microvm(self, identifier: str) -> dict:
        vm = self.vm_for(identifier)
        if vm.state in ("TERMINATING", "TERMINATED"):
            raise ValidationException(self._terminated_message(vm))
        if vm.state in ("SUSPENDING", "SUSPENDED"):
            return {}
        if vm.state == "PENDING":
            raise ConflictException(
                f"The MicroVM {vm.microvm_id} is in state PENDING and cannot be suspended."
            )
        self.state.begin_suspend(self, vm, self.now)
        return {}

    def resume_microvm(self, identifier: str) -> dict:
        vm = self.vm_for(identifier)
        if vm.state in ("TERMINATING", "TERMINATED"):
            raise ValidationException(self._terminated_message(vm))
        if vm.state == "SUSPENDING":
            raise ConflictException(
                f"The MicroVM {vm.microvm_id} is in state SUSPENDING and cannot be resumed."
            )
        if vm.state == "SUSPENDED":
            self.state.begin_resume(self, vm, self.now)
        return {}

    def terminate_microvm(self, identifier: str) -> dict:
        vm = self.vm_for(identifier)
        if vm.state in ("TERMINATING", "TERMINATED"):
            return {}
        self.state.begin_terminate(self, vm, self.now, reason="Success.")
        return {}

    def create_token(
        self, identifier: str, minutes: int, ports: list[dict], *, shell: bool
    ) -> dict:
        vm = self.vm_for(identifier)
        if minutes > MAX_TOKEN_MINUTES:
            # The live text for > 60 minutes was never recorded (docs/service-facts.md §4.5): constraint wording.
            raise ValidationException(
                f"1 validation error detected: Value '{minutes}' at 'expirationInMinutes' failed to "
                f"satisfy constraint: Member must have value less than or equal to {MAX_TOKEN_MINUTES}"
            )
        for spec in ports:
            rng = spec.get("range")
            if rng and rng["startPort"] > rng["endPort"]:
                raise ValidationException(
                    f"Invalid port range: startPort {rng['startPort']} is greater than endPort "
                    f"{rng['endPort']}"
                )
        if shell and not vm.has_ingress("SHELL_INGRESS", "ALL_INGRESS"):
            raise ValidationException(MSG_SHELL_INGRESS)
        token = make_token()
        self.state.tokens[token] = Grant(
            token=token,
            microvm_id=vm.microvm_id,
            expires_at=self.now + minutes * 60,
            ports=copy.deepcopy(ports),
            kind="shell" if shell else "http",
        )
        return {"authToken": {"X-aws-proxy-auth": token}}

    # ------------------------------------------------------------------ time
    def tick(self, now: float) -> None:
        for name, image in list(self.images.items()):
            if image.delete_at is not None and now >= image.delete_at:
                del self.images[name]
                continue
            for key, version in list(image.versions.items()):
                if version.delete_at is not None and now >= version.delete_at:
                    del image.versions[key]
                    continue
                self.state.advance_version(self, version, now)
        for vm in list(self.vms.values()):
            self.state.advance_vm(self, vm, now)
        self.connectors.tick(now)


class EmulatorState(Lifecycle):
    """Everything the emulator knows, across regions; the lifecycle engine is :class:`Lifecycle`."""

    def __init__(self, settings: Settings, clock: Clock | None = None):
        self.settings = settings
        self.clock = clock or Clock()
        self.faults = Faults()
        self.lock = threading.RLock()
        self.backends: dict[str, RegionBackend] = {}
        self.tokens: dict[str, Grant] = {}
        self.endpoints: dict[str, tuple[str, str]] = {}
        self.client_tokens: dict[tuple, tuple[str, dict]] = {}
        self.calls: dict[str, int] = {}
        self._workers: list[threading.Thread] = []
        self._random = random.Random()
        self._baseline: tuple[Faults, int | None] = (Faults(), settings.memory_quota_mib)

    def keep_as_baseline(self) -> None:
        """Remember the current faults and memory quota (the start-up flags) for :meth:`reset`."""
        with self.lock:
            self._baseline = (copy.deepcopy(self.faults), self.settings.memory_quota_mib)

    def backend(self, region: str) -> RegionBackend:
        with self.lock:
            if region not in self.backends:
                self.backends[region] = RegionBackend(self, region)
            return self.backends[region]

    def reset(self) -> None:
        with self.lock:
            self.backends.clear()
            self.tokens.clear()
            self.endpoints.clear()
            self.client_tokens.clear()
            self.calls.clear()
            # Back to the faults the emulator was started with (CLI flags / constructor options),
            # not to none at all: a benchmark that resets between runs keeps its --latency-ms.
            faults, quota = self._baseline
            self.faults = copy.deepcopy(faults)
            self.settings.memory_quota_mib = quota

    def tick(self) -> None:
        with self.lock:
            now = self.clock.now()
            for backend in list(self.backends.values()):
                backend.tick(now)

    def should_throttle(self) -> bool:
        rate = self.faults.throttle_rate
        return rate > 0 and self._random.random() < rate

    def count(self, operation: str) -> None:
        with self.lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1

    # ------------------------------------------------------------------ client tokens
    def replay(self, region: str, operation: str, params: dict, token_key: str = "clientToken"):
        """Apply ``clientToken`` semantics (docs/service-facts.md §8): same token + same body → the original body."""
        token = params.get(token_key)
        if not token:
            return None, None
        key = (region, operation, token)
        fingerprint = json.dumps(
            {k: v for k, v in params.items() if k != token_key}, sort_keys=True, default=str
        )
        stored = self.client_tokens.get(key)
        if stored is None:
            return key, fingerprint
        if stored[0] != fingerprint:
            raise ValidationException(MSG_CLIENT_TOKEN)
        return key, copy.deepcopy(stored[1])

    def remember(self, key, fingerprint: str, response: dict) -> None:
        self.client_tokens[key] = (fingerprint, copy.deepcopy(response))
