"""Reproducible packaging of image/: determinism, layout, exclusions, content-addressed keys."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest

from components.artifact import (
    FIXED_DATE_TIME,
    artifact_key,
    artifact_prefix,
    build_zip,
    collect_files,
    parse_ignore,
    write_bundle,
)

pytestmark = pytest.mark.unit

REPO_IMAGE = Path(__file__).resolve().parents[2] / "image"


def make_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(
        tmp_path / "image",
        {
            "app/main.py": "print('hi')\n",
            "app/util/helpers.py": "X = 1\n",
            "Dockerfile": "FROM scratch\nCOPY app /app\n",
            "hooks.json": "{}\n",
            "a-first.txt": "sorted before Dockerfile by name\n",
        },
    )


def names(data: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_build_twice_gives_identical_bytes(tree):
    first, second = build_zip(tree), build_zip(tree)
    assert first.data == second.data
    assert first.sha256 == second.sha256 == hashlib.sha256(first.data).hexdigest()


def test_mtime_and_ctime_do_not_matter(tree):
    before = build_zip(tree)
    for path in tree.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    (tree / "app/main.py").write_text("print('hi')\n")  # rewrite, same content
    assert build_zip(tree).data == before.data


def test_same_content_in_another_directory_gives_same_bytes(tree, tmp_path):
    copy = make_tree(
        tmp_path / "elsewhere" / "img",
        {p.relative_to(tree).as_posix(): p.read_bytes() for p in tree.rglob("*") if p.is_file()},
    )
    assert build_zip(copy).data == build_zip(tree).data


def test_one_changed_byte_changes_digest_and_key(tree):
    before = build_zip(tree)
    (tree / "app/util/helpers.py").write_text("X = 2\n")
    after = build_zip(tree)
    assert after.sha256 != before.sha256
    assert artifact_key("img", after.sha256) != artifact_key("img", before.sha256)


def test_new_file_and_rename_change_digest(tree):
    before = build_zip(tree).sha256
    (tree / "app/new.py").write_text("")
    added = build_zip(tree).sha256
    (tree / "app/new.py").rename(tree / "app/renamed.py")
    assert len({before, added, build_zip(tree).sha256}) == 3


def test_dockerfile_first_at_root_then_sorted(tree):
    bundle = build_zip(tree)
    assert names(bundle.data) == [
        "Dockerfile",
        "a-first.txt",
        "app/main.py",
        "app/util/helpers.py",
        "hooks.json",
    ]
    assert list(bundle.entries) == names(bundle.data)


def test_entries_have_fixed_metadata(tree):
    (tree / "app/entrypoint.sh").write_text("#!/bin/sh\n")
    (tree / "app/entrypoint.sh").chmod(0o700)
    (tree / "hooks.json").chmod(0o600)
    zf = zipfile.ZipFile(io.BytesIO(build_zip(tree).data))
    modes = {}
    for info in zf.infolist():
        assert info.date_time == FIXED_DATE_TIME
        assert info.compress_type == zipfile.ZIP_STORED
        assert info.create_system == 3
        assert info.extra == b""
        modes[info.filename] = info.external_attr >> 16
    assert modes["app/entrypoint.sh"] == 0o100755
    assert modes["hooks.json"] == 0o100644
    assert modes["Dockerfile"] == 0o100644
    assert zf.read("Dockerfile") == b"FROM scratch\nCOPY app /app\n"


def test_permission_changes_other_than_exec_bit_are_ignored(tree):
    before = build_zip(tree).data
    (tree / "hooks.json").chmod(0o600)
    (tree / "app/main.py").chmod(0o664)
    assert build_zip(tree).data == before


def test_default_junk_is_excluded(tree):
    make_tree(
        tree,
        {
            "app/__pycache__/main.cpython-311.pyc": b"\0",
            "app/stale.pyc": b"\0",
            ".git/HEAD": "ref: refs/heads/main\n",
            ".DS_Store": b"\0",
            "app/main.py.swp": b"\0",
            "app/main.py~": "",
            ".idea/workspace.xml": "",
            ".vscode/settings.json": "{}",
            "app/.#lock": "",
            ".pytest_cache/v/x": "",
        },
    )
    assert collect_files(tree) == [
        "Dockerfile",
        "a-first.txt",
        "app/main.py",
        "app/util/helpers.py",
        "hooks.json",
    ]


def test_artifactignore_patterns(tree):
    make_tree(
        tree,
        {
            ".artifactignore": "# local only\n\n*.log\n/notes.md\ndocs/\n!keep.log\napp/**/fixtures\n",
            "debug.log": "",
            "app/deep/run.log": "",
            "keep.log": "kept by negation",
            "notes.md": "",
            "app/notes.md": "not anchored to this directory: kept",
            "docs/readme.txt": "",
            "app/docs": "a file named docs is not a directory: kept",
            "app/util/fixtures/big.bin": b"\0" * 10,
        },
    )
    assert collect_files(tree) == [
        "Dockerfile",
        "a-first.txt",
        "app/docs",
        "app/main.py",
        "app/notes.md",
        "app/util/helpers.py",
        "hooks.json",
        "keep.log",
    ]


def test_ignore_file_itself_is_not_shipped(tree):
    (tree / ".artifactignore").write_text("*.log\n")
    (tree / "app/.artifactignore").write_text("only the root one is read; this is a plain file\n")
    files = collect_files(tree)
    assert ".artifactignore" not in files
    assert "app/.artifactignore" in files
    (tree / ".artifactignore").write_text("!/.artifactignore\n")  # re-included on purpose
    assert ".artifactignore" in collect_files(tree)


def test_extra_excludes_argument(tree):
    assert "hooks.json" not in collect_files(tree, ("hooks.json",))


def test_parse_ignore_skips_comments_and_blanks():
    rules = parse_ignore(["# c", "", "   ", "/", "*.tmp"])
    assert len(rules) == 1
    assert rules[0].regex.match("a/b/c.tmp")


def test_missing_dockerfile_is_an_error(tmp_path):
    make_tree(tmp_path / "img", {"app/main.py": ""})
    with pytest.raises(ValueError) as err:
        build_zip(tmp_path / "img")
    assert str(err.value) == (
        f"image directory {str(tmp_path / 'img')!r} has no Dockerfile at its root "
        "(the MicroVM service builds from a zip whose root holds the Dockerfile)"
    )


def test_dockerfile_in_subdirectory_only_is_an_error(tmp_path):
    make_tree(tmp_path / "img", {"sub/Dockerfile": "FROM scratch\n"})
    with pytest.raises(ValueError, match="has no Dockerfile at its root"):
        collect_files(tmp_path / "img")


def test_ignoring_the_dockerfile_is_an_error(tree):
    (tree / ".artifactignore").write_text("Dockerfile\n")
    with pytest.raises(ValueError, match="has no Dockerfile at its root"):
        collect_files(tree)


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(ValueError) as err:
        collect_files(tmp_path / "nope")
    assert str(err.value) == f"image directory {str(tmp_path / 'nope')!r} does not exist"


def test_symlink_escaping_the_tree_is_rejected(tree, tmp_path):
    (tmp_path / "secret.txt").write_text("do not ship")
    (tree / "app/leak.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ValueError) as err:
        collect_files(tree)
    assert str(err.value) == "app/leak.txt: symlink points outside the image directory"


def test_symlink_inside_the_tree_ships_the_target_content(tree):
    (tree / "app/alias.py").symlink_to(tree / "app/main.py")
    zf = zipfile.ZipFile(io.BytesIO(build_zip(tree).data))
    assert zf.read("app/alias.py") == b"print('hi')\n"


def test_artifact_key_and_prefix():
    digest = "a" * 64
    assert artifact_key("agent-sandbox", digest) == f"images/agent-sandbox/{digest}.zip"
    assert artifact_prefix("agent-sandbox") == "images/agent-sandbox/"
    with pytest.raises(ValueError) as err:
        artifact_key("agent-sandbox", "xyz")
    assert str(err.value) == "sha256: 'xyz' is not a hex SHA-256 digest"
    with pytest.raises(ValueError, match="imageName: 'a/b' is not a valid MicroVM image name"):
        artifact_key("a/b", digest)


def test_write_bundle_is_content_addressed(tree, tmp_path):
    bundle = build_zip(tree)
    path = write_bundle(bundle, tmp_path / "out")
    assert path == tmp_path / "out" / f"{bundle.sha256}.zip"
    assert path.read_bytes() == bundle.data
    mtime = path.stat().st_mtime_ns
    assert write_bundle(bundle, tmp_path / "out") == path
    assert path.stat().st_mtime_ns == mtime  # same content: not rewritten
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [path.name]


def test_real_image_ships_exactly_the_build_input():
    """What the real image/ ships: the Dockerfile, what it COPYs, and hooks.json. Not the
    README, not the ignore file, no caches (checked on a copy that has them all)."""
    assert collect_files(REPO_IMAGE) == [
        "Dockerfile",
        ".mcp.json",
        "app/main.py",
        "claude-settings.json",
        "hooks.json",
    ]


def test_real_ignore_rules_keep_tests_and_caches_out(tmp_path):
    copy = make_tree(
        tmp_path / "image",
        {
            p.relative_to(REPO_IMAGE).as_posix(): p.read_bytes()
            for p in REPO_IMAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        },
    )
    make_tree(
        copy,
        {
            "app/__pycache__/main.cpython-312.pyc": b"\0",
            "tests/test_main.py": "",
            "app/test_main.py": "",
            "app/main_test.py": "",
            ".pytest_cache/v/cache/nodeids": "[]",
            ".ruff_cache/CACHEDIR.TAG": "",
            ".mypy_cache/3.12/x.json": "{}",
            ".venv/bin/python": "",
            ".coverage": "",
            "htmlcov/index.html": "",
            "app/debug.log": "",
            ".env": "SECRET=1",
            ".env.local": "SECRET=1",
            "app/key.pem": "",
            "app/id.key": "",
            ".git/HEAD": "ref: refs/heads/main\n",
            "app/.main.py.swp": b"\0",
            ".vscode/settings.json": "{}",
        },
    )
    assert collect_files(copy) == collect_files(REPO_IMAGE)
    assert build_zip(copy).data == build_zip(REPO_IMAGE).data


def test_real_image_directory_packages_reproducibly():
    if not (REPO_IMAGE / "Dockerfile").is_file():
        pytest.fail("image/Dockerfile is missing: the MicroVM service needs it at the zip root")
    first, second = build_zip(REPO_IMAGE), build_zip(REPO_IMAGE)
    assert first.data == second.data
    assert first.entries[0] == "Dockerfile"
    assert list(first.entries[1:]) == sorted(first.entries[1:])
    assert not [e for e in first.entries if "__pycache__" in e or e.endswith(".pyc")]
    zf = zipfile.ZipFile(io.BytesIO(first.data))
    assert zf.testzip() is None
    assert zf.read("Dockerfile") == (REPO_IMAGE / "Dockerfile").read_bytes()
