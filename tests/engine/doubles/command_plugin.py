"""Install the pulumi-resource-command TEST DOUBLE into a test's own Pulumi plugin cache.

``install_command_double(pulumi_home, python)`` writes ``<pulumi_home>/plugins/
resource-command-v1.2.1/pulumi-resource-command``: a ``#!/bin/sh`` launcher that execs
``<python> -u -m tests.engine.doubles.command_provider "$@"`` with ``PYTHONPATH`` = the repository
root, leaving the working directory as the engine set it (upstream runs commands there by default).

What the CLI needs to count it as installed (``sdk/go/common/workspace/plugins.go`` v3.274.0):
``HasPlugin`` wants the directory ``<PULUMI_HOME>/plugins/<kind>-<name>-v<version>`` to exist and
``<dir>.partial`` to be absent; ``GetPluginsFromDir`` lists such directories (``<dir>.lock`` and
``.partial`` mark an install in progress), and the executable inside must be named
``pulumi-<kind>-<name>``. No other marker is read, so nothing else is written: a stale
``.partial``/``.lock`` left by an interrupted download is removed so the engine never tries to
(re)install the plugin. Set ``PULUMI_HOME`` to ``pulumi_home`` for the engine to find it.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from tests.engine.doubles.command_provider import VERSION

REPO_ROOT = Path(__file__).resolve().parents[3]
PLUGIN_DIR_NAME = f"resource-command-v{VERSION}"
EXECUTABLE = "pulumi-resource-command"


def launcher_script(python: str, repo_root: Path = REPO_ROOT) -> str:
    return (
        "#!/bin/sh\n"
        "# TEST DOUBLE of pulumi-resource-command v"
        f"{VERSION} (tests/engine/doubles/command_provider); written by\n"
        "# tests/engine/doubles/command_plugin.py for the engine test tier only.\n"
        f"PYTHONPATH={shlex.quote(str(repo_root))}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        "export PYTHONPATH\n"
        f'exec {shlex.quote(python)} -u -m tests.engine.doubles.command_provider "$@"\n'
    )


def install_command_double(pulumi_home: Path, python: str) -> Path:
    """Install the launcher into ``pulumi_home``'s plugin cache; returns its path."""
    plugins = Path(pulumi_home) / "plugins"
    plugin_dir = plugins / PLUGIN_DIR_NAME
    plugin_dir.mkdir(parents=True, exist_ok=True)
    for marker in (".partial", ".lock"):
        plugins.joinpath(PLUGIN_DIR_NAME + marker).unlink(missing_ok=True)
    launcher = plugin_dir / EXECUTABLE
    tmp = launcher.with_name(EXECUTABLE + ".tmp")
    tmp.write_text(launcher_script(python))
    tmp.chmod(0o755)
    os.replace(tmp, launcher)
    return launcher
