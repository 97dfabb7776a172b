"""Drive a Pulumi dynamic provider over the real ``ResourceProvider`` gRPC protocol.

The engine runs dynamic providers through the ``pulumi-resource-pulumi-python`` shim, which is
``$PULUMI_RUNTIME_VIRTUALENV/bin/python -u -m pulumi.dynamic <engineAddr>`` with the *program
directory* as cwd (so a provider class pickled by reference can be imported) and
``PULUMI_PROJECT``/``PULUMI_CONFIG`` in the environment. :class:`DynamicProvider` does exactly that
and then speaks gRPC to the SDK's own server::

    from devkit.offline.provider import DynamicProvider, make_urn, serialize_provider

    prov = serialize_provider(MyProvider())
    with DynamicProvider() as p:
        p.configure({"aws:region": "us-east-1"})
        urn = make_urn("pulumi-python:dynamic/lambda-microvms:MicrovmImage", "image")
        checked = p.check(urn, {}, {"__provider": prov, "name": "x"})
        created = p.create(urn, checked.inputs)

Methods take and return plain dicts; properties are encoded as the engine encodes them (secrets
unwrapped because the Python server answers ``acceptSecrets=False``; unknowns only in preview
Check/Diff). Put a secret in with :func:`devkit.offline.wire.secret`, an unknown with
:data:`devkit.offline.wire.UNKNOWN`. A failing RPC raises :class:`ProviderError` with the gRPC code
and the provider's traceback in ``details``.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devkit.offline import wire
from devkit.offline.config import REPO_ROOT

STARTUP_TIMEOUT = 30.0


class ProviderError(Exception):
    """A provider RPC failed. ``code`` is the ``grpc.StatusCode``, ``details`` the server's text."""

    def __init__(self, code: Any, details: str, method: str = ""):
        self.code = code
        self.details = details or ""
        self.method = method
        name = getattr(code, "name", str(code))
        super().__init__(
            f"{method}: {name}: {self.details}" if method else f"{name}: {self.details}"
        )


@dataclasses.dataclass
class CheckResult:
    inputs: dict[str, Any]
    failures: list[dict[str, str]]


@dataclasses.dataclass
class DiffResult:
    #: ``"DIFF_SOME"``, ``"DIFF_NONE"`` or ``"DIFF_UNKNOWN"``.
    changes: str
    replaces: list[str]
    delete_before_replace: bool
    #: Properties the provider named as changed (the Python server never fills this).
    diffs: list[str] = dataclasses.field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return self.changes == "DIFF_SOME"


@dataclasses.dataclass
class CreateResult:
    id: str
    outputs: dict[str, Any]


@dataclasses.dataclass
class ReadResult:
    id: str
    outputs: dict[str, Any]
    inputs: dict[str, Any] | None


def serialize_provider(obj: Any) -> str:
    """The ``__provider`` string the SDK would put on a dynamic resource for ``obj``."""
    from pulumi.dynamic.dynamic import serialize_provider as _serialize

    return _serialize(obj)


def make_urn(
    type_token: str,
    name: str,
    stack: str = "test",
    project: str = "lambda-microvms",
    parent_type: str = "",
) -> str:
    qualified = f"{parent_type}${type_token}" if parent_type else type_token
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _type_and_name(urn: str) -> tuple[str, str]:
    parts = urn.split("::")
    if len(parts) < 4:
        return "", ""
    return parts[2].split("$")[-1], parts[3]


def default_python(cwd: Path) -> str:
    """``$PULUMI_RUNTIME_VIRTUALENV/bin/python`` as the shim would pick, else this interpreter."""
    venv_python = Path(cwd) / ".venv" / "bin" / "python"
    if venv_python.exists():
        return str(venv_python)
    return sys.executable


# Run as ``python -S -c _EXEC_WITH_PDEATHSIG <argv...>``: ask Linux to SIGTERM the process when
# the test process dies (even by SIGKILL or a pytest-timeout hard exit), then exec the real plugin
# command unchanged. Done with a tiny exec wrapper because ``preexec_fn`` forks a Python child
# while gRPC threads run, which crashes it.
_EXEC_WITH_PDEATHSIG = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)\n"
    "except OSError:\n"
    "    pass\n"
    "if os.getppid() == int(sys.argv[1]):\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
)

_LIVE_PLUGINS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_live_plugins() -> None:
    """Stop plugins a test forgot to stop (a leaked fixture) when the test process exits."""
    for plugin in list(_LIVE_PLUGINS):
        plugin.stop()


class _Plugin:
    """A plugin subprocess whose first stdout line is its gRPC port; output kept for diagnostics."""

    def __init__(self, argv: list[str], *, cwd: Path, env: Mapping[str, str], name: str):
        self.name = name
        if sys.platform.startswith("linux"):
            argv = [sys.executable, "-S", "-c", _EXEC_WITH_PDEATHSIG, str(os.getpid()), *argv]
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            cwd=str(cwd),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._port_line: list[str] = []
        self._port_ready = threading.Event()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True),
        ]
        for t in self._threads:
            t.start()
        _LIVE_PLUGINS.add(self)
        if not self._port_ready.wait(STARTUP_TIMEOUT) or not self._port_line:
            self.stop()
            raise RuntimeError(
                f"{name} did not print its port within {STARTUP_TIMEOUT:.0f}s "
                f"(exit={self.proc.poll()}); stderr:\n{self.stderr}"
            )
        try:
            self.port = int(self._port_line[0].strip())
        except ValueError:
            self.stop()
            raise RuntimeError(
                f"{name} printed {self._port_line[0]!r} instead of a port; stderr:\n{self.stderr}"
            ) from None

    def _pump(self, stream, is_stdout: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            if is_stdout and not self._port_ready.is_set():
                self._port_line.append(line)
                self._port_ready.set()
                continue
            (self.stdout_lines if is_stdout else self.stderr_lines).append(line)
        if is_stdout:
            self._port_ready.set()
        stream.close()

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    @property
    def stdout(self) -> str:
        return "".join(self.stdout_lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._threads:
            t.join(2)


class DynamicProvider:
    """Context manager around ``python -u -m pulumi.dynamic`` speaking ``ResourceProvider`` gRPC.

    ``cwd`` is the program directory (the engine's choice); ``env`` adds/overrides environment
    variables of the plugin process. ``provider`` (an object or its serialized string) is put in
    as ``__provider`` wherever a property bag lacks one; ``config`` is what :meth:`configure`
    sends if the caller never calls it (the engine always configures before the first call).
    """

    def __init__(
        self,
        cwd: Path | str = REPO_ROOT,
        env: Mapping[str, str] | None = None,
        *,
        project: str = "lambda-microvms",
        provider: Any = None,
        config: Mapping[str, Any] | None = None,
        python: str | None = None,
        rpc_timeout: float = 120.0,
    ):
        self.cwd = Path(cwd)
        self.project = project
        self.extra_env = dict(env or {})
        self.provider_string = (
            provider
            if isinstance(provider, str) or provider is None
            else serialize_provider(provider)
        )
        self.default_config = dict(config or {})
        self.python = python or default_python(self.cwd)
        self.rpc_timeout = rpc_timeout
        self.configured = False
        self.configure_response: dict[str, Any] = {}
        self.plugin_info: dict[str, Any] = {}
        self._plugin: _Plugin | None = None
        self._channel = None
        self._stub = None

    # Lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> DynamicProvider:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        import grpc
        from pulumi.runtime.proto import provider_pb2_grpc

        env = dict(os.environ)
        env.update(
            {
                "PULUMI_PROJECT": self.project,
                "PULUMI_CONFIG": "{}",
                "PULUMI_RUNTIME_TOOLCHAIN": "uv",
                "PULUMI_RUNTIME_VIRTUALENV": str(self.cwd / ".venv"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        self._plugin = _Plugin(
            [self.python, "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],
            cwd=self.cwd,
            env=env,
            name="pulumi-resource-pulumi-python",
        )
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self._plugin.port}")
        grpc.channel_ready_future(self._channel).result(timeout=STARTUP_TIMEOUT)
        self._stub = provider_pb2_grpc.ResourceProviderStub(self._channel)
        # The engine's opening moves: Handshake (unimplemented here), then GetPluginInfo.
        from google.protobuf import empty_pb2

        try:
            self._stub.Handshake(_handshake_request(self.cwd), timeout=self.rpc_timeout)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise ProviderError(exc.code(), exc.details(), "Handshake") from None
        info = self._call("GetPluginInfo", empty_pb2.Empty())
        self.plugin_info = {"version": info.version}

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._plugin is not None:
            self._plugin.stop()

    @property
    def stderr(self) -> str:
        """What the plugin wrote to stderr (tracebacks, warnings)."""
        return self._plugin.stderr if self._plugin else ""

    @property
    def stdout(self) -> str:
        """Plugin stdout after the port line (the engine shows it as plugin log output)."""
        return self._plugin.stdout if self._plugin else ""

    # Encoding --------------------------------------------------------------------------
    def _with_provider(
        self, props: Mapping[str, Any] | None, fallback: Mapping[str, Any] | None = None
    ) -> dict:
        props = dict(props or {})
        current = props.get(wire.PROVIDER_KEY)
        if current is None or wire.is_unknown(wire.unwrap_secrets(current)):
            # pulumi 3.272's Check/Diff compare an Unknown *object* with the UNKNOWN string, so an
            # unknown __provider crashes the server. The engine always has the real string (it is
            # computed at construction), so send that.
            replacement = (fallback or {}).get(wire.PROVIDER_KEY) or self.provider_string
            if replacement is not None:
                props[wire.PROVIDER_KEY] = replacement
            elif current is not None:
                props[wire.PROVIDER_KEY] = current
        return props

    def _encode(self, props: Mapping[str, Any] | None, *, keep_unknowns: bool) -> Any:
        """Engine MarshalOptions for this provider: secrets unwrapped (acceptSecrets=False)."""
        marshalled = wire.engine_remarshal(
            wire._jsonable(dict(props or {})),
            keep_unknowns=keep_unknowns,
            keep_secrets=bool(self.configure_response.get("acceptSecrets")),
        )
        return wire.to_struct(marshalled)

    @staticmethod
    def _decode(struct: Any) -> dict[str, Any]:
        return wire.unwrap_secrets(wire.from_struct(struct))

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        import grpc

        if self._stub is None:
            raise RuntimeError("DynamicProvider is not started (use it as a context manager)")
        try:
            return getattr(self._stub, method)(request, timeout=timeout or self.rpc_timeout)
        except grpc.RpcError as exc:
            raise ProviderError(exc.code(), exc.details(), method) from None

    def _ensure_configured(self) -> None:
        if not self.configured:
            self.configure(self.default_config)

    # Provider RPCs ---------------------------------------------------------------------
    def configure(
        self, config: Mapping[str, Any] | None = None, *, secret_keys=()
    ) -> dict[str, Any]:
        """Configure with the full, namespaced stack config (as ``deploy/target.go`` does).

        Values are sent as the engine sends config (strings; ``secret_keys`` wrapped as secrets).
        Returns the ConfigureResponse flags.
        """
        from pulumi.runtime.proto import provider_pb2

        config = dict(config or {})
        variables = {k: v if isinstance(v, str) else _json(v) for k, v in config.items()}
        args = {k: wire.secret(v) if k in set(secret_keys) else v for k, v in variables.items()}
        request = provider_pb2.ConfigureRequest(
            variables=variables,
            args=wire.to_struct(args),
            acceptSecrets=True,
            acceptResources=True,
            sends_old_inputs=True,
            sends_old_inputs_to_delete=True,
            urn=make_urn("pulumi:providers:pulumi-python", "default", project=self.project),
            name="default",
            type="pulumi:providers:pulumi-python",
            id="",
        )
        resp = self._call("Configure", request)
        self.configure_response = {
            "acceptSecrets": resp.acceptSecrets,
            "supportsPreview": resp.supportsPreview,
            "acceptResources": resp.acceptResources,
            "acceptOutputs": resp.acceptOutputs,
        }
        self.configured = True
        return dict(self.configure_response)

    def check(
        self,
        urn: str,
        olds: Mapping[str, Any] | None,
        news: Mapping[str, Any],
        *,
        preview: bool = False,
        random_seed: bytes = b"",
    ) -> CheckResult:
        from pulumi.runtime.proto import provider_pb2

        self._ensure_configured()
        olds = dict(olds or {})
        news = self._with_provider(news, olds)
        type_, name = _type_and_name(urn)
        request = provider_pb2.CheckRequest(
            urn=urn,
            name=name,
            type=type_,
            olds=self._encode(olds, keep_unknowns=preview),
            news=self._encode(news, keep_unknowns=preview),
            randomSeed=random_seed or os.urandom(32),
        )
        resp = self._call("Check", request)
        return CheckResult(
            inputs=self._decode(resp.inputs),
            failures=[{"property": f.property, "reason": f.reason} for f in resp.failures],
        )

    def diff(
        self,
        id: str,  # noqa: A002 - engine field name
        urn: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        old_inputs: Mapping[str, Any] | None = None,
        *,
        preview: bool = False,
        ignore_changes: list[str] | None = None,
    ) -> DiffResult:
        """``olds`` are the old *outputs*, ``news`` the new checked inputs (engine convention)."""
        from pulumi.runtime.proto import provider_pb2

        self._ensure_configured()
        olds = dict(olds or {})
        news = self._with_provider(news, olds)
        type_, name = _type_and_name(urn)
        request = provider_pb2.DiffRequest(
            id=id,
            urn=urn,
            name=name,
            type=type_,
            olds=self._encode(olds, keep_unknowns=False),
            news=self._encode(news, keep_unknowns=preview),
            old_inputs=self._encode(
                old_inputs if old_inputs is not None else olds, keep_unknowns=False
            ),
            ignoreChanges=list(ignore_changes or []),
        )
        resp = self._call("Diff", request)
        return DiffResult(
            changes=provider_pb2.DiffResponse.DiffChanges.Name(resp.changes),
            replaces=list(resp.replaces),
            delete_before_replace=bool(resp.deleteBeforeReplace),
            diffs=list(resp.diffs),
        )

    def create(self, urn: str, properties: Mapping[str, Any], timeout: float = 600) -> CreateResult:
        """Create with the *checked* inputs. Never called during preview (``supportsPreview=False``)."""
        from pulumi.runtime.proto import provider_pb2

        self._ensure_configured()
        props = self._with_provider(properties)
        type_, name = _type_and_name(urn)
        request = provider_pb2.CreateRequest(
            urn=urn,
            name=name,
            type=type_,
            properties=self._encode(props, keep_unknowns=False),
            timeout=timeout,
            preview=False,
        )
        resp = self._call("Create", request, timeout=timeout + 30)
        return CreateResult(id=resp.id, outputs=self._decode(resp.properties))

    def read(
        self,
        id: str,  # noqa: A002
        urn: str,
        properties: Mapping[str, Any],
        inputs: Mapping[str, Any] | None = None,
    ) -> ReadResult:
        """Refresh: ``properties`` are the last outputs. An empty ``id`` back means "gone"."""
        from pulumi.runtime.proto import provider_pb2

        self._ensure_configured()
        props = self._with_provider(properties, inputs)
        type_, name = _type_and_name(urn)
        request = provider_pb2.ReadRequest(
            id=id,
            urn=urn,
            name=name,
            type=type_,
            properties=self._encode(props, keep_unknowns=False),
            inputs=self._encode(inputs, keep_unknowns=False) if inputs is not None else None,
        )
        resp = self._call("Read", request)
        new_inputs = self._decode(resp.inputs) if resp.HasField("inputs") else None
        return ReadResult(id=resp.id, outputs=self._decode(resp.properties), inputs=new_inputs)

    def update(
        self,
        id: str,  # noqa: A002
        urn: str,
        olds: Mapping[str, Any],
        news: Mapping[str, Any],
        old_inputs: Mapping[str, Any] | None = None,
        timeout: float = 600,
        *,
        ignore_changes: list[str] | None = None,
    ) -> dict[str, Any]:
        """Update: ``olds`` are the old outputs, ``news`` the new checked inputs. Returns outputs."""
        from pulumi.runtime.proto import provider_pb2

        self._ensure_configured()
        olds = dict(olds or {})
        news = self._with_provider(news, olds)
        type_, name = _type_and_name(urn)
        request = provider_pb2.UpdateRequest(
            id=id,
            urn=urn,
            name=name,
            type=type_,
            olds=self._encode(olds, keep_unknowns=False),
            news=self._encode(news, keep_unknowns=False),
            old_inputs=self._encode(
                old_inputs if old_inputs is not None else olds, keep_unknowns=False
            ),
            timeout=timeout,
            preview=False,
            ignoreChanges=list(ignore_changes or []),
        )
        resp = self._call("Update", request, timeout=timeout + 30)
        return self._decode(resp.properties)

    def delete(
        self,
        id: str,  # noqa: A002
        urn: str,
        properties: Mapping[str, Any],
        old_inputs: Mapping[str, Any] | None = None,
        timeout: float = 600,
    ) -> None:
        """Delete: ``properties`` are the last outputs."""
        from pulumi.runtime.proto import provider_pb2

        self._ensure_configured()
        props = self._with_provider(properties, old_inputs)
        type_, name = _type_and_name(urn)
        request = provider_pb2.DeleteRequest(
            id=id,
            urn=urn,
            name=name,
            type=type_,
            properties=self._encode(props, keep_unknowns=False),
            old_inputs=self._encode(
                old_inputs if old_inputs is not None else props, keep_unknowns=False
            ),
            timeout=timeout,
        )
        self._call("Delete", request, timeout=timeout + 30)


def _json(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def _handshake_request(cwd: Path) -> Any:
    from pulumi.runtime.proto import provider_pb2

    return provider_pb2.ProviderHandshakeRequest(
        engine_address="127.0.0.1:1",
        root_directory=str(cwd),
        program_directory=str(cwd),
        configure_with_urn=True,
        supports_views=False,
        supports_refresh_before_update=False,
        invoke_with_preview=True,
    )
