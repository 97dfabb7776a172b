"""The lifecycle engine: builds, lifecycle hooks and MicroVM transitions over time.

:class:`Lifecycle` is mixed into ``models.EmulatorState`` (it uses its ``settings``, ``clock``,
``faults`` and ``lock``). Network work (lifecycle hooks, S3/IAM cross-checks) runs in worker
threads that take the lock only to apply their result, so a slow hook never blocks the API.

Time is event-based: each transition is stamped with the moment it was due (``build_seconds`` after
creation, ``maxIdleDurationSeconds`` after the last endpoint request, …), so a single large
``clock.advance()`` cascades through every transition that would have happened in between.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from . import hooks as hook_calls

if TYPE_CHECKING:
    from .clock import Clock
    from .models import Faults, Microvm, RegionBackend, Settings, Version


class Lifecycle:
    """Moves versions and MicroVMs through their states; worker threads for network work."""

    settings: Settings
    clock: Clock
    faults: Faults
    lock: threading.RLock
    _workers: list[threading.Thread]

    # ------------------------------------------------------------------ workers
    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._workers = [t for t in self._workers if t.is_alive()]
        self._workers.append(thread)
        thread.start()

    def hook_upstream(self, version: Version) -> str | None:
        return self.settings.upstreams.get(version.hook_port)

    # ------------------------------------------------------------------ builds
    def advance_version(self, backend: RegionBackend, version: Version, now: float) -> None:
        if version.busy:
            return
        if version.state == "PENDING" and now >= version.in_progress_at:
            version.set_state("IN_PROGRESS", version.in_progress_at)
            for build in version.builds:
                build.state = "IN_PROGRESS"
        if version.state == "IN_PROGRESS" and now >= version.done_at:
            forced = (
                self.faults.fail_next_builds.popleft() if self.faults.fail_next_builds else None
            )
            if forced is not None:
                self._finish_build(version, forced, version.done_at)
                return
            needs_network = bool(
                self.settings.s3_endpoint
                or self.settings.iam_endpoint
                or (
                    self.hook_upstream(version)
                    and (
                        version.hooks_enabled("microvmImageHooks", "ready")
                        or version.hooks_enabled("microvmImageHooks", "validate")
                    )
                )
            )
            if not needs_network:
                self._finish_build(version, None, version.done_at)
                return
            version.busy = True
            self._spawn(self._build_worker, version)

    def _build_worker(self, version: Version) -> None:
        from .checks import check_artifact, check_build_role

        reason = None
        try:
            settings = self.settings
            if settings.s3_endpoint:
                reason = check_artifact(
                    settings.s3_endpoint, version.image.region, version.settings["codeArtifact"]
                )
            if reason is None and settings.iam_endpoint:
                reason = check_build_role(settings.iam_endpoint, version.settings["buildRoleArn"])
            upstream = self.hook_upstream(version)
            if reason is None and upstream:
                for hook in ("ready", "validate"):
                    if version.hooks_enabled("microvmImageHooks", hook):
                        timeout = version.hook_timeout(
                            "microvmImageHooks", hook, hook_calls.DEFAULT_BUILD_HOOK_TIMEOUT
                        )
                        reason = hook_calls.build_hook(
                            upstream, hook, timeout, interval=settings.hook_retry_interval
                        )
                        if reason:
                            break
        except Exception as exc:  # a broken cross-check must not wedge the build
            reason = f"INTERNAL_PLATFORM_ERROR: {exc}"
        with self.lock:
            version.busy = False
            self._finish_build(version, reason, max(self.clock.now(), version.done_at))

    def _finish_build(self, version: Version, reason: str | None, when: float) -> None:
        image = version.image
        if version.state != "IN_PROGRESS":
            return
        state = "SUCCESSFUL" if reason is None else "FAILED"
        version.set_state(state, when)
        version.state_reason = reason
        for build in version.builds:
            build.state = state
            build.state_reason = reason
        if image.state in ("CREATING", "UPDATING"):
            if reason is None:
                image.state = "CREATED" if version.first else "UPDATED"
            else:
                image.state = "CREATE_FAILED" if version.first else "UPDATE_FAILED"
            image.updated_at = when

    # ------------------------------------------------------------------ MicroVMs
    def advance_vm(self, backend: RegionBackend, vm: Microvm, now: float) -> None:
        for _ in range(8):  # cascade through several due transitions in one tick
            if vm.busy or vm.state == "TERMINATED":
                return
            before = (vm.state, vm.next_at)
            self._advance_vm_once(backend, vm, now)
            if (vm.state, vm.next_at) == before:
                return

    def _deadline(self, vm: Microvm) -> float | None:
        if vm.state not in ("TERMINATING", "TERMINATED"):
            return vm.started_at + vm.maximum_duration
        return None

    def _advance_vm_once(self, backend: RegionBackend, vm: Microvm, now: float) -> None:
        max_at = self._deadline(vm)
        if max_at is not None and now >= max_at and vm.state != "PENDING":
            self.begin_terminate(
                backend,
                vm,
                max_at,
                reason=f"The MicroVM reached its maximum duration of {vm.maximum_duration} seconds.",
            )
            return
        if vm.state == "PENDING" and vm.next_at is not None and now >= vm.next_at:
            if vm.phase == "starting":
                self._start(backend, vm, vm.next_at)
            else:
                self._set_running(vm, vm.next_at)
        elif vm.state == "RUNNING" and vm.idle_policy:
            idle_at = vm.last_activity + int(vm.idle_policy["maxIdleDurationSeconds"])
            if now >= idle_at:
                self.begin_suspend(backend, vm, idle_at)
        elif vm.state == "SUSPENDING" and vm.next_at is not None and now >= vm.next_at:
            vm.state = "SUSPENDED"
            vm.suspended_at = vm.next_at
            vm.next_at = None
        elif vm.state == "SUSPENDED" and vm.idle_policy and vm.suspended_at is not None:
            end_at = vm.suspended_at + int(vm.idle_policy["suspendedDurationSeconds"])
            if now >= end_at:
                self.begin_terminate(backend, vm, end_at, reason="Success.")
        elif vm.state == "TERMINATING" and vm.next_at is not None and now >= vm.next_at:
            vm.state = "TERMINATED"
            vm.terminated_at = vm.next_at
            vm.next_at = None

    def _set_running(self, vm: Microvm, when: float) -> None:
        vm.state = "RUNNING"
        vm.phase = "running"
        vm.was_running = True
        vm.last_activity = when
        vm.next_at = None

    def _start(self, backend: RegionBackend, vm: Microvm, when: float) -> None:
        upstream = self.hook_upstream(vm.version)
        if upstream and vm.version.hooks_enabled("microvmHooks", "run"):
            vm.busy = True
            body = {"microvmId": vm.microvm_id, "runHookPayload": vm.run_hook_payload}
            self._spawn(self._runtime_hook_worker, backend, vm, "run", body, upstream)
            return
        self._set_running(vm, when)

    def _runtime_hook_worker(self, backend, vm: Microvm, hook: str, body: dict, upstream: str):
        timeout = vm.version.hook_timeout(
            "microvmHooks", hook, hook_calls.DEFAULT_RUNTIME_HOOK_TIMEOUT
        )
        reason = hook_calls.runtime_hook(upstream, hook, body, timeout)
        with self.lock:
            vm.busy = False
            now = self.clock.now()
            if hook == "run":
                if vm.state != "PENDING" or vm.phase != "starting":
                    return  # terminated while the hook was in flight
                if reason is None:
                    self._set_running(vm, now)
                else:
                    # A failing /run makes the platform terminate the VM (docs/service-facts.md §4.8).
                    vm.state_reason = reason
                    self.begin_terminate(backend, vm, now, reason=reason, call_hook=False)
            elif reason is not None:
                vm.state_reason = reason

    def _runtime_hook(self, backend, vm: Microvm, hook: str) -> None:
        upstream = self.hook_upstream(vm.version)
        if upstream and vm.version.hooks_enabled("microvmHooks", hook):
            vm.busy = True
            self._spawn(
                self._runtime_hook_worker, backend, vm, hook, {"microvmId": vm.microvm_id}, upstream
            )

    def begin_suspend(self, backend, vm: Microvm, when: float) -> None:
        vm.state = "SUSPENDING"
        vm.next_at = when + self.settings.transition_seconds
        self._runtime_hook(backend, vm, "suspend")

    def begin_resume(self, backend, vm: Microvm, when: float) -> None:
        # Resume passes briefly through PENDING (docs/service-facts.md §6.2).
        vm.state = "PENDING"
        vm.phase = "resuming"
        vm.suspended_at = None
        vm.next_at = when + self.settings.transition_seconds
        self._runtime_hook(backend, vm, "resume")

    def begin_terminate(
        self, backend, vm: Microvm, when: float, *, reason: str, call_hook: bool = True
    ) -> None:
        was_running = vm.state == "RUNNING"
        vm.state = "TERMINATING"
        vm.state_reason = reason
        vm.next_at = when + self.settings.transition_seconds
        if call_hook and was_running:
            self._runtime_hook(backend, vm, "terminate")

    # ------------------------------------------------------------------ endpoint
    def touch(self, vm: Microvm) -> None:
        vm.last_activity = max(vm.last_activity, self.clock.now())

    def resume_for_traffic(self, vm: Microvm) -> bool:
        """Auto-resume on endpoint traffic (docs/service-facts.md §9): resume hook, then RUNNING. True if running."""
        upstream = self.hook_upstream(vm.version)
        with self.lock:
            if vm.state != "SUSPENDED":
                return vm.state == "RUNNING"
            vm.state = "PENDING"
            vm.phase = "resuming"
            vm.busy = True
        reason = None
        if upstream and vm.version.hooks_enabled("microvmHooks", "resume"):
            timeout = vm.version.hook_timeout(
                "microvmHooks", "resume", hook_calls.DEFAULT_RUNTIME_HOOK_TIMEOUT
            )
            reason = hook_calls.runtime_hook(
                upstream, "resume", {"microvmId": vm.microvm_id}, timeout
            )
        with self.lock:
            vm.busy = False
            if vm.state != "PENDING":
                return False  # terminated while resuming
            if reason:
                vm.state_reason = reason
            self._set_running(vm, self.clock.now())
            return True
