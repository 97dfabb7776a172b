"""``MicrovmImageProvider``: the dynamic provider behind ``MicrovmImageResource``.

Lives in an importable module so ``__provider`` is pickled *by reference* (a few dozen bytes)
and the plugin process imports the current code. It holds no state: boto3 clients are created
inside each method (a client cannot be pickled, and credentials never enter state).

check  -> validate + fill defaults, no API call
diff   -> local classification (diff.py), no API call
create -> adopt an interrupted create's image, or CreateMicrovmImage under a fresh name; wait,
          clean up on failure
update -> TagResource/UntagResource and/or a full UpdateMicrovmImage, wait, version statuses
          (activeVersion), retention
read   -> GetMicrovmImage + ListMicrovmImageVersions + GetMicrovmImageVersion (refresh and
          import): the build configuration comes from the newest built *version*, since
          GetMicrovmImage returns none of it (docs/service-facts.md §6, §18)

Rollback: ``activeVersion``
---------------------------
RunMicrovm without ``imageVersion`` starts the newest ACTIVE version (docs/service-facts.md
§4.3), so pinning ``activeVersion: "2.0"`` marks 2.0 ACTIVE and every newer version INACTIVE
(``microvms.images.activate``); clearing it marks every built version ACTIVE again, so the newest
serves. Either is an in-place update with UpdateMicrovmImageVersion, never a build. A build while
pinned mints the new version (the service makes it ACTIVE) and then pins again, so the pinned
version keeps serving. Retention never retires the pinned version. ``imageVersion`` stays the
newest build (the inputs describe its configuration); ``latestActiveImageVersion`` is the one
that serves.
delete -> refuse (or terminate) running MicroVMs, DeleteMicrovmImage, wait until gone

Create: adopt, never re-attach to a live image
-----------------------------------------------
The provider cannot see state, and Create is given only the new inputs: a replacement (forced
``--replace``, ``replaceOnChanges``, a name or region change) may present exactly the inputs of
the image it replaces. Dynamic providers are not told the URN or the engine's random seed (which is
fresh per deployment anyway, so a rerun after a crash would not see the same one). The rule:

* every image Create makes is tagged ``lambda-microvms:owner=<owner>`` (a digest of the
  resource's name seed ``<project>/<stack>/<resource>`` and region) and gets a *fresh* name;
  generated names are ``<prefix>-<owner marker><random>`` (deleted names stay reserved, so nothing
  is reused and the names never run out across destroy/up cycles or failed builds);
* Create's last call rewrites the tag to ``<owner>/delivered``. An owned image without the suffix
  never reached the engine: it is what a crashed create left. One with it is (or was) in state;
* Create first looks for the resource's undelivered images. The newest one whose name fits the
  inputs is adopted: its build is awaited, its tags are set to the new ones, and a changed build
  configuration becomes version 2 (so a rerun with edited inputs still ends with one image). The
  others, and one whose build failed, are deleted before anything new is made;
* a delivered image is never adopted, so a replacement always builds a new image and only the
  engine's delete of the old one removes it. With an explicit ``name`` a replacement that keeps
  the name is refused (the name is taken by the image being replaced).

The one window left is between the delivered mark and the engine saving the result (one gRPC
answer); an engine crash exactly there leaves a delivered image outside state.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic as dyn
from botocore.exceptions import ClientError

from microvms import images, vms, waiters
from microvms.client import make_client

from . import spec
from .diff import plan_diff, retention_plan, stable_outputs, tag_delta
from .validation import validate

if TYPE_CHECKING:
    from types_boto3_lambda_microvms.type_defs import GetMicrovmImageOutputTypeDef

    from microvms.client import MicrovmsClient

# Throttling is retried by botocore; 10 attempts make a 30 % throttle rate practically invisible
# (0.3**10 ≈ 6e-6 per call) while 4xx errors still surface at once.
MAX_ATTEMPTS = 10
#: Fresh random names tried when one is taken (each is new, so this never runs out over cycles).
NAME_ATTEMPTS = 8
UPDATE_ATTEMPTS = 5
DELETE_TIMEOUT = 600.0
#: How long, and how many terminate rounds, MicroVMs that start during a delete are fought.
RACE_TIMEOUT = 60.0
RACE_ROUNDS = 5
#: MicroVM states in which the service refuses to delete their image.
_VM_BLOCKING = ("PENDING", "RUNNING", "SUSPENDING", "SUSPENDED", "TERMINATING")


class MicrovmImageError(Exception):
    """One actionable error (no secret values, no API payloads)."""


def _log(message: str) -> None:
    """Progress through ``pulumi.log`` (stderr outside an engine); never fails the operation."""
    with contextlib.suppress(Exception):
        pulumi.log.info(message)


class _Scrubber:
    """Removes secret values from any text before it reaches an error or a log line."""

    def __init__(self, *props: Mapping[str, Any] | None) -> None:
        # every secret value known to this call: on an update both the old and the new ones (a
        # message about the previous version may quote a value that the program has since changed)
        values = {
            v
            for p in props
            for v in ((p or {}).get("secretEnvironmentVariables") or {}).values()
            if isinstance(v, str) and v
        }
        self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for v in self._values:
            text = text.replace(v, "***")
        return text


def _client(props: Mapping[str, Any]) -> MicrovmsClient:
    return make_client(
        region=props.get("region") or None,
        endpoint_url=props.get("endpointUrl") or None,
        max_attempts=MAX_ATTEMPTS,
    )


def _api_error(op: str, exc: ClientError, scrub: _Scrubber) -> MicrovmImageError:
    code = waiters.error_code(exc) or "Error"
    msg = waiters.error_message(exc)
    return MicrovmImageError(scrub(f"{op} failed: {code}: {msg}"))


def _timeout_advice(exc: Exception, props: Mapping[str, Any], log_group: str) -> str:
    """The "what to do" line for a build that outlived ``buildTimeoutMinutes`` (else "")."""
    if not isinstance(exc, waiters.WaitTimeout):
        return ""
    return (
        f"\n  what to do: live builds take 2-6 minutes; read the build log (CloudWatch log group "
        f"{log_group}), or raise buildTimeoutMinutes (now {props.get('buildTimeoutMinutes')})"
    )


def _build_timeout(props: Mapping[str, Any]) -> float:
    """``buildTimeoutMinutes`` in seconds, the budget of every wait for a build."""
    return float(props["buildTimeoutMinutes"]) * 60


def _await_build(
    client: MicrovmsClient,
    image_arn: str,
    version: str,
    props: Mapping[str, Any],
    name: str | None,
    scrub: _Scrubber,
    *,
    discard: Callable[[], str],
    then: str = "",
) -> dict[str, Any]:
    """Wait for a build this run started; one that fails, times out or loses its image is
    cleaned up (``discard`` says how that went) and fails the operation, ``then`` closing the
    message."""
    log_group = spec.log_group_for(props, name)
    try:
        return waiters.wait_for_image_version(
            client,
            image_arn,
            version,
            timeout=_build_timeout(props),
            progress=_progress(name),
            log_group=log_group,
        )
    except (waiters.BuildFailed, waiters.WaitTimeout, waiters.ImageGone) as exc:
        cleanup = discard()
        advice = _timeout_advice(exc, props, log_group)
        raise MicrovmImageError(scrub(f"{exc}{advice}\n  {cleanup}{then}")) from None
    except ClientError as exc:
        raise _api_error("GetMicrovmImageVersion", exc, scrub) from None


def _retag(
    client: MicrovmsClient,
    image_arn: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    scrub: _Scrubber,
) -> None:
    """Bring the image's tags from ``old`` to ``new`` in place (no rebuild)."""
    to_set, to_remove = tag_delta(old, new)
    try:
        if to_set:
            client.tag_resource(Resource=image_arn, Tags=to_set)
        if to_remove:
            client.untag_resource(Resource=image_arn, TagKeys=to_remove)
    except ClientError as exc:
        raise _api_error("TagResource", exc, scrub) from None


def _progress(name: str | None) -> waiters.Progress:
    def report(elapsed: float, state: str, detail: str) -> None:
        _log(f"microvm image {name}: {detail} {state} after {elapsed:.0f}s")

    return report


def _running_microvms(client: MicrovmsClient, image_arn: str) -> list[dict[str, Any]]:
    return vms.list_microvms(client, image_arn=image_arn, states=_VM_BLOCKING)


def _created_at(image: Mapping[str, Any]) -> float:
    when: Any = image.get("createdAt")  # a datetime from botocore
    return float(when.timestamp()) if hasattr(when, "timestamp") else 0.0


def _undelivered_images(
    client: MicrovmsClient, props: Mapping[str, Any], owner: str
) -> list[dict[str, Any]]:
    """Live images this resource created that never reached the engine, newest first.

    Owned and never delivered = the owner tag's value is ``owner`` without the ``/delivered``
    suffix that Create's last call adds.
    Generated names carry the owner's marker, so only those images are read for their tags; with
    an explicit ``name`` every live image is (a leftover may carry an earlier, edited name).
    """
    found: list[dict[str, Any]] = []
    for item in images.list_images(client):
        name = item.get("name") or ""
        if item.get("state") in images.IMAGE_GOING:
            continue
        if not (props.get("name") or spec.is_generated_by(name, owner)):
            continue
        try:
            image = client.get_microvm_image(imageIdentifier=item["imageArn"])
        except ClientError as exc:
            if waiters.is_not_found(exc):
                continue
            raise
        tags = image.get("tags") or {}
        if tags.get(spec.OWNER_TAG) == owner:  # owned, and never delivered
            found.append({**image, "name": image.get("name") or name})
    found.sort(key=_created_at, reverse=True)
    return found


def _pick_adoptable(
    leftovers: list[dict[str, Any]], props: Mapping[str, Any], owner: str
) -> dict[str, Any] | None:
    """The newest leftover whose name is what this create would make (the same explicit name, or
    a generated name with the same prefix); the others are deleted."""
    explicit = props.get("name")
    prefix = str(props.get("namePrefix") or "")[:55]
    for image in leftovers:
        name = image["name"]
        if explicit and name == explicit:
            return image
        generated = name.startswith(f"{prefix}-") and len(name) == len(prefix) + 9
        if not explicit and generated and spec.is_generated_by(name, owner):
            return image
    return None


def _is_name_taken(exc: ClientError) -> bool:
    msg = waiters.error_message(exc).lower()
    return "already exists" in msg or waiters.error_code(exc) in (
        "ConflictException",
        "ResourceConflictException",
    )


def _vm_listing(vms: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{vm.get('microvmId')} ({vm.get('state')}, version {vm.get('imageVersion')})" for vm in vms
    )


def _serving_pin(serving: str | None, newest: str, props: Mapping[str, Any]) -> str | None:
    """``activeVersion`` as the service has it: the version that serves when that is not the
    newest build (a rollback, ours or a console one), else None (the newest serves).

    A pin that names the newest build and still serves reads back as written, so it is no drift.
    """
    if not serving:
        return None
    pinned: str | None = props.get("activeVersion")
    if pinned and images.normalise_version(pinned) == images.normalise_version(serving):
        return pinned
    if images.normalise_version(serving) == images.normalise_version(newest):
        return None
    return images.normalise_version(serving)


def _pin_advice(exc: images.NotRetained) -> str:
    return (
        f"activeVersion: {exc}. Set activeVersion to one of the retained versions, or clear it "
        "to serve the newest"
    )


class MicrovmImageProvider(dyn.ResourceProvider):
    """Dynamic provider for Lambda MicroVM images (see the module docstring)."""

    # Decided on purpose: this provider captures nothing (no clients, no config, no secrets), so
    # its serialised form is a plain by-reference pickle and need not be encrypted in state.
    serialize_as_secret_always = False

    # ---- check -----------------------------------------------------------------------------
    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        # region is required (no fallback to the plugin's environment): the component passes
        # aws:region explicitly, so the checked inputs say exactly where the image lives
        props = spec.fill_defaults(news)
        failures = [dyn.CheckFailure(prop, reason) for prop, reason in validate(props)]
        return dyn.CheckResult(props, failures)

    # ---- adopt -----------------------------------------------------------------------------
    def _adopt(self, props: dict[str, Any]) -> dyn.CreateResult:
        """Take over an existing image (``adoptArn``) instead of creating one.

        The engine cannot import a Python dynamic resource (its import Read carries no inputs, so
        the SDK's provider server cannot find ``__provider``), so adoption is a Create that makes
        nothing: it reads the image, applies whatever the stack's configuration changes (tags in
        place, a new version for a build change), and hands the same image to the engine. An
        image another resource delivered (its owner tag) is refused, so two stacks never own one.
        """
        arn = props["adoptArn"]
        scrub = _Scrubber(props)
        client = _client(props)
        owner = spec.owner_id(props)
        try:
            image = client.get_microvm_image(imageIdentifier=arn)
        except ClientError as exc:
            if waiters.is_not_found(exc):
                raise MicrovmImageError(
                    f"adopt: image {arn} does not exist; build one instead by clearing "
                    "lambda-microvms:adopt"
                ) from None
            raise _api_error("GetMicrovmImage", exc, scrub) from None
        tag = (image.get("tags") or {}).get(spec.OWNER_TAG)
        if tag and tag.removesuffix(spec.DELIVERED_SUFFIX) != owner:
            raise MicrovmImageError(
                f"adopt: image {arn} belongs to another stack or resource (tag {spec.OWNER_TAG}="
                f"{tag}); an image is managed by one stack at a time"
            )
        current = self.read(arn, {k: v for k, v in props.items() if k != "adoptArn"})
        if current.id is None or current.outs is None:
            raise MicrovmImageError(f"adopt: image {arn} has no usable version to adopt")
        _log(f"microvm image {image.get('name')}: adopting {arn}")
        updated = self._update(arn, dict(current.outs), props)
        try:
            client.tag_resource(Resource=arn, Tags={spec.OWNER_TAG: spec.delivered(owner)})
        except ClientError as exc:
            raise _api_error("TagResource", exc, scrub) from None
        return dyn.CreateResult(arn, dict(updated))

    # ---- diff ------------------------------------------------------------------------------
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        plan = plan_diff(olds, news)
        return dyn.DiffResult(
            changes=plan.changes,
            replaces=list(plan.replaces),
            stables=stable_outputs(plan),
            delete_before_replace=False,
        )

    # ---- create ----------------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        started_at = time.monotonic()
        props = spec.plain_numbers(props)
        if props.get("adoptArn"):
            return self._adopt(props)
        scrub = _Scrubber(props)
        client = _client(props)
        owner = spec.owner_id(props)
        try:
            leftovers = _undelivered_images(client, props, owner)
        except ClientError as exc:
            raise _api_error("ListMicrovmImages", exc, scrub) from None
        keep = _pick_adoptable(leftovers, props, owner)
        pin = props.get("activeVersion")
        if pin and keep is None and pin != "1.0":
            raise MicrovmImageError(
                f"activeVersion: version {pin} does not exist; a new image has only version 1.0 "
                "(clear activeVersion to serve the newest)"
            )
        # whatever an interrupted run left and this create will not use goes first, so a failure
        # here leaves nothing new behind and the rerun starts from the same place
        for image in leftovers:
            if image is not keep:
                self._retire_leftover(client, image, props, scrub, "its name no longer matches")
        made = self._adopt_leftover(client, keep, props, scrub) if keep is not None else None
        if made is None:
            made = self._create_fresh(client, props, owner, scrub)
        name, image_arn, outs = made
        if pin and keep is not None:  # a leftover may have more than one version
            self._apply_active(client, image_arn, pin, name, scrub)
            outs["latestActiveImageVersion"] = pin
        try:
            # the last call: from here on the image is the engine's, never a leftover to adopt
            client.tag_resource(Resource=image_arn, Tags={spec.OWNER_TAG: spec.delivered(owner)})
        except ClientError as exc:
            raise _api_error("TagResource", exc, scrub) from None
        _log(
            f"microvm image {name}: ready, version {outs['imageVersion']} {outs['state']} "
            f"after {time.monotonic() - started_at:.3f}s"
        )
        return dyn.CreateResult(image_arn, outs)

    def _create_fresh(
        self, client: MicrovmsClient, props: dict[str, Any], owner: str, scrub: _Scrubber
    ) -> tuple[str, str, dict[str, Any]]:
        """CreateMicrovmImage under a name no image has used, wait for the build, return outputs."""
        explicit = props.get("name")
        prefix = props.get("namePrefix") or spec.sanitize_prefix(str(props.get("nameSeed") or ""))
        body = spec.build_request(props)
        tags = {**spec.user_tags(props.get("tags")), spec.OWNER_TAG: owner}
        taken: list[str] = []
        for _ in range(1 if explicit else NAME_ATTEMPTS):
            nonce = secrets.token_hex(8)
            name = explicit or spec.generated_name(prefix, owner, nonce)
            # one token per attempt: botocore's retries of this call replay it, and no later
            # create (a replacement, a rerun with edited inputs) can replay this one's answer
            token = spec.client_token("create", f"{name}|{nonce}", props)
            try:
                resp = client.create_microvm_image(name=name, tags=tags, clientToken=token, **body)
            except ClientError as exc:
                if not _is_name_taken(exc):
                    raise _api_error("CreateMicrovmImage", exc, scrub) from None
                if explicit:
                    raise self._name_taken_error(client, name, owner, scrub) from None
                taken.append(name)  # another image's, or reserved by a deleted one
                continue
            image_arn, version = resp["imageArn"], resp.get("imageVersion") or "1.0"
            _log(f"microvm image {name}: CreateMicrovmImage accepted, building version {version}")
            final = _await_build(
                client,
                image_arn,
                version,
                props,
                name,
                scrub,
                discard=functools.partial(self._discard_image, client, image_arn),
            )
            return (
                name,
                image_arn,
                self._outputs(client, props, name, image_arn, final, scrub, False),
            )
        raise MicrovmImageError(
            f"could not create an image: {len(taken)} fresh names in a row were taken "
            f"({', '.join(taken)}); set a different namePrefix"
        )

    def _name_taken_error(
        self, client: MicrovmsClient, name: str, owner: str, scrub: _Scrubber
    ) -> MicrovmImageError:
        try:
            item = images.find_image(client, name)
            image: GetMicrovmImageOutputTypeDef | None = None
            if item is not None and item.get("state") not in images.IMAGE_GOING:
                image = client.get_microvm_image(imageIdentifier=item["imageArn"])
        except ClientError as exc:
            return _api_error("GetMicrovmImage", exc, scrub)
        if image is None:
            return MicrovmImageError(
                f"the image name {name!r} is reserved by a deleted image (names of deleted images "
                "cannot be reused); choose another name"
            )
        if (image.get("tags") or {}).get(spec.OWNER_TAG) in (owner, spec.delivered(owner)):
            return MicrovmImageError(
                f"an image named {name!r} already exists ({image['imageArn']}) and is the one this "
                "resource manages: a replacement needs a new name (names cannot be reused). Change "
                "name, or remove it to get a generated name"
            )
        return MicrovmImageError(
            f"an image named {name!r} already exists ({image['imageArn']}) and was not "
            "created by this resource; choose another name, or adopt it with the "
            "import resource option"
        )

    def _adopt_leftover(
        self,
        client: MicrovmsClient,
        image: dict[str, Any],
        props: dict[str, Any],
        scrub: _Scrubber,
    ) -> tuple[str, str, dict[str, Any]] | None:
        """Finish what an interrupted create of this resource started, brought to the current
        inputs (tags in place, a changed build as a new version). None when it cannot be used (its
        build failed): it is deleted and the caller creates afresh."""
        image_arn, name = image["imageArn"], image["name"]
        _log(f"microvm image {name}: re-attaching to the build started by an interrupted run")
        log_group = spec.log_group_for(props, name)
        try:
            version = images.newest_version(client, image)
            if version is None:
                self._retire_leftover(client, image, props, scrub, "it has no version")
                return None
            vobj = waiters.wait_for_image_version(
                client,
                image_arn,
                version,
                timeout=_build_timeout(props),
                progress=_progress(name),
                log_group=log_group,
            )
        except (waiters.BuildFailed, waiters.ImageGone):
            self._retire_leftover(client, image, props, scrub, "its build failed")
            return None
        except waiters.WaitTimeout as exc:
            advice = _timeout_advice(exc, props, log_group)
            raise MicrovmImageError(
                scrub(f"{exc}{advice}\n  run the deployment again to keep waiting for it")
            ) from None
        except ClientError as exc:
            raise _api_error("GetMicrovmImageVersion", exc, scrub) from None

        _retag(client, image_arn, image.get("tags"), props.get("tags"), scrub)
        live = {**props, **spec.config_from_version(vobj, prior=props)}
        changed = plan_diff(live, props).build
        if changed:
            new_version = self._start_fresh_update(
                client, image_arn, vobj["imageVersion"], props, name, scrub
            )
            _log(
                f"microvm image {name}: the interrupted run built other inputs "
                f"({', '.join(changed)} changed); building version {new_version}"
            )
            vobj = _await_build(
                client,
                image_arn,
                new_version,
                props,
                name,
                scrub,
                discard=functools.partial(self._discard_version, client, image_arn, new_version),
            )
        outs = self._outputs(client, props, name, image_arn, vobj, scrub, retain=bool(changed))
        return name, image_arn, outs

    def _retire_leftover(
        self,
        client: MicrovmsClient,
        image: Mapping[str, Any],
        props: Mapping[str, Any],
        scrub: _Scrubber,
        why: str,
    ) -> None:
        """Delete an image an interrupted create left behind (after its build settles, since an
        image cannot be deleted during its first build, docs/service-facts.md §4.3); fail if it stays."""
        image_arn, name = image["imageArn"], image["name"]
        _log(
            f"microvm image {name}: left behind by an interrupted run and not used ({why}); "
            "deleting it"
        )
        try:
            if image.get("state") in ("CREATING", "UPDATING"):
                version = images.newest_version(client, image)
                if version:
                    with contextlib.suppress(waiters.BuildFailed, waiters.ImageGone):
                        waiters.wait_for_image_version(
                            client,
                            image_arn,
                            version,
                            timeout=_build_timeout(props),
                            progress=_progress(name),
                        )
        except waiters.WaitTimeout as exc:
            raise MicrovmImageError(
                f"{exc}; an interrupted run's image {name} is still building and must be deleted "
                "before a new one is made: run the deployment again"
            ) from None
        except ClientError as exc:
            raise _api_error("GetMicrovmImageVersion", exc, scrub) from None
        outcome = self._discard_image(client, image_arn)
        if outcome.startswith("could not"):
            raise MicrovmImageError(scrub(outcome))

    def _discard_image(self, client: MicrovmsClient, image_arn: str) -> str:
        """Delete an image this create made (a failed first build, a leftover); say what happened."""
        try:
            accepted = images.delete_image(client, image_arn, give_up_after=120)
        except ClientError as exc:
            return (
                f"could not delete the failed image {image_arn} "
                f"({waiters.error_message(exc)}); delete it by hand"
            )
        if not accepted:
            return f"the image {image_arn} was deleted; nothing is left behind."
        try:
            waiters.wait_for_image_deleted(client, image_arn, timeout=120)
        except (waiters.WaitTimeout, RuntimeError, ClientError):
            return f"the image {image_arn} is being deleted (still DELETING)."
        return "the failed image was deleted; nothing is left behind."

    def _terminate(
        self,
        client: MicrovmsClient,
        running: list[dict[str, Any]],
        name: str,
        listing: str,
        scrub: _Scrubber,
    ) -> None:
        _log(
            f"microvm image {name}: terminating {len(running)} MicroVM(s) before delete: {listing}"
        )
        try:
            for vm in running:
                if vm.get("state") != "TERMINATING":
                    client.terminate_microvm(microvmIdentifier=vm["microvmId"])
            waiters.wait_for_microvms_terminated(
                client,
                [vm["microvmId"] for vm in running],
                timeout=300,
                progress=_progress(name),
            )
        except ClientError as exc:
            raise _api_error("TerminateMicrovm", exc, scrub) from None
        except waiters.WaitTimeout as exc:
            raise MicrovmImageError(str(exc)) from None

    # ---- update ----------------------------------------------------------------------------
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        return dyn.UpdateResult(self._update(id_, olds, news))

    def _update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        """The update itself; returns the new outputs."""
        olds = spec.plain_numbers(olds)
        news = spec.plain_numbers(news)
        scrub = _Scrubber(olds, news)
        plan = plan_diff(olds, news)
        client = _client(news)
        name: str | None = olds.get("name") or news.get("name")
        pin = news.get("activeVersion")
        if pin and (plan.active or plan.build):
            # before anything changes: a pin the image cannot honour fails the update at once
            self._check_pin(client, id_, pin, scrub)

        if plan.tags:
            _retag(client, id_, olds.get("tags"), news.get("tags"), scrub)
            _log(f"microvm image {name}: tags updated in place (no rebuild)")

        version = olds.get("imageVersion")
        final: Mapping[str, Any] | None = None
        adopted = None
        if plan.build:
            adopted = self._adopt_newer_version(client, id_, version, news, name, scrub)
        if plan.build and adopted:
            final, version = adopted, adopted["imageVersion"]
        elif plan.build:
            new_version = self._start_fresh_update(client, id_, version, news, name, scrub)
            _log(
                f"microvm image {name}: UpdateMicrovmImage accepted ({', '.join(plan.build)} "
                f"changed), building version {new_version}"
            )
            final = _await_build(
                client,
                id_,
                new_version,
                news,
                name,
                scrub,
                discard=functools.partial(self._discard_version, client, id_, new_version),
                then=f" Version {version} stays active.",
            )
            version = new_version

        if final is None:
            if version is None:
                # the outputs always carry it (images.image_outputs); only an edited state lacks it
                raise MicrovmImageError(
                    f"microvm image {name}: the state records no imageVersion; run a refresh"
                )
            try:
                final = client.get_microvm_image_version(imageIdentifier=id_, imageVersion=version)
            except ClientError as exc:
                raise _api_error("GetMicrovmImageVersion", exc, scrub) from None
        if plan.active or (pin and plan.build):
            # a new build is ACTIVE, and newest, so a pin is applied again after it
            self._apply_active(client, id_, pin, name, scrub)
        retain = bool(plan.build) or "keepVersions" in plan.settings
        outs = self._outputs(
            client,
            news,
            name,
            id_,
            final,
            scrub,
            retain=retain,
            known_retained=olds.get("retainedVersions"),
        )
        return outs

    def _adopt_newer_version(
        self,
        client: MicrovmsClient,
        image_arn: str,
        version: str | None,
        news: Mapping[str, Any],
        name: str | None,
        scrub: _Scrubber,
    ) -> Mapping[str, Any] | None:
        """A version newer than the state's that already has the desired configuration (built
        by an interrupted run of this same update) is adopted instead of building another."""
        try:
            image = client.get_microvm_image(imageIdentifier=image_arn)
            if image.get("state") in ("CREATING", "UPDATING"):
                # ConflictException is modelled retryable, so botocore would otherwise sit out
                # the running build and then start a second one
                inflight = self._await_inflight(client, image_arn, news, name, scrub)
                if inflight:
                    return inflight
                image = client.get_microvm_image(imageIdentifier=image_arn)
            latest = image.get("latestActiveImageVersion")
            if not latest or images.version_key(latest) <= images.version_key(version or "0"):
                return None
            vobj = client.get_microvm_image_version(imageIdentifier=image_arn, imageVersion=latest)
        except ClientError as exc:
            raise _api_error("GetMicrovmImage", exc, scrub) from None
        if plan_diff({**news, **spec.config_from_version(vobj, prior=news)}, news).build:
            return None
        _log(f"microvm image {name}: version {latest} has the desired configuration; adopting it")
        return vobj

    def _start_fresh_update(
        self,
        client: MicrovmsClient,
        image_arn: str,
        version: str | None,
        news: Mapping[str, Any],
        name: str | None,
        scrub: _Scrubber,
    ) -> str:
        """UpdateMicrovmImage with a stable token, never ending on a discarded version.

        The token is stable so a rerun after a crash replays the build already running. But when
        an earlier run's build failed or timed out, that run deleted the version; the same token
        would then replay the answer naming it, and the retry would wait for a version that is
        gone. Such a replay is recognised (its version is already failed, deleting or gone, which
        a build started a moment ago cannot be) and the update is sent again under the next token
        of a fixed sequence, so reruns stay idempotent.
        """
        for attempt in range(UPDATE_ATTEMPTS):
            extra = str(version) if attempt == 0 else f"{version}|retry-{attempt}"
            token = spec.client_token("update", image_arn, news, extra=extra)
            new_version = self._start_update(client, image_arn, token, news, name, scrub)
            if not self._is_discarded(client, image_arn, new_version, scrub):
                return new_version
            _log(
                f"microvm image {name}: version {new_version} belongs to an earlier failed attempt "
                "of this update; starting a fresh build"
            )
        raise MicrovmImageError(
            f"UpdateMicrovmImage kept answering with versions that earlier attempts discarded "
            f"(last: {new_version}); run the deployment again"
        )

    def _is_discarded(
        self, client: MicrovmsClient, image_arn: str, version: str, scrub: _Scrubber
    ) -> bool:
        try:
            vobj = client.get_microvm_image_version(imageIdentifier=image_arn, imageVersion=version)
        except ClientError as exc:
            if waiters.is_not_found(exc):
                return True
            raise _api_error("GetMicrovmImageVersion", exc, scrub) from None
        return vobj.get("state") in waiters.VERSION_DONE_BAD

    def _start_update(
        self,
        client: MicrovmsClient,
        image_arn: str,
        token: str,
        news: Mapping[str, Any],
        name: str | None,
        scrub: _Scrubber,
    ) -> str:
        """UpdateMicrovmImage; if a build is already running (an interrupted earlier run whose
        token the service no longer remembers), wait for it and adopt it when it carries exactly
        the desired configuration, else send the update again."""
        body = spec.build_request(news)
        for attempt in range(2):
            try:
                resp = client.update_microvm_image(
                    imageIdentifier=image_arn, clientToken=token, **body
                )
                return resp["imageVersion"]
            except ClientError as exc:
                busy = "already in state" in waiters.error_message(exc)
                if not busy or attempt:
                    raise _api_error("UpdateMicrovmImage", exc, scrub) from None
            adopted = self._await_inflight(client, image_arn, news, name, scrub)
            if adopted:
                built: str = adopted["imageVersion"]
                return built
        raise AssertionError("unreachable")  # pragma: no cover

    def _await_inflight(
        self,
        client: MicrovmsClient,
        image_arn: str,
        news: Mapping[str, Any],
        name: str | None,
        scrub: _Scrubber,
    ) -> dict[str, Any] | None:
        """Wait for the newest version to finish; return it if it has the desired config."""
        try:
            versions = images.list_versions(client, image_arn)
            newest = versions[0]["imageVersion"] if versions else None
            if newest is None:
                return None
            _log(f"microvm image {name}: version {newest} is already building; waiting for it")
            try:
                vobj = waiters.wait_for_image_version(
                    client,
                    image_arn,
                    newest,
                    timeout=_build_timeout(news),
                    progress=_progress(name),
                )
            except (waiters.BuildFailed, waiters.ImageGone):
                return None
            except waiters.WaitTimeout as exc:
                raise MicrovmImageError(str(exc)) from None
            wanted = plan_diff({**news, **spec.config_from_version(vobj, prior=news)}, news)
            if not wanted.build:
                _log(f"microvm image {name}: version {newest} has the desired configuration")
                return vobj
            return None
        except ClientError as exc:
            raise _api_error("GetMicrovmImageVersion", exc, scrub) from None

    def _discard_version(self, client: MicrovmsClient, image_arn: str, version: str | None) -> str:
        if not version:
            return ""
        try:
            client.delete_microvm_image_version(imageIdentifier=image_arn, imageVersion=version)
        except ClientError as exc:
            if waiters.is_not_found(exc):
                return f"The failed version {version} is gone."
            return f"Could not delete the failed version {version}: {waiters.error_message(exc)}."
        return f"The failed version {version} was deleted."

    # ---- activeVersion ---------------------------------------------------------------------
    def _check_pin(
        self, client: MicrovmsClient, image_arn: str, pin: str, scrub: _Scrubber
    ) -> None:
        try:
            ready = images.activatable(images.list_versions(client, image_arn))
        except ClientError as exc:
            raise _api_error("ListMicrovmImageVersions", exc, scrub) from None
        if images.normalise_version(pin) not in ready:
            raise MicrovmImageError(
                _pin_advice(images.NotRetained(image_arn, images.normalise_version(pin), ready))
            )

    def _apply_active(
        self,
        client: MicrovmsClient,
        image_arn: str,
        pin: str | None,
        name: str | None,
        scrub: _Scrubber,
    ) -> None:
        """Pin ``pin`` (it serves, newer versions INACTIVE) or, with none, serve the newest."""
        try:
            if pin:
                changes = images.activate(client, image_arn, pin)
            else:
                changes = [(v, "ACTIVE") for v in images.activate_all(client, image_arn)]
        except images.NotRetained as exc:
            raise MicrovmImageError(_pin_advice(exc)) from None
        except ClientError as exc:
            raise _api_error("UpdateMicrovmImageVersion", exc, scrub) from None
        what = f"version {pin} serves (activeVersion)" if pin else "the newest version serves"
        done = ", ".join(f"{v} {status}" for v, status in changes) or "no status changed"
        _log(f"microvm image {name}: {what}, no rebuild ({done})")

    # ---- retention + outputs ---------------------------------------------------------------
    def _apply_retention(
        self,
        client: MicrovmsClient,
        image_arn: str,
        keep: int,
        active: str | None,
        pinned: str | None = None,
    ) -> list[str]:
        """Keep the newest ``keep`` versions; never the active one, the pinned one
        (``activeVersion``) or one a MicroVM uses."""
        versions = images.list_versions(client, image_arn)
        protected = {v for v in (active, pinned) if v}
        in_use = (vm.get("imageVersion") for vm in _running_microvms(client, image_arn))
        protected |= {v for v in in_use if v is not None}
        for ver in retention_plan(versions, keep=keep, protected=protected):
            status = next((v.get("status") for v in versions if v.get("imageVersion") == ver), None)
            try:
                if status == "ACTIVE":
                    # marked INACTIVE first so no new MicroVM can start on it while it drains
                    client.update_microvm_image_version(
                        imageIdentifier=image_arn, imageVersion=ver, status="INACTIVE"
                    )
                client.delete_microvm_image_version(imageIdentifier=image_arn, imageVersion=ver)
                _log(f"microvm image {image_arn}: retired version {ver} (keepVersions={keep})")
            except ClientError as exc:
                _log(
                    f"microvm image {image_arn}: could not retire version {ver}: "
                    f"{waiters.error_code(exc)} (will retry on the next update)"
                )
        return images.kept_versions(client, image_arn)

    def _outputs(
        self,
        client: MicrovmsClient,
        props: Mapping[str, Any],
        name: str | None,
        image_arn: str,
        version_obj: Mapping[str, Any],
        scrub: _Scrubber,
        retain: bool = True,
        known_retained: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        try:
            image = client.get_microvm_image(imageIdentifier=image_arn)
            if retain:
                retained = self._apply_retention(
                    client,
                    image_arn,
                    int(props["keepVersions"]),
                    image.get("latestActiveImageVersion"),
                    props.get("activeVersion"),
                )
            else:  # a fresh image has exactly one version; a tags-only update changes none
                retained = list(known_retained or [version_obj["imageVersion"]])
            builds = waiters.list_builds(client, image_arn, version_obj["imageVersion"])
        except ClientError as exc:
            raise _api_error("GetMicrovmImage", exc, scrub) from None
        outs = {k: v for k, v in props.items() if k in spec.INPUT_KEYS}
        outs.update(
            images.image_outputs(
                name,
                image_arn,
                image,
                version_obj,
                kept=retained,
                builds=builds,
                log_group=spec.log_group_for(props, name),
            )
        )
        return outs

    # ---- read ------------------------------------------------------------------------------
    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        props = spec.plain_numbers({k: v for k, v in props.items() if k != "__provider"})
        importing = "imageArn" not in props
        parsed = spec.parse_image_arn(id_)
        if parsed is None:
            raise MicrovmImageError(
                f"{id_!r} is not a MicroVM image ARN "
                "(arn:aws:lambda:<region>:<account>:microvm-image:<name>); import by ARN"
            )
        settings = spec.fill_defaults(
            {
                **{k: v for k, v in props.items() if k in spec.INPUT_KEYS},
                "region": parsed["region"],
            },
            default_region=parsed["region"],
        )
        scrub = _Scrubber(props)
        client = _client(settings)
        try:
            image = client.get_microvm_image(imageIdentifier=id_)
        except ClientError as exc:
            if waiters.is_not_found(exc):
                return dyn.ReadResult(None, {})
            raise _api_error("GetMicrovmImage", exc, scrub) from None
        if image.get("state") in ("DELETING", "DELETED"):
            return dyn.ReadResult(None, {})
        try:
            versions = images.list_versions(client, id_)
            built = images.activatable(versions)
            # the newest *built* version carries the configuration the inputs describe (a
            # rollback serves an older one; a console rebuild makes a newer one, i.e. drift)
            version = (
                (built[0] if built else None)
                or image.get("latestActiveImageVersion")
                or props.get("imageVersion")
                or (versions[0]["imageVersion"] if versions else None)
            )
            if not version:
                return dyn.ReadResult(None, {})
            vobj = client.get_microvm_image_version(imageIdentifier=id_, imageVersion=version)
            builds = waiters.list_builds(client, id_, version)
            retained = [
                v.get("imageVersion")
                for v in versions
                if v.get("state") not in images.VERSION_GOING
            ]
        except ClientError as exc:
            if waiters.is_not_found(exc):
                return dyn.ReadResult(None, {})
            raise _api_error("GetMicrovmImageVersion", exc, scrub) from None

        config = spec.config_from_version(vobj, prior=props or None)
        active = _serving_pin(image.get("latestActiveImageVersion"), version, props)
        if active:
            config["activeVersion"] = active
        name = image.get("name") or parsed["name"]
        live_inputs = {
            k: v for k, v in settings.items() if k in spec.PROVIDER_SETTINGS + spec.IDENTITY_KEYS
        }
        live_inputs.update(config)
        live_inputs["region"] = parsed["region"]
        live_inputs["tags"] = spec.user_tags(image.get("tags"))
        if settings.get("name") or importing:
            live_inputs["name"] = name
        if not settings.get("name") and settings.get("namePrefix") and not importing:
            live_inputs["namePrefix"] = settings["namePrefix"]
        outs = dict(live_inputs)
        outs.update(
            images.image_outputs(
                name,
                image.get("imageArn", id_),
                image,
                vobj,
                kept=retained,
                builds=builds,
                log_group=spec.log_group_for(config, name),
            )
        )
        return dyn.ReadResult(id_, outs, live_inputs if importing else None)

    # ---- delete ----------------------------------------------------------------------------
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = spec.plain_numbers(props)
        scrub = _Scrubber(props)
        client = _client(props)
        name = props.get("name") or id_
        terminate = bool(props.get("terminateMicrovmsOnDelete"))
        # A MicroVM may start between the listing and the delete (docs/service-facts.md §4.3: the
        # service refuses an image with running MicroVMs). Every refusal re-lists and acts on what
        # is running now;
        # racing MicroVMs are given RACE_TIMEOUT, a draining build or version DELETE_TIMEOUT.
        started = time.monotonic()
        delays = images.DELETE_RETRY.delays()
        rounds = 0
        while True:
            try:
                running = _running_microvms(client, id_)
            except ClientError as exc:
                if waiters.is_not_found(exc):
                    return
                raise _api_error("ListMicrovms", exc, scrub) from None
            if running:
                rounds += 1
                listing = _vm_listing(running)
                if not terminate:
                    raise MicrovmImageError(
                        f"refusing to delete image {name}: {len(running)} MicroVM(s) still use "
                        f"it: {listing}. Terminate them (python -m microvms terminate <id>) or set "
                        "terminateMicrovmsOnDelete: true on the image, then run the deployment again."
                    )
                if rounds > RACE_ROUNDS or time.monotonic() - started > RACE_TIMEOUT:
                    raise MicrovmImageError(
                        f"could not delete image {name}: MicroVMs keep starting on it "
                        f"({rounds - 1} rounds terminated, still running: {listing}); stop what "
                        "starts them, then run the deployment again."
                    )
                self._terminate(client, running, name, listing, scrub)
            try:
                client.delete_microvm_image(imageIdentifier=id_)
                break
            except ClientError as exc:
                if waiters.is_not_found(exc):
                    return
                msg = waiters.error_message(exc)
                elapsed = time.monotonic() - started
                if "running microvms" in msg.lower():
                    # listed as gone a moment ago (a terminate settling, or one just started):
                    # look again, for about a minute at most
                    if elapsed > RACE_TIMEOUT:
                        raise _api_error("DeleteMicrovmImage", exc, scrub) from None
                elif "current state" not in msg or elapsed > DELETE_TIMEOUT:
                    # not a build or version delete still draining (docs/service-facts.md §4.3)
                    raise _api_error("DeleteMicrovmImage", exc, scrub) from None
                time.sleep(next(delays))
        _log(f"microvm image {name}: DeleteMicrovmImage accepted, waiting until it is gone")
        try:
            waiters.wait_for_image_deleted(
                client, id_, timeout=DELETE_TIMEOUT, progress=_progress(name)
            )
        except waiters.WaitTimeout as exc:
            raise MicrovmImageError(str(exc)) from None
        except RuntimeError as exc:  # DELETE_FAILED: the service gave up deleting it
            raise MicrovmImageError(
                f"{exc}; run the deployment again to retry, or delete it by hand"
            ) from None
        except ClientError as exc:
            raise _api_error("GetMicrovmImage", exc, scrub) from None
