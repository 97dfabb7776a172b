"""CLI wiring in-process: bad input is refused before any API call, with one readable line."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.stub import Stubber

from microvms import cli, output
from microvms.client import make_client

IMAGE = "arn:aws:lambda:us-east-1:123456789012:microvm-image:demo"
VM = "microvm-c87a143e-1132-36ee-987f-ea778e23f955"


@pytest.fixture
def no_calls(monkeypatch):
    """A client whose Stubber has no responses: any API call fails the test loudly."""
    client = make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    stub = Stubber(client)
    stub.activate()
    monkeypatch.setattr(cli, "_client", lambda ctx, **_: client)
    yield stub
    stub.assert_no_pending_responses()
    stub.deactivate()


def _run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run"], "error: --image-arn: is required (or set MICROVMS_IMAGE_ARN)"),
        (["run", "--image-arn", "demo"], "error: --image-arn: must be a full ARN"),
        (
            ["run", "--image-arn", IMAGE, "--max-idle-seconds", "900"],
            "error: idle policy: give all three of --max-idle-seconds, --suspended-seconds and "
            "--auto-resume/--no-auto-resume (missing: --suspended-seconds, "
            "--auto-resume/--no-auto-resume)",
        ),
        (
            ["run", "--image-arn", IMAGE, "--ingress", "BOGUS"],
            "error: --ingress: unknown ingress network connector 'BOGUS': give a connector ARN or "
            "one of HTTP_INGRESS, SHELL_INGRESS, ALL_INGRESS, NO_INGRESS\n",
        ),
        (
            ["run", "--image-arn", IMAGE, "--ingress", "INTERNET_EGRESS"],
            "error: --ingress: unknown ingress network connector 'INTERNET_EGRESS': give a "
            "connector ARN or one of HTTP_INGRESS, SHELL_INGRESS, ALL_INGRESS, NO_INGRESS\n",
        ),
        (
            ["run", "--image-arn", IMAGE, "--egress", "SHELL_INGRESS"],
            "error: --egress: unknown egress network connector 'SHELL_INGRESS': give a "
            "connector ARN or one of INTERNET_EGRESS\n",
        ),
        (
            ["run", "--image-arn", "arn:aws:lambda:us-east-1:123456789012:microvm-image:bad name"],
            "error: --image-arn: 'arn:aws:lambda:us-east-1:123456789012:microvm-image:bad name' "
            "is not a MicroVM image ARN (arn:aws:lambda:<region>:<account>:microvm-image:<name>)\n",
        ),
        (
            ["run", "--image-arn", "arn:aws:lambda:us-east-1:1234:microvm-imag:demo"],
            "error: --image-arn: is not a MicroVM image ARN",
        ),
        (
            ["run", "--image-arn", "arn:aws:lambda:us-west-2:123456789012:microvm-image:demo"],
            "error: --image-arn: the image is in us-west-2 but the client's region is us-east-1; "
            "pass --region us-west-2 or an image ARN in us-east-1\n",
        ),
        (
            ["run", "--image-arn", "arn:aws:lambda:eu-central-1:123456789012:microvm-image:demo"],
            "error: --image-arn: region 'eu-central-1' of the image ARN is not a Lambda MicroVMs "
            "launch region; use one of us-east-1, us-east-2, us-west-2, eu-west-1, "
            "ap-northeast-1\n",
        ),
        (
            ["run", "--image-arn", IMAGE, "--execution-role-arn", "arn:aws:iam::12:role/x"],
            "error: --execution-role-arn: 'arn:aws:iam::12:role/x' is not an IAM role ARN",
        ),
        (
            ["smoke", "--image-arn", "arn:aws:lambda:us-west-2:123456789012:microvm-image:demo"],
            "error: --image-arn: the image is in us-west-2 but the client's region is us-east-1",
        ),
        (
            ["ls", "--image", "arn:aws:lambda:us-west-2:123456789012:microvm-image:demo"],
            "error: --image: the image is in us-west-2 but the client's region is us-east-1",
        ),
        (
            ["gc", "--image", "demo"],
            "error: --image: 'demo' is not a MicroVM image ARN",
        ),
        (
            ["get", "microvm-1"],
            "error: MICROVM_ID: 'microvm-1' is not a MicroVM id; ids look like microvm-<uuid>\n",
        ),
        (["wait", "i-0123"], "error: MICROVM_ID: 'i-0123' is not a MicroVM id"),
        (["suspend", "MICROVM-C87A143E"], "error: MICROVM_ID: 'MICROVM-C87A143E' is not"),
        (["resume", VM + "x"], f"error: MICROVM_ID: '{VM}x' is not a MicroVM id"),
        (["terminate", VM, "nope"], "error: MICROVM_ID: 'nope' is not a MicroVM id"),
        (["probe", "x" * 500], "error: MICROVM_ID: '" + "x" * 80 + "…' is not a MicroVM id"),
        (["shell", "microvm-"], "error: MICROVM_ID: 'microvm-' is not a MicroVM id"),
        (["token", "../microvm"], "error: MICROVM_ID: '../microvm' is not a MicroVM id"),
        (
            ["run", "--image-arn", IMAGE, "--max-duration", "0"],
            "error: --max-duration: must be 1..28800",
        ),
        (["token", VM, "--minutes", "90"], "error: --minutes: must be 1..60, got 90"),
        (["token", VM, "--port", "0"], "error: --port: '0' is not a port"),
        (
            ["ls", "--state", "ASLEEP"],
            "error: --state: 'ASLEEP' is not allowed; use one of PENDING",
        ),
        (["ls", "--older-than", "later"], "error: --older-than: 'later' is not a duration"),
        (["ls", "--version", "1.0"], "error: --version: needs --image"),
        (["gc"], "error: gc: give --image and/or --older-than"),
        (["ls", "--page-size", "51"], "error: --page-size: must be 1..50, got 51"),
        (["wait", VM, "--state", "DONE"], "error: --state: 'DONE' is not allowed"),
        (["terminate"], "error: MICROVM_ID: give at least one MicroVM id"),
        (
            ["get", VM, "--output", "yaml"],
            "error: invalid input: --output: 'yaml' is not allowed; use one of json, table",
        ),
        (
            ["smoke", "--image-arn", IMAGE, "--timeout", "0"],
            "error: --timeout: must be > 0 seconds",
        ),
        (["shell", VM, "--minutes", "0"], "error: --minutes: must be 1..60, got 0"),
        (["probe", VM, "--port", "70000"], "error: --port: must be 1..65535, got 70000"),
    ],
)
def test_bad_input_fails_before_any_api_call(no_calls, capsys, argv, expected):
    code, out, err = _run(argv, capsys)
    assert code == 2
    assert out == ""
    assert err.startswith(expected), err
    assert err.count("\n") == 1  # exactly one line


def test_oversized_payload_is_refused_before_any_call(no_calls, capsys, tmp_path):
    payload = tmp_path / "payload.json"
    payload.write_bytes(b"x" * 4097)
    code, _, err = _run(["run", "--image-arn", IMAGE, "--payload-file", str(payload)], capsys)
    assert code == 2
    assert err == ("error: --payload-file: payload is larger than 4096 bytes (the service limit)\n")


def test_payload_is_not_an_argv_option_value(capsys):
    """--payload-file takes a path; there is no option that takes payload text."""
    code = cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert code == 0
    assert "--payload-file" in out
    assert "--payload " not in out and "--run-hook-payload" not in out


def test_from_json_env_reads_the_id(no_calls, capsys, monkeypatch):
    monkeypatch.setenv("PULUMI_COMMAND_STDOUT", "not json")
    code, _, err = _run(["terminate", "--from-json-env", "PULUMI_COMMAND_STDOUT"], capsys)
    assert code == 2
    assert err == (
        "error: --from-json-env: $PULUMI_COMMAND_STDOUT does not hold a JSON document "
        "with a microvmId\n"
    )
    monkeypatch.setenv("PULUMI_COMMAND_STDOUT", json.dumps({"microvmId": "microvm-9"}))
    assert cli._id_from_json_env("PULUMI_COMMAND_STDOUT") == "microvm-9"


def test_env_vars_feed_options(no_calls, capsys, monkeypatch):
    monkeypatch.setenv("MICROVMS_IMAGE_ARN", "not-an-arn")
    code, _, err = _run(["run"], capsys)
    assert code == 2
    assert err.startswith("error: --image-arn: must be a full ARN")


def test_service_errors_are_one_line_with_the_service_message(monkeypatch, capsys):
    client = make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    monkeypatch.setattr(cli, "_client", lambda ctx, **_: client)
    with Stubber(client) as stub:
        stub.add_client_error(
            "get_microvm",
            "ResourceNotFoundException",
            "MicroVM not found: microvm-00000000-0000-0000-0000-000000000000",
            404,
        )
        code, out, err = _run(["get", "microvm-00000000-0000-0000-0000-000000000000"], capsys)
    assert code == 1
    assert out == ""
    assert err == (
        "error: GetMicrovm failed (ResourceNotFoundException): "
        "MicroVM not found: microvm-00000000-0000-0000-0000-000000000000\n"
    )


def test_usage_error_exit_code(capsys):
    assert cli.main(["nope"]) == 2
    assert "No such command" in capsys.readouterr().err


def test_output_format_choice():
    assert output.choose_format(None, isatty=False) == "json"
    assert output.choose_format(None, isatty=True) == "table"
    assert output.choose_format("TABLE", isatty=False) == "table"
    with pytest.raises(ValueError, match="use one of json, table"):
        output.choose_format("xml")
    assert output.error_line("a\nb", "c\n d") == "error: a b: c d"


def _pending_vm():
    return {
        "microvmId": "microvm-1",
        "state": "PENDING",
        "imageArn": IMAGE,
        "imageVersion": "1.0",
        "endpoint": "u.lambda-microvm.us-east-1.on.aws",
        "maximumDurationInSeconds": 28800,
        "startedAt": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


@pytest.mark.parametrize("terminate", [True, False])
def test_run_wait_terminate_on_failure(monkeypatch, capsys, terminate):
    """SessionRun's create: a failed wait must not leave a VM that no Pulumi state records."""
    client = make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    monkeypatch.setattr(cli, "_client", lambda ctx, **_: client)
    argv = ["run", "--image-arn", IMAGE, "--wait", "--timeout", "0"]
    with Stubber(client) as stub:
        stub.add_response("run_microvm", _pending_vm())
        stub.add_response("get_microvm", _pending_vm())
        if terminate:
            stub.add_response("terminate_microvm", {}, {"microvmIdentifier": "microvm-1"})
        code, out, err = _run([*argv, "--terminate-on-failure"] if terminate else argv, capsys)
        stub.assert_no_pending_responses()
    assert (code, out) == (1, "")
    note = "; terminated microvm-1 (--terminate-on-failure)" if terminate else ""
    assert err == (
        "error: wait failed: timed out after 0s waiting for microvm-1 to be RUNNING "
        f"(last state: PENDING){note}\n"
    )
