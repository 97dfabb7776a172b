"""Every service-fact citation in the repository ("docs/service-facts.md §N") resolves inside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FACTS = REPO / "docs" / "service-facts.md"
CITATION = re.compile(r"§\s?(\d+(?:\.\d+)?)((?:\s*[,–-]\s*§?\s?\d+(?:\.\d+)?)*)")


def _tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", *patterns], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / p for p in out if (REPO / p).is_file()]


def _sections() -> set[str]:
    text = FACTS.read_text()
    return set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", text, flags=re.M))


def _citations(text: str) -> list[str]:
    found = []
    for m in CITATION.finditer(text):
        found.append(m.group(1))
        found += re.findall(r"\d+(?:\.\d+)?", m.group(2) or "")
    return found


def test_the_facts_page_keeps_the_numbering():
    sections = _sections()
    assert {str(n) for n in range(19)} <= sections
    assert {"4.1", "4.8", "6.2", "12.2", "12.3"} <= sections


def test_every_citation_resolves():
    sections = _sections()
    files = _tracked("*.py", "*.md", "Makefile", "*.yaml")
    unresolved = [
        f"{path.relative_to(REPO)}: §{n}"
        for path in files
        for n in _citations(path.read_text(errors="replace"))
        if n not in sections
    ]
    assert unresolved == []


def test_no_citation_points_outside_the_repository():
    files = [p for p in _tracked("*.py", "*.md") if p not in (FACTS, Path(__file__).resolve())]
    outside = [
        str(path.relative_to(REPO))
        for path in files
        if re.search(r"microvms-facts\.md|facts sheet|\bfacts §", path.read_text(errors="replace"))
    ]
    assert outside == []


def test_every_fact_line_names_its_source():
    body = FACTS.read_text().split("## 1. Service identity", 1)[1].split("## 16.", 1)[0]
    facts = [line for line in body.splitlines() if line.startswith("- ")]
    assert len(facts) > 100
    # each line carries its source in square brackets (at the end, or before a sub-list)
    unsourced = [line for line in facts if not re.search(r"\[[^\]]+\]", line)]
    assert unsourced == []
