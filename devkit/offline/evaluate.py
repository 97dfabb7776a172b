"""Evaluate a Pulumi program under mocks and return the resource graph the engine would see.

This is the flow of the CLI's ``pulumi-language-python-exec`` with the gRPC resource monitor swapped
for :class:`devkit.offline.monitor.CapturingMonitor`, which records the raw requests. The engine's
own contributions are emulated: config assembly (:mod:`devkit.offline.config`), default providers
(``pulumi:providers:aws::default_7_51_1`` with the namespace-stripped ``aws:*`` config;
``pulumi:providers:pulumi-python::default`` with the full config), provider references
``<urn>::<id>``, and preview (``dry_run``) where only inputs are known.

Usage::

    from devkit.offline.evaluate import evaluate_program

    graph = evaluate_program("dev", preview=True, overrides={"lambda-microvms:memoryMiB": 1024})
    bucket = graph.one("aws:s3/bucket:Bucket")
    assert graph.provider_of(bucket).inputs["region"] == "us-east-1"

Importing this module has no side effects; Pulumi's global state is only touched inside
:func:`evaluate_program`, in a copied :mod:`contextvars` context that is discarded afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import json
import os
import runpy
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devkit.offline import wire
from devkit.offline.config import (
    DEFAULT_REGION,
    REPO_ROOT,
    account_id_from_config,
    load_config,
    load_project,
    program_main,
)
from devkit.offline.mocks import (
    HarnessMocks,
    default_provider_inputs,
    default_provider_name,
    engine_urn,
    package_of,
)
from devkit.offline.monitor import RecordingEngine, capturing_monitor_class
from devkit.offline.records import (
    ORGANIZATION,
    PROVIDER_TYPE_PREFIX,
    STACK_TYPE,
    ProgramGraph,
    ResourceRecord,
)

# Module-level lock: an evaluation changes cwd, sys.path and os.environ for its duration.
_EVAL_LOCK = threading.RLock()


class ProgramError(Exception):
    """The program failed (for example ``components.config.ConfigError``).

    ``str(error)`` is the program's own message; ``error.error_type`` the exception class name,
    ``error.graph`` what had been registered before the failure, ``__cause__`` the original.
    """

    def __init__(self, message: str, *, error_type: str = "", graph: ProgramGraph | None = None):
        super().__init__(message)
        self.error_type = error_type
        self.graph = graph


def _with_default_providers(
    records: list[ResourceRecord],
    config: Mapping[str, str],
    secret_keys: list[str],
    *,
    stack: str,
    project: str,
    preview: bool,
) -> list[ResourceRecord]:
    """Insert the providers the engine would create for resources that named none."""
    result: list[ResourceRecord] = []
    created: dict[str, ResourceRecord] = {}
    by_urn = {r.urn: r for r in records}
    for rec in records:
        if rec.custom and not rec.is_provider and not rec.provider:
            package = package_of(rec.type)
            if package != "pulumi":
                version = rec.options.get("version", "")
                key = f"{package}@{version}"
                prov = created.get(key)
                if prov is None:
                    name = default_provider_name(version)
                    prov_type = f"{PROVIDER_TYPE_PREFIX}{package}"
                    prov_urn = engine_urn(stack, project, "", prov_type, name)
                    prov_id = (
                        wire.UNKNOWN if preview else str(uuid.uuid5(uuid.NAMESPACE_URL, prov_urn))
                    )
                    inputs = default_provider_inputs(package, version, config, secret_keys)
                    prov = ResourceRecord(
                        urn=prov_urn,
                        type=prov_type,
                        name=name,
                        custom=True,
                        parent="",
                        inputs=inputs,
                        outputs=copy.deepcopy(inputs),
                        id=prov_id,
                        options={"defaultProvider": True, "version": version},
                    )
                    created[key] = prov
                    by_urn[prov_urn] = prov
                    result.append(prov)
                rec.provider = f"{prov.urn}::{prov.id}"
        result.append(rec)
    for rec in result:
        if rec.provider:
            rec.provider_record = by_urn.get(rec.provider_urn)
    return result


def _purge_program_modules(before: set[str], program_dir: Path) -> None:
    """Forget modules the program imported from its own directory during this run.

    The program's sibling modules (``components.*``) are re-imported by the next evaluation, so a
    module that reads config or keeps a cache at import time cannot leak one stack's settings into
    another run. Modules the caller had imported before the run are left alone (the caller holds
    references to them, e.g. monkeypatched attributes or exception classes).
    """
    root = str(program_dir.resolve())
    venv = os.path.join(root, ".venv")
    engine_dir = str(Path(__file__).resolve().parent)
    for name in list(sys.modules):
        if name in before:
            continue
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if not file:
            continue
        file = str(Path(file).resolve())
        if not file.startswith(root + os.sep) or file.startswith(venv + os.sep):
            continue
        if os.path.dirname(file) == engine_dir:
            continue  # never drop the offline engine itself (it lives below the repository's program)
        del sys.modules[name]


def evaluate_program(
    stack: str,
    *,
    preview: bool = False,
    overrides: Mapping[str, Any] | None = None,
    program_dir: Path | str = REPO_ROOT,
    mocks: HarnessMocks | None = None,
) -> ProgramGraph:
    """Run ``<program_dir>/__main__.py`` for ``stack`` under mocks and return its resource graph.

    ``preview=True`` runs as ``pulumi preview`` (``dry_run``): resources get only their inputs back,
    so derived values are unknown. Exceptions raised by the program surface as
    :class:`ProgramError` carrying the program's message.
    """
    program_dir = Path(program_dir).resolve()
    project_doc = load_project(program_dir)
    project, config, secret_keys = load_config(stack, overrides=overrides, program_dir=program_dir)
    main_path = program_main(program_dir, project_doc)
    account_id = account_id_from_config(config, project)
    region = config.get("aws:region") or DEFAULT_REGION
    mocks = mocks or HarnessMocks(account_id=account_id, region=region, preview=preview)

    with _EVAL_LOCK, _pulumi_defaults_restored():
        ctx = contextvars.copy_context()
        return ctx.run(
            _evaluate_in_context,
            main_path,
            program_dir,
            stack,
            project,
            config,
            secret_keys,
            preview,
            mocks,
        )


@contextlib.contextmanager
def _pulumi_defaults_restored():
    """Undo the one piece of Pulumi state a copied context does not isolate.

    ``pulumi._utils.ContextProperty.fset`` replaces the property's *default* when the current value
    is ``None``, so configuring settings (as ``set_mocks`` does too) would leak this run's monitor,
    stack and dry-run flag into every later context. Save and restore those defaults.
    """
    from pulumi._utils import ContextProperty
    from pulumi.runtime.settings import Settings

    props = [v for v in vars(Settings).values() if isinstance(v, ContextProperty)]
    saved = [(p, p._ContextProperty__default) for p in props]  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for prop, default in saved:
            prop._ContextProperty__default = default  # type: ignore[attr-defined]


def reset_pulumi_state() -> None:
    """Reset Pulumi's ambient state in the *current* context (for tests that use ``set_mocks``)."""
    import pulumi.runtime
    from pulumi.runtime import settings as pulumi_settings

    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_all_config({}, [])
    pulumi_settings.configure(
        pulumi_settings.Settings(project="project", stack="stack", organization=ORGANIZATION)
    )


def _evaluate_in_context(
    main_path: Path,
    program_dir: Path,
    stack: str,
    project: str,
    config: dict[str, str],
    secret_keys: list[str],
    preview: bool,
    mocks: HarnessMocks,
) -> ProgramGraph:
    import pulumi.runtime
    from pulumi.runtime import settings as pulumi_settings
    from pulumi.runtime.mocks import MockSettings
    from pulumi.runtime.stack import run_in_stack

    monitor = capturing_monitor_class()(
        mocks, stack=stack, project=project, preview=preview, config=config, secret_keys=secret_keys
    )
    engine = RecordingEngine()

    saved_env = {k: os.environ.get(k) for k in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS")}
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    modules_before = set(sys.modules)
    loop = asyncio.new_event_loop()
    error: BaseException | None = None
    try:
        os.environ["PULUMI_CONFIG"] = json.dumps(config)
        os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
        pulumi.runtime.set_all_config(config, secret_keys)
        pulumi_settings.ROOT.set(None)
        pulumi_settings.configure(
            MockSettings(
                monitor=monitor,
                monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
                engine=engine,
                project=project,
                stack=stack,
                organization=ORGANIZATION,
                dry_run=preview,
                parallel=16,
                callbacks=None,
                root_directory=str(program_dir),
                outputs=set(),
                lock=threading.Lock(),
            )
        )
        os.chdir(program_dir)
        sys.path.insert(0, str(program_dir))
        asyncio.set_event_loop(loop)
        loop.run_until_complete(
            run_in_stack(lambda: runpy.run_path(str(main_path), run_name="__main__"))
        )
    except BaseException as exc:  # noqa: BLE001 - re-raised as ProgramError below
        error = exc
    finally:
        try:
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            asyncio.set_event_loop(None)
        pulumi_settings.ROOT.set(None)
        pulumi.runtime.set_all_config({}, [])
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _purge_program_modules(modules_before, program_dir)

    with monitor.lock:
        records = list(monitor.records)
        invokes = list(monitor.invokes)
        raw_requests = list(monitor.requests)
    resources = _with_default_providers(
        records, config, secret_keys, stack=stack, project=project, preview=preview
    )
    stack_rec = next((r for r in resources if r.type == STACK_TYPE), None)
    graph = ProgramGraph(
        stack=stack,
        project=project,
        preview=preview,
        config=dict(config),
        secret_keys=list(secret_keys),
        resources=resources,
        outputs=dict(stack_rec.outputs) if stack_rec else {},
        invokes=invokes,
        logs=list(engine.logs),
        raw_requests=raw_requests,
    )
    if error is not None:
        if isinstance(error, KeyboardInterrupt):
            raise error
        message = str(error) or type(error).__name__
        raise ProgramError(message, error_type=type(error).__name__, graph=graph) from error
    return graph
