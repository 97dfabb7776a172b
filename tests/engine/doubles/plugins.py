"""Install test doubles into a test's own Pulumi plugin cache (``$PULUMI_HOME/plugins``).

The CLI finds a resource plugin at ``$PULUMI_HOME/plugins/resource-<name>-v<version>/
pulumi-resource-<name>`` and counts it as installed when that folder exists and no sibling
``resource-<name>-v<version>.partial`` file does (``workspace.HasPlugin`` /
``GetPluginsFromDir`` in ``sdk/go/common/workspace/plugins.go``). A ``.lock`` file is only the
installer's mutex. Without a ``PulumiPlugin.yaml`` in the folder the engine executes the file
directly, with the program directory as its working directory.
"""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

from devkit.local_stack import required_plugins

REPO_ROOT = Path(__file__).resolve().parents[3]
#: The release the aws double stands in for: what the installed pulumi_aws SDK asks the engine for.
AWS_PLUGIN_VERSION = dict(required_plugins())["aws"]


def install_aws_double(pulumi_home: Path, python: str) -> Path:
    """Write the ``pulumi-resource-aws`` launcher of the aws test double; return its path.

    The launcher ``exec``s ``python -u -m tests.engine.doubles.aws_provider "$@"`` with the repo
    root on ``PYTHONPATH``, leaving the working directory the engine chose.
    """
    plugins = Path(pulumi_home) / "plugins"
    folder = plugins / f"resource-aws-v{AWS_PLUGIN_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    for marker in (".partial", ".lock"):
        # A leftover .partial makes the CLI treat the plugin as half-installed and re-download it.
        (plugins / f"{folder.name}{marker}").unlink(missing_ok=True)
    launcher = folder / "pulumi-resource-aws"
    root = shlex.quote(str(REPO_ROOT))
    launcher.write_text(
        "#!/bin/sh\n"
        "# TEST DOUBLE of pulumi-resource-aws (tests/engine/doubles/aws_provider); tests only.\n"
        f"PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        "export PYTHONPATH\n"
        f'exec {shlex.quote(python)} -u -m tests.engine.doubles.aws_provider "$@"\n'
    )
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return launcher
