"""Waits for MicroVM images, image versions and MicroVMs, with failure reasons.

botocore ships no waiters for ``lambda-microvms`` (docs/service-facts.md §1), so these are ours. They poll with a
capped exponential backoff with jitter:

* the first polls come soon (0.5 s, then growing by 1.5x: 0.5, 1.25, 2.4, 4.1, 6.6 s …), so a
  build that fails in its first seconds (a missing S3 key, a role that cannot be assumed) is seen
  at once;
* the interval is capped at ``cap`` (4 s by default) with up to 10 % downward jitter, so a long
  build (2-6 minutes live, docs/service-facts.md §6.1) costs about one Get every 3.8 s -- within the "one Get
  every 3 s" request budget -- while the median time from "build done" to "we noticed" stays
  near half the cap (about 1.9 s).

No Pulumi imports here: progress is reported through an optional callback
``progress(elapsed_seconds, state, detail)`` that the caller routes to ``pulumi.log`` or a console.
Clocks and sleeps are injectable so tests and benchmarks can run on a simulated clock.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from microvms.client import MicrovmsClient

Progress = Callable[[float, str, str], None]


class WaitReporter(Protocol):
    """What ``wait_for_microvm`` drives between polls (``microvms.progress.WaitProgress``)."""

    def report(self, state: str | None, elapsed: float, next_delay: float) -> None: ...

    def sleep(self, seconds: float) -> None: ...


def without_metadata(response: Mapping[str, Any]) -> dict[str, Any]:
    """A plain copy of an API response without botocore's ``ResponseMetadata``."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


VERSION_DONE_OK = ("SUCCESSFUL",)
VERSION_DONE_BAD = ("FAILED", "DELETING", "DELETED", "DELETE_FAILED")
IMAGE_GONE = ("DELETED",)
MICROVM_DONE = ("TERMINATED",)

# Less time than this left before a deadline counts as "deadline reached": sleeping it would only
# buy one more poll, and on a simulated (float) clock ``now + remaining`` can round to just below
# the deadline forever.
DEADLINE_SLACK = 1e-3


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with downward jitter.

    ``delays()`` yields ``first``, ``first*factor``, … up to ``cap``; each delay is multiplied by a
    random factor in ``[1 - jitter, 1]`` so many waiters started together spread out.
    """

    first: float = 0.5
    factor: float = 1.5
    cap: float = 4.0
    jitter: float = 0.1

    def delays(self, rng: Callable[[], float] = random.random) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay * (1.0 - self.jitter * rng())
            delay = min(self.cap, delay * self.factor)


DEFAULT_BACKOFF = Backoff()


class WaitTimeout(TimeoutError):
    """The awaited resource did not settle within the timeout."""


class WaitError(RuntimeError):
    """A wait ended without reaching the target state (timeout or an unexpected terminal state)."""

    def __init__(
        self, message: str, microvm: dict[str, Any] | None = None, *, timed_out: bool = False
    ) -> None:
        super().__init__(message)
        self.microvm = microvm or {}
        self.timed_out = timed_out


class ImageGone(RuntimeError):
    """The image (or version) disappeared while we were waiting for it."""


@dataclass
class BuildResult:
    """One build of a version: one per (architecture, chipset, generation)."""

    build_id: str
    architecture: str | None
    chipset: str | None
    chipset_generation: str | None
    build_state: str | None
    state_reason: str | None

    def as_output(self) -> dict[str, str | None]:
        return {
            "buildId": self.build_id,
            "architecture": self.architecture,
            "chipset": self.chipset,
            "chipsetGeneration": self.chipset_generation,
            "buildState": self.build_state,
            "stateReason": self.state_reason,
        }


@dataclass
class BuildFailed(RuntimeError):
    """A version build ended ``FAILED``; carries everything a person needs to act."""

    image_arn: str
    image_version: str
    state_reason: str | None
    builds: list[BuildResult] = field(default_factory=list)
    log_group: str | None = None

    def __post_init__(self) -> None:
        super().__init__(self.describe())

    def describe(self) -> str:
        lines = [
            f"image {self.image_arn} version {self.image_version} failed to build: "
            f"{self.state_reason or '(the service gave no reason)'}"
        ]
        for b in self.builds:
            lines.append(
                f"  build {b.build_id} ({b.architecture or '?'}, chipset generation "
                f"{b.chipset_generation or '?'}): {b.build_state or '?'}"
                + (f" - {b.state_reason}" if b.state_reason else "")
            )
        hint = _hint_for(self.state_reason or "", [b.state_reason or "" for b in self.builds])
        if hint:
            lines.append(f"  what to do: {hint}")
        if self.log_group:
            lines.append(f"  full build logs: CloudWatch log group {self.log_group}")
        return "\n".join(lines)


# Documented stateReason codes (docs/service-facts.md §13) and the prose the live service actually returned.
_HINTS = (
    ("S3_NO_SUCH_KEY", "the artifact object does not exist; check codeArtifact.uri"),
    ("S3_NO_SUCH_BUCKET", "the artifact bucket does not exist; check codeArtifact.uri"),
    (
        "S3_CROSS_REGION_ACCESS_DENIED",
        "the artifact bucket is in another region; it must be in the image's region",
    ),
    (
        "S3_ACCESS_DENIED",
        "the build role cannot read the artifact; grant s3:GetObject on it to buildRoleArn",
    ),
    ("S3_INVALID_OBJECT", "the artifact is not a valid zip"),
    ("ARCHIVE_DOCKERFILE_NOT_FOUND", "the zip has no Dockerfile at its root"),
    ("ARCHIVE_INVALID", "the artifact is not a readable zip archive"),
    ("CONTAINER_BUILD_FAILED", "the Dockerfile build failed; read the build log"),
    ("container image build failed", "the Dockerfile build failed; read the build log"),
    ("DISK_STORAGE_FULL", "the image is too large for the build disk; slim it down"),
    ("Ready hook", "the /ready hook did not answer 200; check the app's hook server and port"),
    (
        "assume role",
        "the service could not assume the build role; remove aws:SourceArn/SourceAccount "
        "conditions from its trust policy and check iam:PassRole",
    ),
    ("INTERNAL_PLATFORM_ERROR", "a service-side failure; retry the deployment"),
)


def _hint_for(reason: str, build_reasons: list[str]) -> str | None:
    text = " ".join([reason, *build_reasons]).lower()
    for needle, hint in _HINTS:
        if needle.lower() in text:
            return hint
    return None


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def error_message(exc: ClientError) -> str:
    # Read as a plain mapping: some services spell the key "message" (the stubs know only "Message").
    err: Mapping[str, Any] = exc.response.get("Error", {})
    return str(err.get("Message") or err.get("message") or exc)


def is_not_found(exc: ClientError) -> bool:
    return (
        error_code(exc) == "ResourceNotFoundException"
        or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404
    )


def _report(progress: Progress | None, elapsed: float, state: str, detail: str) -> None:
    if progress is None:
        return
    # progress reporting must never break a wait
    with contextlib.suppress(Exception):
        progress(elapsed, state, detail)


def list_builds(client: MicrovmsClient, image_arn: str, image_version: str) -> list[BuildResult]:
    """Every build of a version (both Graviton generations, docs/service-facts.md §3)."""
    pages = client.get_paginator("list_microvm_image_builds").paginate(
        imageIdentifier=image_arn, imageVersion=image_version
    )
    return [
        BuildResult(
            build_id=b.get("buildId", "?"),
            architecture=b.get("architecture"),
            chipset=b.get("chipset"),
            chipset_generation=b.get("chipsetGeneration"),
            build_state=b.get("buildState"),
            state_reason=b.get("stateReason"),
        )
        for page in pages
        for b in page.get("items", [])
    ]


def wait_for_image_version(
    client: MicrovmsClient,
    image_arn: str,
    image_version: str,
    *,
    timeout: float,
    progress: Progress | None = None,
    log_group: str | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> dict[str, Any]:
    """Poll ``GetMicrovmImageVersion`` until the version is ``SUCCESSFUL``; return it.

    Raises :class:`BuildFailed` (with every build's reason) when it ends ``FAILED``,
    :class:`ImageGone` when the image or version disappears, :class:`WaitTimeout` after
    ``timeout`` seconds.
    """
    start = clock()
    last_state = None
    for delay in backoff.delays(rng):
        elapsed = clock() - start
        remaining = timeout - elapsed
        if remaining <= DEADLINE_SLACK:
            raise WaitTimeout(
                f"image {image_arn} version {image_version} still {last_state or 'unknown'} "
                f"after {elapsed:.0f} s (buildTimeoutMinutes)"
            )
        sleep(min(delay, remaining))
        elapsed = clock() - start
        try:
            version = client.get_microvm_image_version(
                imageIdentifier=image_arn, imageVersion=image_version
            )
        except ClientError as exc:
            if is_not_found(exc):
                raise ImageGone(
                    f"image {image_arn} version {image_version} disappeared while building"
                ) from exc
            raise
        state = version.get("state", "?")
        if state != last_state:
            _report(progress, elapsed, state, f"version {image_version}")
            last_state = state
        if state in VERSION_DONE_OK:
            return dict(version)
        if state in VERSION_DONE_BAD:
            builds = []
            with contextlib.suppress(ClientError):
                builds = list_builds(client, image_arn, image_version)
            raise BuildFailed(
                image_arn=image_arn,
                image_version=image_version,
                state_reason=version.get("stateReason") or f"version state {state}",
                builds=builds,
                log_group=log_group,
            )
    raise AssertionError("unreachable")  # pragma: no cover


def wait_for_image_deleted(
    client: MicrovmsClient,
    image_arn: str,
    *,
    timeout: float,
    progress: Progress | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> None:
    """Poll ``GetMicrovmImage`` until it answers 404 (or ``DELETED``); deletes are asynchronous."""

    def look() -> tuple[str, str, str] | None:
        try:
            image = client.get_microvm_image(imageIdentifier=image_arn)
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        state = image.get("state", "?")
        if state in IMAGE_GONE:
            return None
        if state == "DELETE_FAILED":
            raise RuntimeError(f"deleting image {image_arn} failed (state DELETE_FAILED)")
        return state, "deleting", f"image {image_arn} still {state}"

    _poll_until_gone(
        look, timeout=timeout, progress=progress, backoff=backoff, sleep=sleep, clock=clock, rng=rng
    )


def wait_for_microvms_terminated(
    client: MicrovmsClient,
    microvm_ids: list[str],
    *,
    timeout: float,
    progress: Progress | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> None:
    """Poll ``GetMicrovm`` for each id until all are ``TERMINATED`` (terminate is asynchronous)."""
    pending = list(microvm_ids)

    def look() -> tuple[str, str, str] | None:
        nonlocal pending
        still = []
        for vm_id in pending:
            try:
                vm = client.get_microvm(microvmIdentifier=vm_id)
            except ClientError as exc:
                if is_not_found(exc):
                    continue
                raise
            if vm.get("state") not in MICROVM_DONE:
                still.append(vm_id)
        pending = still
        if not pending:
            return None
        return (
            "TERMINATING",
            f"{len(pending)} MicroVM(s) still running",
            f"MicroVMs {', '.join(pending)} not terminated",
        )

    _poll_until_gone(
        look,
        timeout=timeout,
        progress=progress,
        every_round=True,
        backoff=backoff,
        sleep=sleep,
        clock=clock,
        rng=rng,
    )


def _poll_until_gone(
    look: Callable[[], tuple[str, str, str] | None],
    *,
    timeout: float,
    progress: Progress | None,
    every_round: bool = False,
    backoff: Backoff,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    rng: Callable[[], float],
) -> None:
    """The loop of the waits for something to go away (deletes and terminates are asynchronous).

    ``look()`` polls once: None when it is gone, else ``(state, detail, what)`` — the state and
    detail for ``progress`` (reported when they change, or ``every_round``) and what is still
    there, which the :class:`WaitTimeout` names after ``timeout`` seconds.
    """
    start = clock()
    last = None
    for delay in backoff.delays(rng):
        seen = look()
        elapsed = clock() - start
        if seen is None:
            return
        state, detail, what = seen
        if every_round or (state, detail) != last:
            _report(progress, elapsed, state, detail)
            last = (state, detail)
        if elapsed >= timeout - DEADLINE_SLACK:
            raise WaitTimeout(f"{what} after {elapsed:.0f} s")
        sleep(min(delay, max(0.0, timeout - elapsed)))
    raise AssertionError("unreachable")  # pragma: no cover


def wait_for_microvm(
    client: MicrovmsClient,
    microvm_id: str,
    targets: Sequence[str] = ("RUNNING",),
    *,
    timeout: float = 300.0,
    initial_delay: float = 0.05,
    max_delay: float = 1.0,
    factor: float = 1.3,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    not_found_grace: float = 5.0,
    progress: WaitReporter | None = None,
) -> dict[str, Any]:
    """Poll ``GetMicrovm`` with capped exponential backoff until the state is in ``targets``.

    ``progress`` (e.g. ``microvms.progress.WaitProgress``) gets ``report(state, elapsed,
    next_delay)`` before every pause and does the pausing with its ``sleep``.

    Raises WaitError on timeout, or at once when the VM reaches TERMINATED (or TERMINATING)
    while a live state was wanted, carrying ``stateReason``. ``PENDING`` during a resume is
    normal (docs/service-facts.md §6.2) and simply polled through. GetMicrovm is eventually consistent, so a 404
    right after RunMicrovm is retried for ``not_found_grace`` seconds.
    """
    targets = tuple(targets)
    start = clock()
    # Deterministic (no jitter): one VM, one caller, sub-second states.
    delays = Backoff(first=initial_delay, factor=factor, cap=max_delay, jitter=0.0).delays()
    while True:
        try:
            vm: dict[str, Any] | None = without_metadata(
                client.get_microvm(microvmIdentifier=microvm_id)
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException" or clock() - start > not_found_grace:
                raise
            vm = None
        if vm is not None:
            state = vm.get("state")
            if state in targets:
                return vm
            if state in ("TERMINATING", "TERMINATED") and not set(targets) & {
                "TERMINATING",
                "TERMINATED",
            }:
                reason = vm.get("stateReason") or "no stateReason given"
                raise WaitError(f"MicroVM {microvm_id} is {state} ({reason})", vm)
        elapsed = clock() - start
        if elapsed >= timeout:
            seen = vm.get("state") if vm else "not visible"
            raise WaitError(
                f"timed out after {timeout:g}s waiting for {microvm_id} to be "
                f"{'/'.join(targets)} (last state: {seen})",
                vm,
                timed_out=True,
            )
        pause = min(next(delays), max(0.0, timeout - elapsed))
        if progress is not None:
            progress.report(vm.get("state") if vm else None, elapsed, pause)
            progress.sleep(pause)
        else:
            sleep(pause)
