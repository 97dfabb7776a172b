"""The README reads as a first guide and still documents every make target and CLI command."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
FIRST_SECTIONS = [
    "Quick start",
    "Try it locally (`make sandbox`)",
    "The real Pulumi engine (`make pulumi`, `make test-engine`)",
    "Deploy to AWS",
    "Working in a team",
]


def _sections() -> list[str]:
    return re.findall(r"^## (.+)$", README, flags=re.M)


def _make_targets() -> list[str]:
    makefile = (REPO / "Makefile").read_text()
    return re.findall(r"^([a-zA-Z_-]+):.*?## ", makefile, flags=re.M)


def test_first_sections_in_order():
    assert _sections()[: len(FIRST_SECTIONS)] == FIRST_SECTIONS


def test_quick_start_is_the_two_commands():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = quick.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make test", "make up STACK=local"]


def test_every_make_target_is_documented():
    targets = [t for t in _make_targets() if t != "help"]
    assert {"sandbox", "sandbox-env", "down", "review-summary"} <= set(targets)
    missing = [t for t in targets if not re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", README)]
    assert missing == []


def test_every_cli_command_is_shown():
    from microvms.cli import app

    commands = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert {"run", "probe", "shell", "smoke"} <= set(commands)
    missing = [c for c in commands if f"microvms {c}" not in README]
    assert missing == []


def test_local_links_resolve():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert local, "the README links its docs"
    assert [link for link in local if not (REPO / link).exists()] == []
