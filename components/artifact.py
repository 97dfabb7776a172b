"""Reproducible image artifact: a content-addressed zip of ``image/`` uploaded to S3.

The packaging half is pure (``collect_files``, ``build_zip``, ``artifact_key``): the same
tree gives the same bytes on every run and every machine, so the S3 key
``images/<image-name>/<sha256>.zip`` changes exactly when the content does. ``ImageArtifact``
is the thin Pulumi half that uploads the bytes as one ``aws.s3.BucketObjectv2``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

#: The MicroVM service builds from a zip whose root holds the Dockerfile (docs/service-facts.md §4.1).
DOCKERFILE = "Dockerfile"
#: Optional gitignore-style file in the image directory listing extra exclusions.
IGNORE_FILE = ".artifactignore"
#: Zip timestamps are fixed to the earliest date the format can express.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
#: Normalised Unix modes: only "executable or not" survives from the source tree.
FILE_MODE = 0o100644
EXEC_MODE = 0o100755

#: Build junk never shipped unless the ignore file re-includes it (gitignore syntax). The ignore
#: file itself is packaging metadata, not build input: it is not shipped either.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    f"/{IGNORE_FILE}",
    "__pycache__/",
    "*.py[cod]",
    ".git/",
    ".hg/",
    ".svn/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".venv/",
    ".idea/",
    ".vscode/",
    ".DS_Store",
    "Thumbs.db",
    "*.swp",
    "*.swo",
    "*~",
    ".#*",
    "#*#",
)

_IMAGE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def validate_image_name(image_name: str) -> str:
    """Return ``image_name`` if the MicroVM service accepts it (``[a-zA-Z0-9-_]``, 1-64 chars)."""
    if not isinstance(image_name, str) or not _IMAGE_NAME.match(image_name):
        raise ValueError(
            f"imageName: {image_name!r} is not a valid MicroVM image name "
            "(allowed: 1-64 characters of a-z A-Z 0-9 - _)"
        )
    return image_name


# --------------------------------------------------------------------------- ignore rules


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    negated: bool
    dir_only: bool


def _translate(glob: str) -> str:
    """gitignore glob → regex body (``**`` crosses directories, ``*``/``?`` do not)."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[":
            end = glob.find("]", i + 1)
            if end == -1:
                out.append(re.escape("["))
                i += 1
            else:
                body = glob[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def parse_ignore(lines: list[str] | tuple[str, ...]) -> list[_Rule]:
    """Parse gitignore-style lines: ``#`` comments, ``!`` negation, trailing ``/`` = directory only,
    a ``/`` elsewhere anchors the pattern to the image root, otherwise it matches at any depth."""
    rules: list[_Rule] = []
    for raw in lines:
        line = raw.rstrip("\n").rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        if not line:
            continue
        anchored = "/" in line
        line = line.lstrip("/")
        prefix = "^" if anchored else "^(?:.*/)?"
        rules.append(_Rule(re.compile(prefix + _translate(line) + "$"), negated, dir_only))
    return rules


def _ignored(rules: list[_Rule], rel: str, is_dir: bool) -> bool:
    verdict = False
    for rule in rules:  # last matching rule wins, as in gitignore
        if rule.dir_only and not is_dir:
            continue
        if rule.regex.match(rel):
            verdict = not rule.negated
    return verdict


def load_rules(root: Path, extra_excludes: tuple[str, ...] = ()) -> list[_Rule]:
    """Default junk rules, then ``extra_excludes``, then ``<root>/.artifactignore`` if present."""
    lines = list(DEFAULT_EXCLUDES) + list(extra_excludes)
    ignore = root / IGNORE_FILE
    if ignore.is_file():
        lines += ignore.read_text(encoding="utf-8").splitlines()
    return parse_ignore(lines)


# --------------------------------------------------------------------------- packaging


def collect_files(root: str | os.PathLike[str], extra_excludes: tuple[str, ...] = ()) -> list[str]:
    """Relative POSIX paths of the files to ship: ``Dockerfile`` first, the rest sorted.

    Raises ``ValueError`` when ``root`` has no Dockerfile, when the ignore rules exclude it,
    or when a symlink points outside ``root`` (it would make the artifact depend on the machine).
    """
    base = Path(root)
    if not base.is_dir():
        raise ValueError(f"image directory {str(base)!r} does not exist")
    resolved_base = base.resolve()
    rules = load_rules(base, extra_excludes)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        rel_dir = Path(dirpath).relative_to(base).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        keep_dirs = []
        for d in sorted(dirnames):
            full = Path(dirpath, d)
            if full.is_symlink():
                filenames.append(d)  # judged (and rejected if escaping) like a file below
            elif not _ignored(rules, rel_dir + d, True):
                keep_dirs.append(d)
        dirnames[:] = keep_dirs
        for f in filenames:
            rel = rel_dir + f
            full = Path(dirpath, f)
            if _ignored(rules, rel, full.is_dir()):
                continue
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(resolved_base):
                    raise ValueError(f"{rel}: symlink points outside the image directory")
                if target.is_dir():
                    raise ValueError(f"{rel}: symlinks to directories are not packaged")
            found.append(rel)
    if DOCKERFILE not in found:
        raise ValueError(
            f"image directory {str(base)!r} has no {DOCKERFILE} at its root "
            "(the MicroVM service builds from a zip whose root holds the Dockerfile)"
        )
    rest = sorted(p for p in found if p != DOCKERFILE)
    return [DOCKERFILE, *rest]


@dataclass(frozen=True)
class ArtifactBundle:
    """Zip bytes of an image directory and their identity."""

    data: bytes = field(repr=False)
    sha256: str
    entries: tuple[str, ...]

    @property
    def size(self) -> int:
        """Size of the zip in bytes."""
        return len(self.data)


def _mode(path: Path) -> int:
    return (
        EXEC_MODE
        if os.stat(path).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        else FILE_MODE
    )


def build_zip(root: str | os.PathLike[str], extra_excludes: tuple[str, ...] = ()) -> ArtifactBundle:
    """Reproducible zip of ``root``.

    Entries: ``Dockerfile`` first, then sorted paths; fixed 1980-01-01 timestamps; modes
    normalised to 0644/0755; Unix "made by"; no directory entries or extra fields. Entries are
    STORED, not deflated: deflate output differs between zlib builds (zlib vs zlib-ng), which
    would break "same bytes on every machine"; the image tree is small, so size hardly matters.
    """
    base = Path(root)
    entries = collect_files(base, extra_excludes)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for rel in entries:
            full = base / rel
            info = zipfile.ZipInfo(rel, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # Unix, so external_attr carries the mode on every OS
            info.external_attr = _mode(full) << 16
            zf.writestr(info, full.read_bytes())
    data = buf.getvalue()
    return ArtifactBundle(
        data=data, sha256=hashlib.sha256(data).hexdigest(), entries=tuple(entries)
    )


def artifact_key(image_name: str, sha256: str) -> str:
    """Content-addressed object key ``images/<image-name>/<sha256>.zip``."""
    validate_image_name(image_name)
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"sha256: {sha256!r} is not a hex SHA-256 digest")
    return f"images/{image_name}/{sha256}.zip"


def artifact_prefix(image_name: str) -> str:
    """Key prefix holding every artifact of one image (what the build role may read)."""
    return f"images/{validate_image_name(image_name)}/"


def write_bundle(bundle: ArtifactBundle, out_dir: str | os.PathLike[str]) -> Path:
    """Write the zip to ``<out_dir>/<sha256>.zip`` (content-addressed, so rewriting is a no-op)."""
    path = Path(out_dir) / f"{bundle.sha256}.zip"
    if not (path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == bundle.sha256):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(bundle.data)
        tmp.replace(path)
    return path


# --------------------------------------------------------------------------- component


@dataclass
class ImageArtifactArgs:
    """Inputs of ``ImageArtifact``."""

    bucket: pulumi.Input[str]
    """Name of the artifact bucket the zip is uploaded to."""
    image_name: str
    """MicroVM image name; part of the object key."""
    source_dir: str
    """Directory to package (``image/``); must hold a Dockerfile at its root."""
    build_dir: str = ".build/artifacts"
    """Where the zip is written before upload, relative to the program directory."""
    region: str | None = None
    """Region of the upload (must be the bucket's and the image's); None = the provider's."""
    tags: dict[str, str] | None = None
    """Tags put on the S3 object."""
    extra_excludes: tuple[str, ...] = ()
    """Extra gitignore-style exclusions on top of the defaults and the ignore file."""


class ImageArtifact(pulumi.ComponentResource):
    """The image directory as a content-addressed, reproducible zip object in the artifact bucket.

    Outputs: ``key`` (``images/<image>/<sha256>.zip``), ``digest`` (hex SHA-256 of the zip),
    ``uri`` (``s3://<bucket>/<key>``, what ``codeArtifact.uri`` takes) and ``object``.
    """

    def __init__(
        self, name: str, args: ImageArtifactArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("lambda-microvms:artifact:ImageArtifact", name, None, opts)
        # Packaging happens at program time, before any resource is registered, so a missing
        # Dockerfile fails the preview instead of a remote build.
        try:
            bundle = build_zip(args.source_dir, args.extra_excludes)
            key = artifact_key(args.image_name, bundle.sha256)
        except ValueError as exc:
            raise pulumi.RunError(f"ImageArtifact {name!r}: {exc}") from exc
        path = write_bundle(bundle, Path(args.build_dir) / args.image_name)

        self.digest: pulumi.Output[str] = pulumi.Output.from_input(bundle.sha256)
        self.key: pulumi.Output[str] = pulumi.Output.from_input(key)
        self.entries = bundle.entries

        self.object = aws.s3.BucketObjectv2(
            f"{name}-object",
            bucket=args.bucket,
            key=key,
            source=pulumi.FileAsset(str(path)),
            content_type="application/zip",
            # S3 verifies the upload against this checksum and stores it with the object.
            checksum_algorithm="SHA256",
            region=args.region,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # From the object's outputs, so whoever uses the URI waits for the upload.
        self.uri: pulumi.Output[str] = pulumi.Output.concat(
            "s3://", self.object.bucket, "/", self.object.key
        )

        self.register_outputs({"key": self.key, "digest": self.digest, "uri": self.uri})
