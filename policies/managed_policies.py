"""AWS-managed policies: ARN → the policy's current document, from the dataset moto ships.

moto (pinned in ``uv.lock`` and ``requirements.txt``) bundles the default version of every
AWS-managed policy in ``moto/iam/aws_managed_policies.py``, refreshed from AWS on each release.
We read that one file by path - importing the ``moto`` package would pull in all of moto - once,
lazily, the first time a managed ARN has to be judged; a stack without one never loads it.

Pure functions of plain data; nothing here knows about Pulumi.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from typing import Any

from iam_docs import parse_arn

DATASET_PACKAGE = "moto"
DATASET_FILE = ("iam", "aws_managed_policies.py")
DATASET_VARIABLE = "aws_managed_policies_data"

#: Managed policies that pass the read-only rule but read (nearly) every service and data store.
BROAD_READ_POLICIES = {
    "ReadOnlyAccess": "read-only, but reads almost every service and data store",
}

_STEM_SUFFIXES = re.compile(
    r"(_?FullAccess(_v\d+)?|_?PowerUser(Access)?|_?ReadOnly(Access)?|_?ReadWrite(Access)?|"
    r"_?Admin(istrator)?(Access)?|_?Operator(Access)?|_?Developer(Access)?|_?User(Access)?|"
    r"_?Access(Policy)?|Role)$"
)


class DatasetUnavailable(RuntimeError):
    """The managed-policy dataset cannot be loaded (package missing, file moved, bad content)."""


def managed_policy_name(arn: Any) -> str | None:
    """``arn:<any partition>:iam::aws:policy/<path/>name`` → ``name`` (path dropped); else None."""
    parsed = parse_arn(arn)
    if not parsed or parsed["service"] != "iam" or parsed["account"] != "aws":
        return None
    resource = parsed["resource"]
    if not resource.startswith("policy/"):
        return None
    return resource.rsplit("/", 1)[-1] or None


def managed_policy_path(arn: Any) -> str | None:
    """The ARN's path, ``/`` or e.g. ``/service-role/``; None if not an AWS-managed policy ARN."""
    if managed_policy_name(arn) is None:
        return None
    resource = parse_arn(arn)["resource"]  # type: ignore[index]
    inner = resource[len("policy") : resource.rfind("/") + 1]
    return inner or "/"


@functools.lru_cache(maxsize=1)
def _load() -> tuple[dict[str, Any], str]:
    """(name → entry, dataset version); raises :class:`DatasetUnavailable`."""
    spec = importlib.util.find_spec(DATASET_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(f"the {DATASET_PACKAGE!r} package is not installed")
    path = os.path.join(spec.submodule_search_locations[0], *DATASET_FILE)
    file_spec = importlib.util.spec_from_file_location("_aws_managed_policies_dataset", path)
    if file_spec is None or file_spec.loader is None:
        raise DatasetUnavailable(f"{path} cannot be loaded")
    module = importlib.util.module_from_spec(file_spec)
    try:
        file_spec.loader.exec_module(module)
        data = json.loads(getattr(module, DATASET_VARIABLE))
    except (OSError, SyntaxError, AttributeError, ValueError) as err:
        raise DatasetUnavailable(f"{path}: {type(err).__name__}: {err}") from err
    if not isinstance(data, dict) or not data:
        raise DatasetUnavailable(f"{path}: {DATASET_VARIABLE} is not a non-empty JSON object")
    try:
        from importlib.metadata import version

        release = f"{DATASET_PACKAGE} {version(DATASET_PACKAGE)}"
    except Exception:  # noqa: BLE001 - the version is only for messages
        release = DATASET_PACKAGE
    return data, release


def dataset() -> dict[str, Any]:
    """Every AWS-managed policy by name (loaded once); raises :class:`DatasetUnavailable`."""
    return _load()[0]


def dataset_version() -> str:
    try:
        return _load()[1]
    except DatasetUnavailable:
        return f"{DATASET_PACKAGE} (not available)"


def lookup(arn: str) -> tuple[dict[str, Any] | None, str | None]:
    """(document, None) for an ARN the dataset knows; (None, why not) otherwise.

    The ARN's path must match the dataset's (``service-role/AWSLambdaBasicExecutionRole``, not
    ``AWSLambdaBasicExecutionRole``): IAM would not find a policy under another path either.
    """
    name = managed_policy_name(arn)
    if name is None:
        return None, "not an AWS-managed policy ARN"
    try:
        data = dataset()
    except DatasetUnavailable as err:
        return None, f"the managed-policy dataset is not available ({err})"
    entry = data.get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("Document"), dict):
        return None, f"it is not in the managed-policy dataset ({dataset_version()})"
    if entry.get("Path", "/") != managed_policy_path(arn):
        return None, (
            f"the dataset ({dataset_version()}) has {name} under path {entry.get('Path')!r}, "
            f"not {managed_policy_path(arn)!r}"
        )
    return entry["Document"], None


def policy_arn(name: str, partition: str = "aws") -> str | None:
    """The ARN of a managed policy in the dataset, with its path; None if unknown."""
    try:
        entry = dataset().get(name)
    except DatasetUnavailable:
        return None
    if not isinstance(entry, dict):
        return None
    return f"arn:{partition}:iam::aws:policy{entry.get('Path', '/')}{name}"


def _stem(name: str) -> str:
    previous = None
    while previous != name:
        previous, name = name, _STEM_SUFFIXES.sub("", name)
    return name


def narrow_read_only_alternatives(arn: str, limit: int = 2) -> list[str]:
    """The service's own read-only managed policies that fit ``arn`` (never ReadOnlyAccess).

    ``AmazonSQSFullAccess`` → ``AmazonSQSReadOnlyAccess``; matched on the name's stem (the name
    without FullAccess/PowerUser/ReadOnly... suffixes), case-insensitively.
    """
    name = managed_policy_name(arn)
    if not name:
        return []
    stem = _stem(name).lower().rstrip("_")
    if len(stem) < 3:
        return []
    found = [n for n in _read_only_by_stem().get(stem, ()) if n != name]
    partition = (parse_arn(arn) or {}).get("partition", "aws")
    return [a for n in found[:limit] if (a := policy_arn(n, partition))]


@functools.lru_cache(maxsize=1)
def _read_only_by_stem() -> dict[str, tuple[str, ...]]:
    """Stem → the dataset's narrow read-only policies with that stem (built once)."""
    try:
        names = sorted(dataset())
    except DatasetUnavailable:
        return {}
    index: dict[str, list[str]] = {}
    for n in names:
        if "readonly" in n.lower() and n not in BROAD_READ_POLICIES:
            index.setdefault(_stem(n).lower().rstrip("_"), []).append(n)
    return {k: tuple(v) for k, v in index.items()}
