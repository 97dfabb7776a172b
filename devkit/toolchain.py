"""``make pulumi``: the Pulumi CLI and its Python launchers, built from Go modules into a cache folder.

What lands in ``<cache>/bin`` (``<cache>`` = ``$MICROVMS_TOOLCHAIN_DIR`` or
``~/.cache/lambda-microvms/pulumi-<version>``), and where each piece comes from:

- ``pulumi``: ``go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi`` from the helper module in
  ``tools/pulumi/`` (it requires pkg/v3 and sdk/v3 at one release and restates the ``replace``
  directives of pkg/v3's own go.mod that dependents do not inherit).
- ``pulumi-language-python-exec`` and ``pulumi-resource-pulumi-python`` (the dynamic-provider
  launcher): copied unchanged from ``github.com/pulumi/pulumi/sdk/v3`` at the version of the pinned
  Python SDK (``python/cmd`` and ``python/dist`` of that module).
- ``pulumi-language-python``: our launcher of ``devkit/language_host.py`` (the upstream host's Go
  module is refused by this workplace's module proxy; see that file's docstring).
- ``pulumi-analyzer-policy-python``: our launcher of a Python policy pack (used by the engine only
  when no Python language host is installed; with ours installed it calls ``RunPlugin`` instead).

The build is idempotent: a second run checks ``versions.json`` against what it would build and
returns in about a second. ``python -m devkit.toolchain --bin-dir`` prints the bin folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HELPER_MODULE = REPO / "tools" / "pulumi"
LANGUAGE_HOST = Path(__file__).resolve().with_name("language_host.py")

# The CLI release: the pinned SDK's own release (3.272.0) is not served by the Go module proxy
# here (403 "This module version is not available" for pkg/v3@v3.272.0); v3.274.0 is the nearest
# release that is. The CLI talks to older SDKs over the same versioned gRPC protocol.
CLI_VERSION = "3.274.0"
SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
CLI_PACKAGE = "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
VERSION_LDFLAG = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"
EXIT_UNAVAILABLE = 3


class ToolchainError(RuntimeError):
    """The toolchain cannot be had here; the message says how to get it."""


def python_sdk_version() -> str:
    """The pinned ``pulumi`` Python SDK (uv.lock is the one home of that pin)."""
    from importlib.metadata import version

    return version("pulumi")


def cache_dir() -> Path:
    override = os.environ.get("MICROVMS_TOOLCHAIN_DIR")
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lambda-microvms" / f"pulumi-{CLI_VERSION}"


def bin_dir() -> Path:
    return cache_dir() / "bin"


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def wanted_versions() -> dict[str, str]:
    """What a build from this checkout produces; compared with ``versions.json`` to skip work."""
    return {
        "pulumi": CLI_VERSION,
        "pythonSdk": python_sdk_version(),
        "helperModule": _digest(HELPER_MODULE / "go.mod", HELPER_MODULE / "go.sum"),
        "languageHost": _digest(LANGUAGE_HOST),
        # what the launchers say, not this whole file (an unrelated edit needs no reinstall)
        "launchers": hashlib.sha256((LANGUAGE_LAUNCHER + ANALYZER_LAUNCHER).encode()).hexdigest()[
            :16
        ],
        "hostPython": sys.executable,
    }


def _say(msg: str) -> None:
    print(f"[make pulumi] {msg}", flush=True)


def _go() -> str:
    go = shutil.which("go")
    if not go:
        raise ToolchainError(
            "Go is not installed, so the Pulumi CLI cannot be built here. Install Go >= 1.26 "
            "(https://go.dev/dl/), or install the Pulumi CLI yourself "
            "(https://www.pulumi.com/docs/install/) and put it on PATH."
        )
    return go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-mod=mod")
    return env


def _run_with_heartbeat(cmd: list[str], *, cwd: Path, what: str) -> None:
    """Run a long step, printing elapsed time every 20 s so a first build never looks stuck."""
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=_go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    done = threading.Event()

    def beat() -> None:
        while not done.wait(20):
            _say(f"  … {what}: {time.monotonic() - started:.0f} s")

    threading.Thread(target=beat, daemon=True).start()
    out, _ = proc.communicate()
    done.set()
    if proc.returncode != 0:
        tail = "\n".join(out.strip().splitlines()[-15:])
        raise ToolchainError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")


def build_cli(target: Path) -> None:
    go = _go()
    _say(
        f"building pulumi v{CLI_VERSION} from {CLI_PACKAGE} (first build: a few minutes on 2 cores)"
    )
    tmp = target.with_suffix(".partial")
    ldflags = f"-s -w -X {VERSION_LDFLAG}=v{CLI_VERSION}"
    cmd = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), CLI_PACKAGE]
    _run_with_heartbeat(cmd, cwd=HELPER_MODULE, what="go build")
    tmp.replace(target)


def sdk_module_dir(version: str) -> Path:
    """The pinned Python SDK's Go module (it carries the Python exec script and plugin shims)."""
    out = subprocess.run(
        [_go(), "mod", "download", "-json", f"{SDK_MODULE}@v{version}"],
        cwd=HELPER_MODULE,
        env=_go_env(),
        capture_output=True,
        text=True,
    )
    info = json.loads(out.stdout or "{}")
    if out.returncode != 0 or "Dir" not in info:
        raise ToolchainError(
            f"go mod download {SDK_MODULE}@v{version} failed: {info.get('Error') or out.stderr.strip()}"
        )
    return Path(info["Dir"])


def _write_executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _copy_executable(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    dst.chmod(0o755)


# The interpreter that runs our launchers: the program's virtualenv (the engine starts language
# hosts and analyzers in the program or pack directory), else the interpreter that ran
# `make pulumi` (it has grpcio and the pulumi protos), else python3.
_FIND_PYTHON = """\
py=""
for candidate in "${PULUMI_RUNTIME_VIRTUALENV:-}" "$PWD/.venv" "$PWD/../.venv"; do
    if [ -n "$candidate" ] && [ -x "$candidate/bin/python" ]; then py="$candidate/bin/python"; break; fi
done
py="${py:-@HOST_PYTHON@}"
[ -x "$py" ] || py="${PULUMI_PYTHON_CMD:-python3}"
"""

LANGUAGE_LAUNCHER = f"""#!/bin/sh
# pulumi-language-python, written by `make pulumi` (devkit/toolchain.py): runs our Python language
# host (lib/language_host.py, a copy of devkit/language_host.py) with the program's interpreter.
here=$(cd "$(dirname "$0")" && pwd)
{_FIND_PYTHON}export PULUMI_LANGUAGE_PYTHON_EXEC="$here/pulumi-language-python-exec"
exec "$py" -u "$here/../lib/language_host.py" "$@"
"""

ANALYZER_LAUNCHER = """#!/bin/sh
# pulumi-analyzer-policy-python, written by `make pulumi` (devkit/toolchain.py). The engine runs it
# in the pack's folder as `pulumi-analyzer-policy-python ENGINE . -virtualenv=DIR -toolchain=…`;
# it starts the pack's __main__.py with the pack's virtualenv (PolicyPack prints the port).
virtualenv=""
for arg do
    case $arg in -virtualenv=*) virtualenv="${arg#*=}" ;; esac
done
if [ -n "$virtualenv" ]; then
    case $virtualenv in /*) : ;; *) virtualenv="$PWD/${virtualenv%/}" ;; esac
    if [ ! -x "$virtualenv/bin/python" ]; then
        echo "The 'virtualenv' option in PulumiPolicy.yaml is \\"$virtualenv\\", which is not a virtual environment; run 'make sync'." >&2
        exit 1
    fi
    PATH="$virtualenv/bin:$PATH"; export PATH; unset PYTHONHOME
    exec "$virtualenv/bin/python" -u . "$1"
fi
exec "${PULUMI_PYTHON_CMD:-python3}" -u . "$1"
"""


def install_launchers(bin_path: Path, sdk_version: str) -> None:
    sdk = sdk_module_dir(sdk_version)
    _copy_executable(
        sdk / "python" / "cmd" / "pulumi-language-python-exec",
        bin_path / "pulumi-language-python-exec",
    )
    _copy_executable(
        sdk / "python" / "dist" / "pulumi-resource-pulumi-python",
        bin_path / "pulumi-resource-pulumi-python",
    )
    lib = bin_path.parent / "lib"
    lib.mkdir(exist_ok=True)
    shutil.copyfile(LANGUAGE_HOST, lib / "language_host.py")
    _write_executable(
        bin_path / "pulumi-language-python",
        LANGUAGE_LAUNCHER.replace("@HOST_PYTHON@", sys.executable),
    )
    _write_executable(bin_path / "pulumi-analyzer-policy-python", ANALYZER_LAUNCHER)


def read_versions(root: Path) -> dict:
    try:
        return json.loads((root / "versions.json").read_text())
    except (OSError, ValueError):
        return {}


def ensure(*, force: bool = False) -> Path:
    """Build or reuse the toolchain; returns the bin folder."""
    root = cache_dir()
    bin_path = root / "bin"
    bin_path.mkdir(parents=True, exist_ok=True)
    wanted = wanted_versions()
    have = read_versions(root)
    cli = bin_path / "pulumi"
    started = time.monotonic()
    cli_ok = (
        cli.exists()
        and have.get("pulumi") == wanted["pulumi"]
        and have.get("helperModule") == wanted["helperModule"]
    )
    if force or not cli_ok:
        build_cli(cli)
    else:
        _say(f"pulumi v{CLI_VERSION}: cached in {bin_path}")
    launchers_ok = all(
        have.get(k) == wanted[k] for k in ("pythonSdk", "languageHost", "launchers", "hostPython")
    )
    if (
        force
        or not cli_ok
        or not launchers_ok
        or not (bin_path / "pulumi-language-python-exec").exists()
    ):
        _say(f"installing the Python launchers (SDK v{wanted['pythonSdk']})")
        install_launchers(bin_path, wanted["pythonSdk"])
    reported = subprocess.run([str(cli), "version"], capture_output=True, text=True).stdout.strip()
    if reported != f"v{CLI_VERSION}":
        raise ToolchainError(
            f"{cli} reports {reported!r}, expected v{CLI_VERSION}; run `make pulumi FORCE=1`"
        )
    go = shutil.which("go")  # a cached toolchain needs no Go; keep what built it
    go_version = (
        subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True).stdout.strip()
        if go
        else have.get("go", "")
    )
    versions = {**wanted, "go": go_version}
    (root / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")
    _say(f"ready in {time.monotonic() - started:.1f} s: pulumi {reported} in {bin_path}")
    return bin_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.toolchain", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--bin-dir", action="store_true", help="print the toolchain's bin folder and exit"
    )
    parser.add_argument(
        "--force", action="store_true", help="rebuild even when the cache is current"
    )
    parser.add_argument(
        "--if-possible",
        action="store_true",
        help="when the toolchain cannot be had, say so in one line and exit 0 (never with CI=true)",
    )
    args = parser.parse_args(argv)
    if args.bin_dir:
        print(bin_dir())
        return 0
    try:
        path = ensure(force=args.force)
    except ToolchainError as exc:
        if args.if_possible and os.environ.get("CI") != "true":
            first = str(exc).splitlines()[0]
            print(f"[make pulumi] no Pulumi toolchain ({first}); the engine tier will be skipped")
            return 0
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    _say(f'use it:  export PATH="{path}:$PATH"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
