"""`make up STACK=local` up to the point where the Pulumi CLI is needed.

Starts the same background services the target starts (moto server, the image app, our
lambda-microvms emulator) through devkit.services on free loopback ports, checks each answers
real requests, checks Pulumi.local.yaml sends every AWS service the program uses to them, and
checks they stop (explicitly and by their watchdog). The missing-CLI path runs the real command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config

from devkit import local_stack, services

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = services.ACCOUNT_ID
# pulumi-aws resource module -> the aws:endpoints key(s) that override it.
AWS_MODULE_ENDPOINTS = {
    "s3": ("s3",),
    "iam": ("iam",),
    "cloudwatch": ("cloudwatchlogs", "logs"),
    "sts": ("sts",),
}


def _client(service: str, url: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(
            retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=30
        ),
    )


def _gone(svc: services.Service, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not services._pid_exists(svc.pid) and not services.port_open(svc.port):
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def stack_services(tmp_path_factory):
    state = tmp_path_factory.mktemp("pulumi-local")
    ports = services.free_ports()
    started = services.start_services(
        ports, state_dir=state, lifetime=600, parent_pid=os.getpid(), timeout=90
    )
    yield ports, state, started
    services.stop_services(state)


def test_services_answer(stack_services):
    ports, _state, started = stack_services
    assert set(started) == {"moto", "app", "emulator"}
    assert all(not s.reused for s in started.values())

    s3 = _client("s3", ports.moto_url)
    s3.create_bucket(Bucket="local-stack-check")
    assert "local-stack-check" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    iam = _client("iam", ports.moto_url)
    iam.create_role(RoleName="local-stack-check", AssumeRolePolicyDocument="{}")
    assert "local-stack-check" in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert _client("sts", ports.moto_url).get_caller_identity()["Account"] == ACCOUNT
    logs = _client("logs", ports.moto_url)
    logs.create_log_group(logGroupName="/local-stack/check")
    groups = logs.describe_log_groups(logGroupNamePrefix="/local-stack/")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/local-stack/check"]

    microvms = _client("lambda-microvms", ports.emulator_url)
    resp = microvms.list_managed_microvm_images()
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    with urllib.request.urlopen(f"{ports.emulator_url}/_emulator/calls", timeout=5) as r:
        assert json.load(r).get("ListManagedMicrovmImages", 0) >= 1

    with urllib.request.urlopen(f"{ports.app_url}/health", timeout=5) as r:
        assert r.status == 200
        assert isinstance(json.load(r), dict)
    # The app's hooks listener (the emulator's upstream for guest port 9000) is up too.
    assert services.port_open(ports.hooks)


def test_second_start_reuses_healthy_services(stack_services):
    ports, state, started = stack_services
    again = services.start_services(ports, state_dir=state, lifetime=600, parent_pid=os.getpid())
    assert all(s.reused for s in again.values())
    assert {n: s.pid for n, s in again.items()} == {n: s.pid for n, s in started.items()}


def test_pulumi_env_points_program_and_cli_at_emulators(stack_services, monkeypatch):
    ports, state, _ = stack_services
    monkeypatch.setenv("AWS_PROFILE", "my-real-profile")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.invalid")
    env = local_stack.pulumi_env(ports, state_dir=state)
    assert "AWS_PROFILE" not in env and "AWS_ENDPOINT_URL" not in env
    assert env["AWS_ENDPOINT_URL_LAMBDA_MICROVMS"] == ports.emulator_url
    assert env["MICROVMS_PROXY_URL"] == ports.emulator_url
    assert env["PULUMI_BACKEND_URL"] == f"file://{state / 'state'}"
    assert env["PULUMI_CONFIG_PASSPHRASE"] == "local-only-not-secret"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    # The microvms client honours the variable, so the provider and the CLI reach the emulator.
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA_MICROVMS", ports.emulator_url)
    from microvms.client import make_client

    assert make_client(region="us-east-1").meta.endpoint_url == ports.emulator_url


def test_stop_services_leaves_nothing_running(stack_services):
    # Runs after the other tests of the module's services (pytest keeps file order).
    _ports, state, started = stack_services
    stopped = services.stop_services(state)
    assert sorted(stopped) == ["app", "emulator", "moto"]
    for svc in started.values():
        assert _gone(svc), f"{svc.name} (pid {svc.pid}, port {svc.port}) still running"
    assert list((state / "services").iterdir()) == []
    assert services.stop_services(state) == []  # idempotent


def test_pulumi_local_yaml_sends_every_service_to_the_emulators():
    ports = services.Ports()  # the fixed defaults `make up STACK=local` uses
    assert local_stack.config_endpoint_problems(ports) == []
    cfg = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text())["config"]
    for key in (
        "aws:skipCredentialsValidation",
        "aws:skipMetadataApiCheck",
        "aws:s3UsePathStyle",
    ):
        assert cfg.get(key) is True, key
    # With it, pulumi-aws has no account id and refuses aws:allowedAccountIds (the engine tier
    # found this): the provider must ask STS, which moto answers with the emulators' account.
    assert "aws:skipRequestingAccountId" not in cfg
    assert cfg["lambda-microvms:accountId"] == ACCOUNT  # the emulators' account

    # Every AWS service module the program's resources use has an endpoint on moto.
    from devkit.offline.evaluate import evaluate_program

    graph = evaluate_program("local")
    endpoints: dict[str, str] = {}
    for item in cfg["aws:endpoints"]:
        endpoints.update(item)
    modules = {
        r.type.split(":")[1].split("/")[0] for r in graph.resources if r.type.startswith("aws:")
    }
    modules.add("sts")  # the provider itself calls STS unless told otherwise
    unmapped = modules - set(AWS_MODULE_ENDPOINTS)
    assert not unmapped, f"the program uses AWS modules with no local endpoint mapping: {unmapped}"
    for module in modules:
        keys = AWS_MODULE_ENDPOINTS[module]
        assert any(endpoints.get(k) == ports.moto_url for k in keys), (module, keys, endpoints)

    # The engine hands those endpoints to the default aws provider the resources use.
    providers = [r for r in graph.resources if r.type == "pulumi:providers:aws"]
    assert providers, "no aws provider in the local graph"
    for prov in providers:
        raw = prov.plain_inputs.get("endpoints")
        given = json.loads(raw) if isinstance(raw, str) else raw
        merged = {}
        for item in given:
            merged.update(item)
        assert merged.get("s3") == ports.moto_url

    ours = cfg["lambda-microvms:endpoints"]
    assert ours["microvms"] == ours["proxy"] == ports.emulator_url


def test_config_endpoint_problems_names_the_bad_key(tmp_path):
    bad = tmp_path / "Pulumi.local.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "aws:endpoints": [
                        {"s3": "http://127.0.0.1:4566", "iam": "http://127.0.0.1:9999"}
                    ],
                    "lambda-microvms:endpoints": {"microvms": "http://127.0.0.1:4567"},
                }
            }
        )
    )
    problems = local_stack.config_endpoint_problems(services.Ports(), bad)
    assert "aws:endpoints iam = http://127.0.0.1:9999 (want http://127.0.0.1:4566)" in problems
    assert "aws:endpoints has no sts entry (want http://127.0.0.1:4566)" in problems
    assert (
        "aws:endpoints has no cloudwatchlogs / logs entry (want http://127.0.0.1:4566)" in problems
    )
    assert "lambda-microvms:endpoints.proxy is not set (want http://127.0.0.1:4567)" in problems


def test_watchdog_stops_a_service_at_its_lifetime(tmp_path):
    ports = services.free_ports()
    svc = services._start_one(
        "app", ports, tmp_path,
        lifetime=2, parent_pid=None, python=sys.executable, env=dict(os.environ), timeout=60,
    )  # fmt: skip
    assert services.healthy("app", ports)
    assert _gone(svc, timeout=20), "the app outlived its 2 s lifetime"
    assert not (tmp_path / "services" / "app.json").exists()
    assert "[watchdog] stopping app: lifetime of 2s reached" in Path(svc.log).read_text()


def test_watchdog_stops_a_service_when_its_parent_dies(tmp_path):
    ports = services.free_ports()
    code = (
        "import os, sys; from pathlib import Path; from devkit import local_stack, services; "
        f"p = services.Ports(moto={ports.moto}, emulator={ports.emulator}, app={ports.app}, hooks={ports.hooks}); "
        f"s = services._start_one('app', p, Path({str(tmp_path)!r}), lifetime=300, parent_pid=os.getpid(), "
        "python=sys.executable, env=dict(os.environ), timeout=60); print(s.pid)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    svc = services.Service("app", int(proc.stdout.strip()), ports.app, "", "", 0, 300)
    assert _gone(svc, timeout=20), "the app outlived the process that started it"
    assert "parent process" in (tmp_path / "logs" / "app.log").read_text()


def test_port_in_use_is_refused_with_the_variable_to_change(tmp_path):
    ports = services.free_ports()
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports.moto))
        blocker.listen()
        with pytest.raises(services.LocalStackError) as err:
            services.start_services(ports, state_dir=tmp_path, lifetime=30)
    assert f"port {ports.moto} (service moto) is already in use" in str(err.value)
    assert "LOCAL_MOTO_PORT=<port>" in str(err.value)


def test_bad_port_variable_names_the_variable():
    with pytest.raises(services.LocalStackError) as err:
        services.ports_from_env({"LOCAL_EMULATOR_PORT": "http"})
    assert str(err.value) == "LOCAL_EMULATOR_PORT must be a TCP port from 1 to 65535, got 'http'"
    assert services.ports_from_env({}) == services.Ports(
        moto=4566, emulator=4567, app=18080, hooks=19000
    )


def _path_without_pulumi() -> str:
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    return os.pathsep.join(d for d in dirs if not (Path(d) / "pulumi").exists())


@pytest.mark.parametrize("command", ["up", "preview"])
def test_missing_cli_says_so_and_starts_nothing(tmp_path, command):
    env = dict(os.environ, PATH=_path_without_pulumi(), LOCAL_STACK_STATE_DIR=str(tmp_path))
    assert local_stack.find_pulumi(env["PATH"]) is None
    proc = subprocess.run(
        [sys.executable, "-m", "devkit.local_stack", command],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3
    assert "The Pulumi CLI is not installed: `pulumi` was not found on PATH." in proc.stderr
    assert "curl -fsSL https://get.pulumi.com | sh -s -- --version 3.272.0" in proc.stderr
    assert "https://www.pulumi.com/docs/iac/download-install/" in proc.stderr
    assert "Nothing was started." in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no state, no logs, no services


def test_down_without_cli_stops_services_and_exits_0_with_a_note(tmp_path):
    ports = services.free_ports()
    svc = services._start_one(
        "app", ports, tmp_path,
        lifetime=300, parent_pid=os.getpid(), python=sys.executable, env=dict(os.environ), timeout=60,
    )  # fmt: skip
    env = dict(
        os.environ,
        PATH=_path_without_pulumi(),
        LOCAL_STACK_STATE_DIR=str(tmp_path),
        LOCAL_APP_PORT=str(ports.app),
        LOCAL_HOOK_PORT=str(ports.hooks),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "devkit.local_stack", "down"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Stopped: local stack: app." in proc.stdout
    assert (
        "Note: the Pulumi CLI is not installed, so no `pulumi destroy` ran "
        "(there was no local stack to destroy)." in proc.stdout
    )
    assert _gone(svc)


def test_local_passphrase_and_encryption_salt():
    good = "v1:jk1HfZSdkc8=:v1:WGdjVZW1VT1TPtKZ:MFu6J7lshgzCL9etws2/bUDViUsxug=="
    assert local_stack.passphrase_matches_salt(good)
    assert not local_stack.passphrase_matches_salt(good, "another passphrase")
    assert not local_stack.passphrase_matches_salt("v1:not-a-salt")
    # A salt committed in Pulumi.local.yaml must open with the documented passphrase, or
    # `make up STACK=local` would fail with "incorrect passphrase".
    salt = yaml.safe_load((REPO / "Pulumi.local.yaml").read_text()).get("encryptionsalt")
    if salt is not None:
        assert local_stack.passphrase_matches_salt(salt), (
            "Pulumi.local.yaml encryptionsalt vs local-only-not-secret"
        )


@pytest.mark.parametrize(
    ("outputs", "line", "ok"),
    [
        ({"smokeTest": None}, "Smoke test: not run (smokeTest is disabled or not exported).", True),
        ({}, "Smoke test: not run (smokeTest is disabled or not exported).", True),
        (
            {"smokeTest": {"ok": False, "error": "probe answered 503, expected 200"}},
            "Smoke test: FAILED — probe answered 503, expected 200",
            False,
        ),
        (
            {"smokeTest": "[secret]"},
            "Smoke test: result is secret in the stack outputs; see it with "
            "`pulumi stack output smokeTest --show-secrets --stack local`.",
            True,
        ),
        ({"smokeTest": "not json"}, 'Smoke test: FAILED (unexpected result "not json")', False),
    ],
)
def test_smoke_verdict(outputs, line, ok):
    assert local_stack.smoke_verdict(outputs) == (line, ok)
