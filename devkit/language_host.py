"""Our equivalent of ``pulumi-language-python``: the Python language host the Pulumi CLI launches.

Why it exists: ``make pulumi`` builds the Pulumi CLI from its Go module, but the language host lives
in a Go module of its own (``github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3``)
that this workplace's Go module proxy refuses ("This module version is not available"). The host is
a thin launcher around the SDK's own ``pulumi-language-python-exec`` script (taken unchanged from the
pinned ``github.com/pulumi/pulumi/sdk/v3`` module), so this file only does what upstream's host does
for the calls the engine makes on ``preview``/``up``/``refresh``/``destroy``/``import``:

- ``Run``: ``<venv>/bin/python -u pulumi-language-python-exec --monitor … --engine … PROGRAM`` with
  ``PULUMI_CONFIG``/``PULUMI_CONFIG_SECRET_KEYS`` in the environment, the program's stdout/stderr
  passed through, exit code 32 mapped to ``bail`` (the program already showed its error);
- ``RunPlugin``: ``<venv>/bin/python <plugin dir> ARGS…`` (how the engine starts a Python policy pack
  when a Python language host is installed), output streamed back;
- ``GetRequiredPackages``/``GetRequiredPlugins``: the ``pulumi-plugin.json`` of every installed
  distribution with ``"resource": true`` (name, version, server), as upstream reports them;
- ``InstallDependencies``: ``uv sync --locked`` (uv toolchain) or ``pip install -r requirements.txt``;
- ``GetPluginInfo``, ``About``, ``GetProgramDependencies``, ``RuntimeOptionsPrompts``, ``Handshake``.

Everything else answers UNIMPLEMENTED, as an older upstream host would. It runs with the project's
own interpreter (it needs only ``grpcio`` and the protobuf modules that ship in the ``pulumi`` wheel)
and prints its port on stdout like every plugin. Run: ``python language_host.py ENGINE_ADDRESS``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

EXEC_SCRIPT_NAME = "pulumi-language-python-exec"
USER_ACTIONABLE_EXIT_CODE = 32  # the exec script already logged the error through the engine
HOST_VERSION = os.environ.get("PULUMI_LANGUAGE_PYTHON_VERSION", "3.272.0")

# Lists the distributions that carry a pulumi-plugin.json, in the program's own interpreter.
_LIST_PLUGINS = r"""
import json, importlib.metadata as md
out = []
for dist in md.distributions():
    for f in dist.files or ():
        if f.name == "pulumi-plugin.json":
            try:
                data = json.loads(f.read_text())
            except Exception:
                continue
            out.append({"dist": dist.metadata["Name"], "version": dist.version, "plugin": data})
print(json.dumps(out))
"""

_LIST_DISTS = r"""
import json, importlib.metadata as md
print(json.dumps(sorted({(d.metadata["Name"], d.version) for d in md.distributions()})))
"""


class VenvError(RuntimeError):
    """The runtime options name a virtualenv that does not exist: say how to make it."""


def runtime_options(info: language_pb2.ProgramInfo | None) -> dict:
    if info is None or not info.HasField("options"):
        return {}
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(info.options)


def resolve_python(info: language_pb2.ProgramInfo | None, *, plugin: bool = False) -> str:
    """The interpreter of the program's virtualenv (``options.virtualenv`` relative to the root)."""
    opts = runtime_options(info)
    root = Path(info.root_directory) if info is not None and info.root_directory else Path.cwd()
    venv = opts.get("virtualenv") or (".venv" if opts.get("toolchain") == "uv" else "")
    if not venv and plugin:
        venv = "venv"  # upstream never runs plugins with the ambient interpreter
    if not venv:
        return os.environ.get("PULUMI_PYTHON_CMD", "python3")
    path = Path(venv) if Path(venv).is_absolute() else root / venv
    python = path / "bin" / "python"
    if not python.exists():
        raise VenvError(
            f"The 'virtualenv' option is set to {venv!r}, but {path} is not a virtual environment. "
            "Create it with `make sync` (uv sync --locked) in the project root."
        )
    return str(python)


def plugin_version(package_version: str) -> str:
    """PEP 440 → the plugin's semver, as upstream's ``determinePluginVersion`` (common forms only)."""
    import re

    m = re.fullmatch(
        r"(\d+(?:\.\d+)*)(?:(a|b|rc)(\d+))?(?:\.post(\d+))?(?:\.dev(\d+))?", package_version
    )
    if not m:
        raise ValueError(f"cannot derive a plugin version from package version {package_version!r}")
    nums = m.group(1).split(".")
    nums += ["0"] * (3 - len(nums))
    version = ".".join(nums)
    if m.group(2):
        version += {"a": "-alpha.", "b": "-beta.", "rc": "-rc."}[m.group(2)] + m.group(3)
    if m.group(4):
        version += "+post" + m.group(4)
    if m.group(5):
        version += ("dev" if m.group(4) else "+dev") + m.group(5)
    return version


def required_packages(python: str) -> list[plugin_pb2.PackageDependency]:
    found = json.loads(
        subprocess.run(
            [python, "-c", _LIST_PLUGINS], check=True, capture_output=True, text=True
        ).stdout
    )
    deps: dict[str, plugin_pb2.PackageDependency] = {}
    for entry in found:
        plugin = entry["plugin"]
        if not plugin.get("resource", False):
            continue
        name = plugin.get("name") or entry["dist"].removeprefix("pulumi-").removeprefix("pulumi_")
        version = plugin.get("version") or plugin_version(entry["version"])
        deps[name] = plugin_pb2.PackageDependency(
            name=name,
            kind="resource",
            version=version if version.startswith("v") else "v" + version,
            server=plugin.get("server", ""),
        )
    return [deps[k] for k in sorted(deps)]


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, engine_address: str, exec_script: Path):
        self.engine_address = engine_address
        self.exec_script = exec_script

    # -- handshake and info --------------------------------------------------------------------
    def Handshake(self, request, context):
        if request.engine_address:
            self.engine_address = request.engine_address
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=HOST_VERSION)

    def About(self, request, context):
        python = self._python(request.info if request.HasField("info") else None, context)
        version = subprocess.run(
            [python, "--version"], capture_output=True, text=True
        ).stdout.strip()
        return language_pb2.AboutResponse(
            executable=python, version=version.removeprefix("Python ")
        )

    def RuntimeOptionsPrompts(self, request, context):
        return language_pb2.RuntimeOptionsResponse()

    # -- plugins and dependencies --------------------------------------------------------------
    def GetRequiredPackages(self, request, context):
        python = self._python(request.info, context)
        return language_pb2.GetRequiredPackagesResponse(packages=required_packages(python))

    def GetRequiredPlugins(self, request, context):
        python = self._python(request.info, context)
        plugins = [
            plugin_pb2.PluginDependency(
                name=p.name, kind=p.kind, version=p.version, server=p.server
            )
            for p in required_packages(python)
        ]
        return language_pb2.GetRequiredPluginsResponse(plugins=plugins)

    def GetProgramDependencies(self, request, context):
        python = self._python(request.info if request.HasField("info") else None, context)
        dists = json.loads(
            subprocess.run(
                [python, "-c", _LIST_DISTS], check=True, capture_output=True, text=True
            ).stdout
        )
        return language_pb2.GetProgramDependenciesResponse(
            dependencies=[language_pb2.DependencyInfo(name=n, version=v) for n, v in dists]
        )

    def InstallDependencies(self, request, context):
        info = request.info if request.HasField("info") else None
        opts = runtime_options(info)
        root = (
            Path(info.root_directory)
            if info is not None and info.root_directory
            else Path(request.directory)
        )
        if opts.get("toolchain") == "uv":
            cmd = ["uv", "sync", "--locked"]
        else:
            cmd = [
                self._python(info, context, plugin=request.is_plugin),
                "-m",
                "pip",
                "install",
                "-r",
                "requirements.txt",
            ]
        proc = subprocess.run(cmd, cwd=root, capture_output=True)
        yield language_pb2.InstallDependenciesResponse(stdout=proc.stdout, stderr=proc.stderr)
        if proc.returncode != 0:
            context.abort(
                grpc.StatusCode.UNKNOWN, f"{' '.join(cmd)} exited with code {proc.returncode}"
            )

    # -- running ------------------------------------------------------------------------------
    def Run(self, request, context):
        try:
            python = resolve_python(request.info)
        except VenvError as exc:
            return language_pb2.RunResponse(error=str(exc))
        args = [python, "-u", str(self.exec_script), *self._exec_arguments(request)]
        env = dict(os.environ)
        env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        # The program's output goes where the engine reads ours.
        code = subprocess.run(args, env=env, stdout=sys.stdout, stderr=sys.stderr).returncode
        sys.stdout.flush()
        sys.stderr.flush()
        if code == 0:
            return language_pb2.RunResponse()
        if code == USER_ACTIONABLE_EXIT_CODE:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"program exited with non-zero exit code: {code}")

    def _exec_arguments(self, req) -> list[str]:
        args: list[str] = []

        def opt(key: str, value: str) -> None:
            if value:
                args.extend([f"--{key}", value])

        opt("monitor", req.monitor_address)
        opt("engine", self.engine_address)
        opt("project", req.project)
        opt("root_directory", req.info.root_directory if req.HasField("info") else "")
        opt("stack", req.stack)
        opt("pwd", req.pwd)
        opt("dry_run", "true" if req.dryRun else "false")
        opt("parallel", str(req.parallel))
        opt("organization", req.organization)
        args.append(req.program or ".")
        args.extend(req.args)
        return args

    def RunPlugin(self, request, context):
        info = request.info if request.HasField("info") else None
        try:
            python = resolve_python(info, plugin=True)
        except VenvError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        program = (
            info.program_directory
            if info is not None and info.program_directory
            else request.program
        )
        env = dict(os.environ)
        env.update(kv.split("=", 1) for kv in request.env if "=" in kv)
        env["PYTHONUNBUFFERED"] = "1"  # the plugin's port line must reach the engine at once
        proc = subprocess.Popen(
            [python, program, *request.args],
            cwd=request.pwd or None,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        context.add_callback(lambda: proc.poll() is None and proc.terminate())
        chunks: list[language_pb2.RunPluginResponse] = []
        lock = threading.Condition()

        def pump(stream, field: str) -> None:
            for data in iter(lambda: stream.read1(65536), b""):
                with lock:
                    chunks.append(language_pb2.RunPluginResponse(**{field: data}))
                    lock.notify()

        pumps = [
            threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True),
        ]
        for t in pumps:
            t.start()
        while True:
            with lock:
                lock.wait_for(lambda: chunks or not any(t.is_alive() for t in pumps), timeout=0.5)
                pending, chunks[:] = list(chunks), []
            yield from pending
            if not pending and not any(t.is_alive() for t in pumps):
                break
        yield language_pb2.RunPluginResponse(exitcode=proc.wait())

    def _python(self, info, context, *, plugin: bool = False) -> str:
        try:
            return resolve_python(info, plugin=plugin)
        except VenvError as exc:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            raise  # unreachable: abort raises


def main(argv: list[str]) -> int:
    positional = [a for a in argv if not a.startswith("-")]
    engine_address = positional[0] if positional else ""
    exec_script = Path(
        os.environ.get("PULUMI_LANGUAGE_PYTHON_EXEC", Path(__file__).with_name(EXEC_SCRIPT_NAME))
    )
    if not exec_script.is_file():
        print(
            f"pulumi-language-python: {exec_script} is missing; run `make pulumi`", file=sys.stderr
        )
        return 1
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)],
    )
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(
        LanguageHost(engine_address, exec_script), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
