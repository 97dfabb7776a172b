"""``microvms versions`` and ``microvms activate`` against the emulator.

Exit codes through the real entry point (``python -m microvms`` in a subprocess); the rest
in-process through ``cli.main`` (the same code, without paying a Python start per case). The
emulator serves RunMicrovm without ``imageVersion`` from the newest ACTIVE version, as the
service does (docs/service-facts.md §4.3), so every activation is checked by starting a MicroVM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from microvms import cli
from microvms.client import make_client
from tests.fixtures.emulator import (
    BASE_IMAGE_ARN,
    BUILD_ROLE_ARN,
    CODE_URI,
    built_image,
    wait_image,
)

pytestmark = pytest.mark.emulator

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def image(emulator_factory):
    """An image with three built versions (1.0, 2.0, 3.0); (emulator, client, arn)."""
    emu = emulator_factory()
    client = make_client(region="us-east-1", max_attempts=1)
    arn = built_image(client, "versioned")
    for n in (2, 3):
        client.update_microvm_image(
            imageIdentifier=arn,
            baseImageArn=BASE_IMAGE_ARN,
            buildRoleArn=BUILD_ROLE_ARN,
            codeArtifact={"uri": CODE_URI.replace(".zip", f"-v{n}.zip")},
        )
        wait_image(client, arn, "UPDATED")
    return emu, client, arn


def _calls(emu) -> dict:
    with urllib.request.urlopen(emu.url + "/_emulator/calls") as r:
        return json.loads(r.read())


def _reset_calls(emu) -> None:
    req = urllib.request.Request(emu.url + "/_emulator/calls/reset", data=b"{}", method="POST")
    urllib.request.urlopen(req).close()


def _serving(client, arn: str) -> str:
    vm = client.run_microvm(imageIdentifier=arn)
    client.terminate_microvm(microvmIdentifier=vm["microvmId"])
    return vm["imageVersion"]


def _cli(*args):
    proc = subprocess.run(
        [sys.executable, "-m", "microvms", *args],
        capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=90,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def _main(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ exit codes, real processes


@pytest.mark.slow  # one real CLI process per exit code; make test runs it
def test_exit_codes_of_the_real_entry_point(image):
    emu, client, arn = image
    _reset_calls(emu)
    # bad input: 2, one line, before any request
    code, out, err = _cli("activate", arn, "latest")
    assert code == 2 and out == ""
    assert err == 'error: VERSION: \'latest\' is not an image version; give "<n>.0" (e.g. "2.0")\n'
    code, _, err = _cli("versions", "not a name!")
    assert code == 2 and err.startswith("error: IMAGE: 'not a name!' is not an image ARN")
    code, _, err = _cli("versions", arn.replace("us-east-1", "eu-west-1"))
    assert code == 2 and "the image is in eu-west-1 but the client's region is us-east-1" in err
    assert _calls(emu) == {}
    # a version the image does not keep: 1, naming the retained ones, nothing changed
    code, out, err = _cli("activate", arn, "7.0")
    assert code == 1 and out == ""
    assert err == (
        f"error: VERSION: version 7.0 is not a retained, successfully built version of image "
        f"{arn}; retained versions: 3.0, 2.0, 1.0\n"
    )
    assert "UpdateMicrovmImageVersion" not in _calls(emu)
    # success: 0 and JSON
    code, out, err = _cli("activate", arn, "2.0", "--output", "json")
    assert code == 0, err
    assert json.loads(out)["serving"] == "2.0"
    code, out, _ = _cli("versions", "versioned")
    assert code == 0 and [r["serving"] for r in json.loads(out)] == [False, True, False]


# ------------------------------------------------------------------ the rest, in-process


def test_versions_lists_state_status_serving_and_builds(image, capsys):
    _, _, arn = image
    code, out, err = _main(capsys, "versions", arn, "-o", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["imageVersion"] for r in rows] == ["3.0", "2.0", "1.0"]
    assert {(r["state"], r["status"]) for r in rows} == {("SUCCESSFUL", "ACTIVE")}
    assert [r["serving"] for r in rows] == [True, False, False]
    for r in rows:
        assert sorted(b["chipsetGeneration"] for b in r["builds"]) == ["3", "4"]
        assert {b["buildState"] for b in r["builds"]} == {"SUCCESSFUL"}
    code, out, _ = _main(capsys, "versions", arn, "--no-builds", "-o", "json")
    assert code == 0 and all("builds" not in r for r in json.loads(out))


def test_versions_table_names_the_serving_version(image, capsys):
    _, _, arn = image
    code, out, err = _main(capsys, "versions", "versioned", "-o", "table")
    assert code == 0, err
    assert "versioned" in out and "gen 3 SUCCESSFUL" in out and "gen 4 SUCCESSFUL" in out
    line_3 = next(line for line in out.splitlines() if " 3.0 " in line)
    assert "yes" in line_3 and "ACTIVE" in line_3


def test_activate_rolls_back_and_forward_without_a_rebuild(image, capsys):
    emu, client, arn = image
    _reset_calls(emu)
    code, out, err = _main(capsys, "activate", arn, "1", "-o", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["imageVersion"] == "1.0" and result["serving"] == "1.0"
    assert result["changes"] == [
        {"imageVersion": "3.0", "status": "INACTIVE"},
        {"imageVersion": "2.0", "status": "INACTIVE"},
    ]
    calls = _calls(emu)
    assert calls.get("UpdateMicrovmImageVersion") == 2 and "UpdateMicrovmImage" not in calls
    assert _serving(client, arn) == "1.0"
    # forward again to 3.0: only 3.0 changes, 2.0 stays INACTIVE (older than what serves)
    code, out, err = _main(capsys, "activate", "versioned", "3.0", "--no-wait", "-o", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["changes"] == [{"imageVersion": "3.0", "status": "ACTIVE"}]
    assert "serving" not in result
    assert _serving(client, arn) == "3.0"
    statuses = {
        v["imageVersion"]: v["status"]
        for v in client.list_microvm_image_versions(imageIdentifier=arn)["items"]
    }
    assert statuses == {"1.0": "ACTIVE", "2.0": "INACTIVE", "3.0": "ACTIVE"}
    # activating what already serves changes nothing
    code, out, _ = _main(capsys, "activate", arn, "3.0", "-o", "json")
    assert code == 0 and json.loads(out)["changes"] == []


def test_an_unknown_image_name_is_one_line(image, capsys):
    code, out, err = _main(capsys, "versions", "no-such-image")
    assert code == 1 and out == ""
    assert err == "error: IMAGE: no image named 'no-such-image' in us-east-1\n"


def test_a_version_being_built_cannot_serve(image, capsys):
    emu, client, arn = image
    emu.state.settings.build_seconds = 600  # still building when activate asks, however loaded
    client.update_microvm_image(
        imageIdentifier=arn,
        baseImageArn=BASE_IMAGE_ARN,
        buildRoleArn=BUILD_ROLE_ARN,
        codeArtifact={"uri": CODE_URI},
    )
    code, _, err = _main(capsys, "activate", arn, "4.0")
    assert code == 1
    assert "version 4.0 is not a retained, successfully built version" in err
    assert "retained versions: 3.0, 2.0, 1.0" in err
    emu.clock.advance(600)  # the emulator's clock, not a real wait
    wait_image(client, arn, "UPDATED")
