"""``.github/workflows/preview.yml``'s review-summary step, its own script run by bash
(``tests.engine.workflow``) against the local stack under the real Pulumi CLI: ``pulumi preview
--json --event-log`` with the pack, ``devkit.review_summary``, the job summary and the PR comment.

This found a bug: the CLI registers ``--event-log`` only with ``PULUMI_DEBUG_COMMANDS=true``, which
the step did not set, so every PR's preview step failed with "unknown flag: --event-log".

``gh`` is a recording shim (GitHub is not reachable from here): it keeps its arguments and the
comment body; everything else is the real thing.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from tests.engine.stack import REPO, EngineStack
from tests.engine.workflow import linked_project, run_step

pytestmark = pytest.mark.timeout(900)

RECORDING_GH = """#!{python}
# RECORDING SHIM of the GitHub CLI (tests only): GitHub is not reachable from the test machine.
import json, os, sys
args = sys.argv[1:]
body = open(args[args.index("--body-file") + 1]).read() if "--body-file" in args else None
with open(os.environ["GH_CALLS"], "a") as log:
    log.write(json.dumps({{"argv": args, "body": body}}) + "\\n")
"""


def _uv_dir() -> str:
    uv = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    return str(REPO / ".tools" / "bin") if uv.startswith(str(REPO)) else uv.rsplit("/", 1)[0]


def test_review_summary_step_previews_with_the_pack_and_comments(engine: EngineStack, tmp_path):
    project = linked_project(engine, tmp_path / "project")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(RECORDING_GH.format(python=sys.executable))
    gh.chmod(0o755)
    calls = tmp_path / "gh-calls.jsonl"
    env = engine.env()
    proc, summary = run_step(
        "preview.yml",
        "Review summary",
        project,
        engine,
        tmp_path / "step-summary.md",
        PATH=f"{bin_dir}:{_uv_dir()}:{env['PATH']}",
        GH_CALLS=str(calls),
        PR_NUMBER="42",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "unknown flag" not in proc.stderr

    # The real preview JSON and event log reached the summary.
    preview = json.loads((project / "preview.json").read_text())
    assert preview["changeSummary"]["create"] >= 15
    events = [json.loads(x) for x in (project / "events.jsonl").read_text().splitlines() if x]
    assert any("lambda-microvms-guardrails" in json.dumps(e) for e in events)
    written = (project / "summary.md").read_text()
    assert written and written in summary  # the job summary got it
    assert "create" in written.lower()

    # ... and the PR comment is that summary, on PR 42.
    [call] = [json.loads(x) for x in calls.read_text().splitlines()]
    assert call["argv"] == ["pr", "comment", "42", "--body-file", "summary.md"]
    assert call["body"] == written
