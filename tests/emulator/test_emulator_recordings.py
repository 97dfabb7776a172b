"""Optional: replay the live recordings' scenario scripts against the emulator and diff the answers.

Reads ``microvms-recordings/cases/*.json`` and the recorded bodies straight from the shared reference
folder (``/work/shared`` or ``../shared`` next to the repository). When that folder is absent the whole
module is skipped with the reason; ``test_emulator_recorded.py`` holds the same facts re-expressed in
our own code and never needs it.

Each step is sent as raw SigV4-signed HTTP (like the recorder did), polling steps poll, endpoint steps
go through the proxy with the VM endpoint as ``Host``. Status and error type must match the recording;
JSON bodies must match after normalising the recorder's placeholders (``ACCOUNT``, ``REGION``, ``UUID``,
``TIMESTAMP``, ``REDACTED``) on both sides. The ``connectors`` recording used real subnet and
security-group ids instead of the case's parameters, so its bodies are compared by member names.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[2]
CANDIDATES = [Path("/work/shared"), REPO.parent / "shared"]
RECORDINGS = next(
    (
        base / "reference" / "microvms-recordings"
        for base in CANDIDATES
        if (base / "reference" / "microvms-recordings" / "cases").is_dir()
    ),
    None,
)
if RECORDINGS is None:
    pytest.skip(
        "live recordings not available: neither /work/shared nor ../shared holds "
        "reference/microvms-recordings (the re-expressed facts live in test_emulator_recorded.py)",
        allow_module_level=True,
    )

REGION = "us-east-2"  # the recording region
ACCOUNT = "123456789012"
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TIME_KEYS = {"createdAt", "updatedAt", "startedAt", "terminatedAt", "ts"}
CASES = sorted(p.name for p in (RECORDINGS / "cases").glob("*.json"))


def normalise(value, key: str | None = None):
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if key in TIME_KEYS and value is not None:
        return "TIMESTAMP"
    if key == "X-aws-proxy-auth":
        return "REDACTED"
    if isinstance(value, str):
        value = UUID_RE.sub("UUID", value)
        value = value.replace(ACCOUNT, "ACCOUNT").replace(REGION, "REGION")
        if key == "versionStateTimeBucket":
            value = re.sub(r"#(\d{8}|TIMESTAMP)$", "#YYMMDDHH", value)
    return value


def shape_of(value):
    """Member names all the way down (values replaced by their type)."""
    if isinstance(value, dict):
        return {k: shape_of(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape_of(v) for v in value[:1]]
    return type(value).__name__


def substitute(template, variables: dict):
    if isinstance(template, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: str(variables[m.group(1)]), template)
    if isinstance(template, dict):
        return {k: substitute(v, variables) for k, v in template.items()}
    if isinstance(template, list):
        return [substitute(v, variables) for v in template]
    return template


def dig(data, path: str):
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def send(emulator, step: dict, variables: dict):
    path = substitute(step["path"], variables)
    body = substitute(step.get("body"), variables)
    data = json.dumps(body).encode() if body is not None else None
    headers = substitute(step.get("headers") or {}, variables)
    if step.get("baseURL"):
        headers["Host"] = substitute(step["baseURL"], variables).split("://", 1)[1]
        url = emulator.url + path
    else:
        url = emulator.url + path
        request = AWSRequest(
            method=step["method"], url=url, data=data, headers={"Content-Type": "application/json"}
        )
        SigV4Auth(Credentials("testing", "testing"), "lambda", REGION).add_auth(request)
        headers.update(dict(request.headers))
    request = urllib.request.Request(url, data=data, method=step["method"], headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def run_step(emulator, step: dict, variables: dict):
    until = step.get("until")
    deadline = time.monotonic() + 10
    while True:
        status, headers, raw = send(emulator, step, variables)
        if not until:
            return status, headers, raw
        try:
            if dig(json.loads(raw), until["path"]) == until["equals"]:
                return status, headers, raw
        except (ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{step['name']}: never reached {until}")
        time.sleep(0.05)


@pytest.mark.parametrize("case_file", CASES)
def test_recorded_case_replays(case_file, emulator_factory, upstream):
    case = json.loads((RECORDINGS / "cases" / case_file).read_text())
    folder = RECORDINGS / case["id"]
    app = upstream()
    app.answers["/"] = (200, json.dumps({"path": "/", "status": "ok", "ts": time.time()}))
    # Version deletes drain faster than the recorder's next request (it deleted the image right
    # after deleting a version and got 200).
    emulator = emulator_factory(upstreams={8080: app.url}, set_env=False, delete_seconds=0)
    variables = {"region": REGION, "account": ACCOUNT}
    variables.update(substitute(case.get("params", {}), variables))
    ran = 0
    for step in case["steps"]:
        status, headers, raw = run_step(emulator, step, variables)
        ran += 1
        name = step["name"]
        meta_file = folder / f"{name}.meta.json"
        rejected_meta = list(folder.glob(f"{name}.meta.json.rejected-*"))
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        expect = step.get("expect", {})
        expected_status = meta.get("status", expect.get("status"))
        if expected_status is None and rejected_meta and "502" not in rejected_meta[0].name:
            expected_status = json.loads(rejected_meta[0].read_text())["status"]
        if expected_status is not None:
            assert status == expected_status, (name, raw)
        error_type = meta.get("errorType") or expect.get("errorType")
        if error_type:
            assert headers.get("X-Amzn-Errortype") == error_type, name
        elif expect.get("errorTypeOneOf"):
            assert headers.get("X-Amzn-Errortype") in expect["errorTypeOneOf"], name
        recorded = folder / f"{name}.json"
        if recorded.exists():
            text = recorded.read_text()
            if step["operation"] == "VmEndpoint":
                assert raw.decode() == text, name
            elif not text.strip():
                assert raw == b"", name
            elif case["id"] == "connectors":
                assert shape_of(json.loads(raw)) == shape_of(json.loads(text)), name
            else:
                assert normalise(json.loads(raw)) == normalise(json.loads(text)), name
        if expect.get("itemShape"):
            shape = expect["itemShape"]
            items = dig(json.loads(raw), shape["path"])
            assert len(items) >= shape.get("minItems", 0)
            for item in items:
                assert (
                    set(item) == set(shape["required"])
                    if shape.get("exact")
                    else set(shape["required"]) <= set(item)
                )
        if raw and headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(raw)
            for key, path in (step.get("capture") or {}).items():
                variables[key] = dig(body, path)
    assert ran > 0
