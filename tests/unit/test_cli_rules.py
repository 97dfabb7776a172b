"""CLI rules in-process: help texts, --version, region checks, loopback defaults, token freshness,
the RunMicrovm rate from Service Quotas, and the live progress line."""

from __future__ import annotations

import io
import os
import re

import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from microvms import cli, endpoint, inputs, loopback, progress, quota, vms
from microvms.client import make_client
from microvms.ratelimit import TokenBucket
from microvms.tokens import TokenSource

VM = "microvm-c87a143e-1132-36ee-987f-ea778e23f955"
COMMANDS = [c.name or c.callback.__name__ for c in cli.app.registered_commands]


def _run(argv, capsys):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------ help and version


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_texts_show_no_rst_markup(command):
    result = CliRunner().invoke(cli.app, [command, "--help"] if command else ["--help"])
    assert result.exit_code == 0, result.output
    for markup in ("``", ":class:", ":func:", ":meth:", "**", "→"):
        assert markup not in result.output, (command, markup)


def test_run_help_states_the_default_maximum_duration():
    result = CliRunner().invoke(cli.app, ["run", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "Default: 28800 s (8 h), the service's default" in text
    smoke = " ".join(CliRunner().invoke(cli.app, ["smoke", "--help"]).output.split())
    assert "Default: --timeout plus 120 s, a backstop" in smoke


def test_version(capsys):
    from importlib.metadata import version

    code, out, err = _run(["--version"], capsys)
    assert (code, out, err) == (0, f"microvms {version('lambda-microvms')}\n", "")


def test_limits_in_the_cli_match_the_service_model():
    """The constants used in help texts are the model's numbers (one home: the model)."""
    model = make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9").meta.service_model
    shape = model.shape_for
    assert shape("RunMicrovmRequestMaximumDurationInSecondsInteger").metadata["max"] == (
        vms.MAX_DURATION_SECONDS
    )
    assert shape("RunHookPayload").metadata["max"] == vms.MAX_PAYLOAD_BYTES
    assert shape("NetworkConnectorList").metadata["max"] == vms.MAX_CONNECTORS
    assert shape("MicrovmIdentifier").metadata["max"] >= len(VM)


# ------------------------------------------------------------------------------ regions


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (
            ["--region", "eu-central-1", "get", VM],
            {},
            "error: --region: 'eu-central-1' is not a Lambda MicroVMs launch region; use one of "
            "us-east-1, us-east-2, us-west-2, eu-west-1, ap-northeast-1\n",
        ),
        (
            ["ls"],
            {"AWS_REGION": "sa-east-1"},
            "error: region: 'sa-east-1' is not a Lambda MicroVMs launch region; use one of "
            "us-east-1, us-east-2, us-west-2, eu-west-1, ap-northeast-1\n",
        ),
        (
            ["--region", "us-west-2", "run", "--image-arn",
             "arn:aws:lambda:us-east-1:123456789012:microvm-image:demo"],
            {},
            "error: --image-arn: the image is in us-east-1 but the client's region is us-west-2; "
            "pass --region us-east-1 or an image ARN in us-west-2\n",
        ),
    ],
)  # fmt: skip
def test_regions_are_checked_before_any_call(monkeypatch, capsys, argv, env, expected):
    sent = []
    real = cli._client

    def spy(ctx, **kwargs):
        client = real(ctx, **kwargs)
        client.meta.events.register("before-send", lambda **kw: sent.append(kw))
        return client

    monkeypatch.setattr(cli, "_client", spy)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, out, err = _run(["--endpoint-url", "https://lambda.example.com", *argv], capsys)
    assert (code, out, err) == (2, "", expected)
    assert sent == []


def test_no_region_for_a_remote_endpoint_is_an_input_error(monkeypatch, capsys):
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key)
    code, out, err = _run(["--endpoint-url", "https://lambda.example.com", "get", VM], capsys)
    assert (code, out) == (2, "")
    assert err == (
        "error: --region: no AWS region set; pass --region or set AWS_REGION to one of "
        "us-east-1, us-east-2, us-west-2, eu-west-1, ap-northeast-1\n"
    )


# ------------------------------------------------------------------------------ loopback defaults


@pytest.fixture
def bare_aws(monkeypatch):
    """No credentials and no region anywhere (config files already point at /dev/null)."""
    names = (*loopback.CREDENTIAL_ENV, *loopback.REGION_ENV)
    for key in (*names, "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:4567", True),
        ("http://localhost:4567/", True),
        ("http://127.8.9.10", True),
        ("http://[::1]:80", True),
        ("https://lambda.us-east-1.amazonaws.com", False),
        ("http://10.0.0.1:4567", False),
        ("http://localhost.example.com", False),
        ("not a url", False),
        (None, False),
    ],
)
def test_is_loopback(url, expected):
    assert loopback.is_loopback(url) is expected


def test_loopback_endpoint_without_credentials_or_region_gets_placeholders(bare_aws):
    setup = loopback.resolve(
        endpoint_url="http://127.0.0.1:4567", region=None, profile=None, proxy_url=None
    )
    assert setup.region == loopback.LOCAL_REGION
    assert setup.credentials == loopback.PLACEHOLDER_CREDENTIALS
    assert setup.note == (
        "microvms: local endpoint http://127.0.0.1:4567 and no AWS credentials or region "
        "configured: using placeholder credentials and region us-east-1"
    )


def test_loopback_fills_only_what_is_missing(bare_aws, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA_MICROVMS", "http://localhost:4567")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    setup = loopback.resolve(endpoint_url=None, region=None, profile=None, proxy_url=None)
    assert (setup.region, setup.credentials) == ("us-east-1", None)
    assert setup.note.endswith("and no AWS region configured: using region us-east-1")
    setup = loopback.resolve(endpoint_url=None, region="us-west-2", profile=None, proxy_url=None)
    assert (setup.region, setup.credentials, setup.note) == ("us-west-2", None, None)


@pytest.mark.parametrize(
    ("endpoint_url", "proxy_url"),
    [
        ("https://lambda.us-east-1.amazonaws.com", None),
        (None, None),  # botocore's default endpoint: AWS itself
        ("http://127.0.0.1:4567", "https://proxy.example.com"),
    ],
)
def test_never_placeholders_for_a_non_loopback_endpoint(bare_aws, endpoint_url, proxy_url):
    setup = loopback.resolve(
        endpoint_url=endpoint_url, region=None, profile=None, proxy_url=proxy_url
    )
    assert (setup.region, setup.credentials, setup.note, setup.local) == (None, None, None, False)


def test_credentials_in_the_profile_count_as_configured(bare_aws, monkeypatch, tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKID\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    setup = loopback.resolve(
        endpoint_url="http://127.0.0.1:1", region=None, profile=None, proxy_url=None
    )
    assert setup.credentials is None and setup.region == "us-east-1"


# ------------------------------------------------------------------------------ tokens


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_token_source_reuses_until_80_percent_of_its_life_then_mints():
    clock = FakeClock()
    minted = []
    source = TokenSource(
        lambda minutes: minted.append(minutes) or vms.Secret(f"t{len(minted)}"), 5, clock=clock
    )
    first = source.get()
    clock.now = 0.8 * 300 - 0.01
    assert source.get() is first and minted == [5]
    clock.now = 0.8 * 300
    second = source.get()
    assert second is not first and second.reveal() == "t2" and source.mints == 2
    assert source.refresh().reveal() == "t3"
    assert "t3" not in repr(source.get()) and repr(source.get()) == "Secret('***')"


def test_an_unresolvable_endpoint_fails_at_once_with_the_proxy_hint(monkeypatch):
    calls = []
    source = TokenSource(lambda m: calls.append(m) or vms.Secret("t"), 1)
    with pytest.raises(endpoint.EndpointUnresolvable) as caught:
        endpoint.probe("abc.lambda-microvm.us-east-1.invalid", source, timeout=120)
    assert str(caught.value).startswith(
        "cannot resolve the MicroVM endpoint abc.lambda-microvm.us-east-1.invalid ("
    )
    assert str(caught.value).endswith(
        "); for the local emulator set MICROVMS_PROXY_URL (or --proxy-url) to the emulator's URL"
    )


# ------------------------------------------------------------------------------ RunMicrovm rate


def _sq():
    return make_client("service-quotas", region="us-east-1", endpoint_url="http://127.0.0.1:9")


def test_rate_is_the_applied_quota_value():
    client = _sq()
    with Stubber(client) as stub:
        stub.add_response(
            "get_service_quota",
            {"Quota": {"QuotaCode": "L-535CA9B6", "QuotaName": "RunMicrovm", "Value": 1.0}},
            {"ServiceCode": "lambda", "QuotaCode": "L-535CA9B6"},
        )
        choice = quota.read_run_microvm_rate(client)
    assert choice == quota.RateChoice(1.0, "Service Quotas lambda L-535CA9B6, applied value")
    assert choice.describe() == (
        "RunMicrovm rate 1/s (Service Quotas lambda L-535CA9B6, applied value)"
    )


def test_rate_quota_found_by_name_when_the_code_is_unknown():
    client = _sq()
    with Stubber(client) as stub:
        stub.add_client_error("get_service_quota", "NoSuchResourceException", "no quota", 400)
        stub.add_response(
            "list_service_quotas",
            {
                "Quotas": [
                    {"QuotaCode": "L-91B95582", "QuotaName": "RunMicrovm burst", "Value": 5.0},
                    {"QuotaCode": "L-NEW", "QuotaName": "Rate of Run Microvm requests", "Value": 2},
                ]
            },
            {"ServiceCode": "lambda"},
        )
        choice = quota.read_run_microvm_rate(client)
    assert choice == quota.RateChoice(2.0, "Service Quotas lambda L-NEW, applied value")


def test_rate_falls_back_to_5_per_second_when_unreadable():
    client = _sq()
    with Stubber(client) as stub:
        stub.add_client_error("get_service_quota", "AccessDeniedException", "no", 400)
        choice = quota.read_run_microvm_rate(client)
    assert choice == quota.RateChoice(
        5.0, "fallback 5/s: Service Quotas answered AccessDeniedException"
    )


def test_the_quota_is_looked_up_only_when_the_rate_first_matters():
    asked = []
    bucket = TokenBucket(lambda: asked.append(1) or 2.0, clock=lambda: 0.0, sleep=lambda s: None)
    assert bucket._reserve() == 0.0 and asked == []  # one RunMicrovm: no wait, no lookup
    assert bucket._reserve() == pytest.approx(0.5) and asked == [1]
    assert bucket._reserve() == pytest.approx(1.0) and asked == [1]  # looked up once


def test_moto_service_quotas_without_the_lambda_quota_falls_back(monkeypatch):
    """moto serves Service Quotas for vpc only: the real HTTP exchange ends in the fallback."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = make_client(
            "service-quotas", region="us-east-1", endpoint_url=f"http://{host}:{port}",
            max_attempts=1,
        )  # fmt: skip
        choice = quota.read_run_microvm_rate(client)
        assert choice.rate == 5.0 and choice.source.startswith("fallback 5/s: Service Quotas")

        from moto.servicequotas.models import ServiceQuotasBackend

        real = ServiceQuotasBackend.get_service_quota

        def with_lambda(self, service_code, quota_code):
            if (service_code, quota_code) == ("lambda", "L-535CA9B6"):
                return {"QuotaCode": quota_code, "QuotaName": "RunMicrovm", "Value": 1.0}
            return real(self, service_code, quota_code)

        monkeypatch.setattr(ServiceQuotasBackend, "get_service_quota", with_lambda)
        assert quota.read_run_microvm_rate(client) == quota.RateChoice(
            1.0, "Service Quotas lambda L-535CA9B6, applied value"
        )
    finally:
        server.stop()


# ------------------------------------------------------------------------------ progress line


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_live_line_redraws_in_place_and_clears():
    stream = Tty()
    with progress.LiveLine("waiting", enabled=True, stream=stream) as line:
        reporter = progress.WaitProgress(line, clock=lambda: 1.0, sleep=lambda s: None)
        reporter.report("PENDING", 1.25, 0.5)
        reporter.report(None, 2.0, 1.0)
    text = stream.getvalue()
    assert text == (
        "\r\x1b[2Kwaiting: PENDING · 1.2s elapsed · next poll in 0.5s"
        "\r\x1b[2Kwaiting: not visible yet · 2.0s elapsed · next poll in 1.0s"
        "\r\x1b[2K"
    )


def test_live_line_is_silent_off_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout", io.StringIO())
    line = progress.LiveLine("waiting", stream=Tty())
    assert line.enabled is False
    line.show("PENDING")
    line.clear()
    assert line.stream.getvalue() == ""


def test_shown_values_are_cut_short():
    with pytest.raises(vms.InputError) as caught:
        inputs.check_microvm_id("m" * 10_000)
    assert len(str(caught.value)) < 200
    assert re.search(r"'m{80}…' is not a MicroVM id", str(caught.value))
    assert os.environ.get("AWS_REGION") == "us-east-1"  # hermetic fixture still in place


def test_shell_mints_a_new_token_when_the_handshake_is_refused(monkeypatch):
    from websockets.datastructures import Headers
    from websockets.exceptions import InvalidStatus
    from websockets.http11 import Response

    from microvms import shell

    seen = []

    def handshake(endpoint_host, token, **kwargs):
        seen.append(token.reveal())
        if len(seen) == 1:
            raise InvalidStatus(
                Response(403, "Forbidden", Headers(), b"Token authentication failed")
            )
        return "connection"

    monkeypatch.setattr(shell, "open_connection", handshake)
    minted = iter(["expired", "fresh"])
    source = TokenSource(lambda m: vms.Secret(next(minted)), 5)
    assert shell.open_with_tokens("vm.example", source) == "connection"
    assert seen == ["expired", "fresh"] and source.mints == 2

    def refuses_port(endpoint_host, token, **kwargs):
        raise InvalidStatus(Response(400, "Bad Request", Headers(), b"Invalid port"))

    monkeypatch.setattr(shell, "open_connection", refuses_port)
    with pytest.raises(InvalidStatus):
        shell.open_with_tokens("vm.example", source)
    assert source.mints == 2  # only a 403 earns a new token


def test_help_imports_no_aws_sdk_rich_or_websockets():
    """``microvms --help`` loads typer and our small modules only (start-up, issue 15.7)."""
    import json
    import subprocess
    import sys

    code = (
        "import io, json, sys\n"
        "from microvms.cli import main\n"
        "sys.stdout = io.StringIO()\n"
        "assert main(['--help']) == 0\n"
        "sys.__stdout__.write(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(proc.stdout))
    heavy = {"boto3", "s3transfer", "botocore.session", "rich", "websockets", "pydantic", "urllib3"}
    assert loaded & heavy == set()
