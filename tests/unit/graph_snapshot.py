"""A machine-independent snapshot of the resources a program registers (for no-diff tests).

``snapshot(graph)`` keeps, per URN, what the engine would diff an existing stack on: inputs,
resource options, parent, provider reference and dependencies. What legitimately varies between
machines and between unrelated changes is replaced by placeholders: the artifact digest (the
content of ``image/``), the build fingerprint derived from it, ``image/hooks.json``, the
interpreter path, the pickled dynamic provider (``__provider``: the provider's code) and plugin
versions.

Regenerate the stored snapshot from a given commit's program (a temporary worktree)::

    git worktree add --detach /tmp/old <commit> && ln -s "$PWD/.venv" /tmp/old/.venv
    (cd /tmp/old && .venv/bin/python "$OLDPWD/tests/unit/graph_snapshot.py" "$OLDPWD/tests/unit/snapshots/single_image.json")
    git worktree remove --force /tmp/old
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

SNAPSHOT_CASES = (("dev", False), ("dev", True), ("local", False))
VERSIONED = re.compile(r"default_\d+_\d+_\d+")
SMOKE = "command:local:Command"
IMAGE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"


def _walk(value: Any, replace: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, replace) for v in value]
    if isinstance(value, str):
        for old, new in replace.items():
            value = value.replace(old, new)
        return VERSIONED.sub("default_X", value)
    return value


def snapshot(graph: Any, program_dir: Path) -> dict[str, Any]:
    """The normalised resource records and outputs of one evaluation."""
    sys.path.insert(0, str(program_dir))
    try:
        from components.artifact import build_zip
    finally:
        sys.path.pop(0)
    digest = build_zip(program_dir / "image").sha256
    hooks_file = program_dir / "image" / "hooks.json"
    hooks = json.loads(hooks_file.read_text()) if hooks_file.exists() else None
    replace = {digest: "<digest>"}
    for rec in graph.resources:
        if rec.type == SMOKE and isinstance(rec.inputs.get("triggers"), list):
            fingerprint = rec.inputs["triggers"][-1]
            if isinstance(fingerprint, str) and re.fullmatch(r"[0-9a-f]{16}", fingerprint):
                replace[fingerprint] = "<fingerprint>"
    interpreter = sys.executable
    if Path(interpreter).is_relative_to(program_dir):
        interpreter = os.path.relpath(interpreter, program_dir)
    replace[interpreter] = "<python>"

    resources: dict[str, Any] = {}
    for rec in graph.resources:
        inputs = dict(rec.inputs)
        inputs.pop("__provider", None)
        if rec.type == IMAGE and hooks is not None and inputs.get("hooks") == hooks:
            inputs["hooks"] = "<image/hooks.json>"
        options = {k: v for k, v in rec.options.items() if k != "version"}
        resources[VERSIONED.sub("default_X", rec.urn)] = _walk(
            {
                "inputs": inputs,
                "options": options,
                "parent": rec.parent,
                "provider": rec.provider.rsplit("::", 1)[0] if rec.provider else "",
                "dependencies": sorted(rec.dependencies),
                "propertyDependencies": {
                    k: sorted(v) for k, v in sorted(rec.property_dependencies.items())
                },
            },
            replace,
        )
    return {"resources": resources, "outputs": _walk(graph.outputs, replace)}


def snapshot_cases(program_dir: Path) -> dict[str, Any]:
    from devkit.offline.evaluate import evaluate_program

    return {
        f"{stack}{'-preview' if preview else ''}": snapshot(
            evaluate_program(stack, preview=preview, program_dir=program_dir), program_dir
        )
        for stack, preview in SNAPSHOT_CASES
    }


if __name__ == "__main__":
    here = Path.cwd()
    sys.path.insert(0, str(here))
    data = snapshot_cases(here)
    Path(sys.argv[1]).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
