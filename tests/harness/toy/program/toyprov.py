"""A toy dynamic provider that manages one text file, importable so dill pickles it by reference."""

from __future__ import annotations

import hashlib
import os
import uuid

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class FileProvider(ResourceProvider):
    """Writes ``<dir>/<id>.txt`` holding ``content`` (plus the salt's digest, never the salt)."""

    def configure(self, req) -> None:
        # The engine hands the full, namespaced stack config to dynamic providers.
        self.configured_env = req.config.get("env")

    def check(self, olds, news):
        failures = []
        if not news.get("dir"):
            failures.append(CheckFailure("dir", "dir is required: the directory to write into"))
        if "content" not in news:
            failures.append(CheckFailure("content", "content is required"))
        inputs = dict(news)
        inputs.setdefault("mode", "0644")
        return CheckResult(inputs, failures)

    def diff(self, id, olds, news):
        replaces = [k for k in ("dir",) if olds.get(k) != news.get(k)]
        changed = [k for k in ("content", "salt", "mode", "dir") if olds.get(k) != news.get(k)]
        return DiffResult(
            changes=bool(changed), replaces=replaces, delete_before_replace=bool(replaces)
        )

    def _write(self, path: str, props) -> dict:
        body = f"{props['content']}\nsalt-sha256={_sha(str(props.get('salt', '')))}\n"
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(body)
        os.chmod(path, int(str(props.get("mode", "0644")), 8))
        return {
            **props,
            "path": path,
            "sha256": _sha(body),
            "env": getattr(self, "configured_env", None),
        }

    def create(self, props):
        path = os.path.join(props["dir"], f"toy-{uuid.uuid4().hex[:12]}.txt")
        return CreateResult(path, self._write(path, props))

    def read(self, id, props):
        if not os.path.exists(id):
            return ReadResult(None, {})
        with open(id, encoding="utf-8") as fh:
            body = fh.read()
        return ReadResult(id, {**props, "sha256": _sha(body), "content": body.split("\n", 1)[0]})

    def update(self, id, olds, news):
        return UpdateResult(self._write(id, news))

    def delete(self, id, props):
        os.remove(id)


class ToyFile(Resource, module="toy", name="File"):
    """Registers as ``pulumi-python:dynamic/toy:File``."""

    path: pulumi.Output[str]
    sha256: pulumi.Output[str]

    def __init__(self, name: str, props: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__(FileProvider(), name, {**props, "path": None, "sha256": None}, opts)
