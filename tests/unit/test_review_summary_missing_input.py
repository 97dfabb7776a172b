"""``make review-summary`` without a preview file says how to feed it, instead of a bare error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _summary(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devkit.review_summary", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_missing_preview_explains_how_to_feed_it(tmp_path):
    proc = _summary("preview.json", cwd=tmp_path)  # the Makefile's default PREVIEW_JSON
    assert proc.returncode == 2
    assert proc.stdout == ""
    err = proc.stderr
    assert "no preview to summarise: 'preview.json' does not exist." in err
    assert "pulumi preview --stack dev --json --event-log events.jsonl > preview.json" in err
    assert "make review-summary PREVIEW_JSON=preview.json EVENTS=events.jsonl" in err
    assert "Traceback" not in err and "No such file" not in err


def test_the_fixture_command_it_suggests_works():
    proc = _summary(
        "tests/fixtures/preview/replace.json",
        "--events",
        "tests/fixtures/preview/policy_violations.events.jsonl",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("## Pulumi preview: `dev`")
    # the suggestion names exactly these files
    hint = _summary("missing.json").stderr
    assert (
        "make review-summary PREVIEW_JSON=tests/fixtures/preview/replace.json "
        "EVENTS=tests/fixtures/preview/policy_violations.events.jsonl" in hint
    )
