"""The real Pulumi CLI runs the ``local`` stack: preview, up, refresh, update, import and destroy.

Each test gets its own moto + emulator + image app, file backend, PULUMI_HOME and stack file (see
``conftest.py``). The only stand-ins are the pulumi-aws and pulumi-command plugin test doubles;
the CLI, the engine, the Python language host path, the dynamic provider plugin, the policy pack
analyzer and config validation are the real ones.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import boto3
import pytest
from botocore.config import Config

from tests.engine.stack import REPO, EngineStack

pytestmark = pytest.mark.timeout(900)

IMAGE_TYPE = "pulumi-python:dynamic/lambda-microvms:MicrovmImage"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
#: The stack outputs the README promises.
README_OUTPUTS = {
    "environment", "region", "artifactBucketName", "artifactUri", "artifactDigest",
    "buildRoleArn", "executionRoleArn", "logGroupName", "imageArn", "imageName",
    "imageVersion", "smokeTest",
}  # fmt: skip


def client(engine: EngineStack, service: str):
    url = engine.ports.emulator_url if service == "lambda-microvms" else engine.ports.moto_url
    return boto3.client(
        service, region_name="us-east-1", endpoint_url=url,
        config=Config(retries={"mode": "standard", "max_attempts": 3}), **CREDS,
    )  # fmt: skip


def steps_by_type(preview: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for step in preview.get("steps", []):
        rtype = (step.get("newState") or step.get("oldState") or {}).get("type", "")
        out.setdefault(rtype, []).append(step)
    return out


def changes(preview: dict) -> dict[str, int]:
    return {op: n for op, n in (preview.get("changeSummary") or {}).items() if op != "same"}


def leftovers(engine: EngineStack) -> dict[str, list]:
    """What exists in moto and the emulator (after destroy: nothing)."""
    mv = client(engine, "lambda-microvms")
    images = [i for i in mv.list_microvm_images()["items"] if i.get("state") not in ("DELETED",)]
    vms = [v for v in mv.list_microvms()["items"] if v.get("state") not in ("TERMINATED",)]
    return {
        "images": images,
        "microvms": vms,
        "buckets": client(engine, "s3").list_buckets()["Buckets"],
        "roles": client(engine, "iam").list_roles()["Roles"],
        "logGroups": client(engine, "logs").describe_log_groups()["logGroups"],
    }


# --------------------------------------------------------------------------- preview


def test_preview_json_with_policy_pack_and_review_summary(engine: EngineStack, tmp_path):
    events = tmp_path / "events.jsonl"
    result = engine.preview_json("--event-log", str(events))
    assert result.returncode == 0, result.output[-6000:]
    preview = result.json()
    by_type = steps_by_type(preview)
    assert [s["op"] for s in by_type[IMAGE_TYPE]] == ["create"]
    assert by_type["command:local:Command"][0]["op"] == "create"
    assert {"aws:s3/bucket:Bucket", "aws:iam/role:Role", "aws:cloudwatch/logGroup:LogGroup"} <= set(
        by_type
    )
    assert preview["changeSummary"]["create"] >= 15
    # The pack ran: its analyzer was loaded (a policy-pack event names it).
    lines = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    assert any(
        e.get("policyLoadEvent") is not None or e.get("policyAnalyzeSummaryEvent") for e in lines
    ) or any("lambda-microvms-guardrails" in json.dumps(e) for e in lines)
    preview_file = tmp_path / "preview.json"
    preview_file.write_text(result.stdout)
    summary = subprocess.run(
        [sys.executable, "-m", "devkit.review_summary", str(preview_file), "--events", str(events), "--stack", "local"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "create" in summary.lower()
    assert "MicroVM image" in summary or "microvm" in summary.lower()


def test_bad_config_fails_the_preview_naming_the_key(engine: EngineStack):
    engine.write_config(**{"lambda-microvms:memoryMiB": 3000})
    result = engine.preview_json(policy=False)
    assert result.returncode != 0
    assert "lambda-microvms:memoryMiB" in result.output
    assert "3000" in result.output


def test_mandatory_violation_fails_preview_and_advisory_is_shown(engine: EngineStack):
    # The broad ReadOnlyAccess attachment is advisory only: shown, and the preview succeeds.
    engine.write_config(**{"lambda-microvms:attachReadOnlyAccess": True})
    advisory = engine.pulumi("preview", *engine.POLICY)
    assert advisory.returncode == 0, advisory.output[-6000:]
    assert "execution-role-broad-read-access" in advisory.output
    assert "[advisory]" in advisory.output
    # A region the dev/local policy config does not allow breaks a mandatory rule (the program
    # itself accepts us-west-2): the preview fails with that policy's message.
    engine.write_config(**{"aws:region": "us-west-2"})
    mandatory = engine.pulumi("preview", *engine.POLICY)
    assert mandatory.returncode != 0
    assert "microvm-regions" in mandatory.output
    assert "[mandatory]" in mandatory.output
    assert "us-west-2" in mandatory.output


# --------------------------------------------------------------------------- the whole life


SECRET_VALUE = "s3cr3t-engine-tier-value"
#: An endpoint token as the service (and the emulator) mints it: a compact JWE with an empty key part.
JWE_TOKEN = re.compile(
    r"[A-Za-z0-9_-]{20,}\.\.[A-Za-z0-9_-]{12,}\.[A-Za-z0-9_-]{200,}\.[A-Za-z0-9_-]{16,}"
)


def test_up_refresh_update_and_destroy(engine: EngineStack):
    engine.set_secret("lambda-microvms:secretEnvironmentVariables.API_TOKEN", SECRET_VALUE)
    # 1. up creates everything, the smoke test runs through pulumi-command and passes.
    up = engine.up()
    assert up.returncode == 0, up.output[-8000:]
    outputs = engine.outputs()
    assert set(outputs) >= README_OUTPUTS, sorted(outputs)
    assert outputs["environment"] == "local" and outputs["region"] == "us-east-1"
    smoke = outputs["smokeTest"]
    assert smoke["ok"] is True and smoke["probeStatus"] == 200, smoke
    assert smoke["finalState"] == "TERMINATED", smoke
    mv = client(engine, "lambda-microvms")
    image = mv.get_microvm_image(imageIdentifier=outputs["imageArn"])
    assert image["state"] == "ACTIVE" or image.get("latestActiveImageVersion")
    assert [v for v in mv.list_microvms()["items"] if v.get("state") != "TERMINATED"] == []

    # 2. a second up changes nothing; refresh finds no drift.
    engine.ok("preview", "--expect-no-changes", *engine.POLICY)
    engine.ok("refresh", "--yes", "--expect-no-changes")

    # 3. secrets: the secret environment value is in state only as ciphertext, and no endpoint
    # token (the emulator's tokens are minted by the smoke run) appears anywhere in it.
    state = json.dumps(engine.export())
    assert SECRET_VALUE not in state
    assert "local-only-not-secret" not in state
    assert "1b47061264138c4ac30d75fd1eb44270" in state  # Pulumi's secret signature: it is there
    assert not JWE_TOKEN.search(state) and not JWE_TOKEN.search(up.output)
    assert SECRET_VALUE not in up.output

    # 4. a memory change previews as an update of the image (a new version), and up applies it.
    engine.write_config(**{"lambda-microvms:memoryMiB": 2048})
    preview = engine.preview_json()
    assert preview.returncode == 0, preview.output[-6000:]
    image_steps = steps_by_type(preview.json())[IMAGE_TYPE]
    assert [s["op"] for s in image_steps] == ["update"], image_steps
    assert engine.up().returncode == 0
    after = engine.outputs()
    assert after["imageArn"] == outputs["imageArn"]
    assert after["imageVersion"] != outputs["imageVersion"]

    # 5. a tags-only change updates in place.
    engine.write_config(**{"lambda-microvms:tags": {"team": "sandbox"}})
    preview = engine.preview_json()
    assert preview.returncode == 0
    changed = {
        s["urn"].split("::")[-1]: (s["op"], s.get("replaceReasons"), s.get("diffReasons"))
        for s in preview.json()["steps"]
        if s["op"] != "same"
    }
    assert {k: v for k, v in changed.items() if v[0] != "update"} == {}
    assert engine.up().returncode == 0
    assert engine.outputs()["imageArn"] == outputs["imageArn"]

    # 6. destroy leaves nothing behind.
    engine.ok("destroy", "--yes")
    assert leftovers(engine) == {
        "images": [],
        "microvms": [],
        "buckets": [],
        "roles": [],
        "logGroups": [],
    }


# --------------------------------------------------------------------------- import / adopt


def test_adopt_an_image_made_out_of_band_then_no_diff(engine: EngineStack):
    """The engine cannot import a Python dynamic resource: ``pulumi import`` and the import resource
    option both Read with no inputs, so the SDK's dynamic provider has no ``__provider`` (KeyError).
    The stack takes an existing image over with ``lambda-microvms:adopt`` (a Create that makes
    nothing), and afterwards it is managed like any other."""
    engine.write_config(**{"lambda-microvms:smokeTest": {"enabled": False}})
    assert engine.up().returncode == 0
    name = engine.outputs()["imageName"]
    arn = f"arn:aws:lambda:us-east-1:123456789012:microvm-image:{name}"
    urn = next(
        r["urn"] for r in engine.export()["deployment"]["resources"] if r["type"] == IMAGE_TYPE
    )
    # From the stack's point of view the image is now one somebody made by hand.
    engine.ok("state", "delete", urn, "--yes", config=False)
    cli_import = engine.pulumi(
        "import", IMAGE_TYPE, "image-image", arn, "--yes", "--generate-code=false"
    )
    assert cli_import.returncode != 0 and "__provider" in cli_import.output

    engine.write_config(**{"lambda-microvms:adopt": name})
    preview = engine.preview_json()
    assert preview.returncode == 0, preview.output[-6000:]
    steps = {s["urn"].split("::")[-1]: s for s in preview.json()["steps"] if s["op"] != "same"}
    assert set(steps) == {"image-image"}
    assert steps["image-image"]["newState"]["inputs"]["adoptArn"] == arn
    assert engine.up().returncode == 0
    assert engine.outputs()["imageArn"] == arn
    engine.ok("preview", "--expect-no-changes", *engine.POLICY)
    mv = client(engine, "lambda-microvms")
    live = [i for i in mv.list_microvm_images()["items"] if i.get("state") != "DELETED"]
    assert [i["name"] for i in live] == [name]  # adopted, not rebuilt
    engine.ok("destroy", "--yes")
    assert leftovers(engine) == {
        "images": [],
        "microvms": [],
        "buckets": [],
        "roles": [],
        "logGroups": [],
    }
