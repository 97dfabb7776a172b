"""The pulumi-resource-command test double, driven over gRPC as the engine drives it.

The double runs as a real subprocess (``python -u -m tests.engine.doubles.command_provider``,
exactly what the installed ``pulumi-resource-command`` launcher runs); every test speaks the
``ResourceProvider`` protocol to it in the engine's order (Configure → Check → Create → Diff →
Update → Delete) and the commands it runs are real ``/bin/sh`` processes.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import engine_pb2_grpc, provider_pb2, provider_pb2_grpc

from devkit.offline import wire
from devkit.offline.provider import REPO_ROOT, ProviderError, _Plugin, make_urn
from tests.engine.doubles.command_plugin import install_command_double

TYPE = "command:local:Command"
DIFF = provider_pb2.DiffResponse
KIND = provider_pb2.PropertyDiff


class CommandDouble:
    """A started double plus the engine-side calls, taking and returning wire JSON."""

    def __init__(
        self,
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        engine: str = "",
        launcher: Path | None = None,
    ):
        # The engine's argv: its flags, then its own address (here: none, or a recording engine).
        flags = ["--logtostderr", "-v=9", "--tracing", "127.0.0.1:1", *([engine] if engine else [])]
        if launcher is None:
            argv = [sys.executable, "-u", "-m", "tests.engine.doubles.command_provider", *flags]
            env = {"PYTHONPATH": str(REPO_ROOT), **(env or {})}
        else:
            argv = [str(launcher), *flags]
        full_env = {**os.environ, **(env or {})}
        self.plugin = _Plugin(argv, cwd=cwd, env=full_env, name="pulumi-resource-command")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.plugin.port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def stop(self) -> None:
        self.channel.close()
        self.plugin.stop()

    def call(self, method: str, request):
        try:
            return getattr(self.stub, method)(request, timeout=60)
        except grpc.RpcError as exc:
            raise ProviderError(exc.code(), exc.details(), method) from None

    def configure(self) -> provider_pb2.ConfigureResponse:
        self.call(
            "CheckConfig", provider_pb2.CheckRequest(news=wire.to_struct({"version": "1.2.1"}))
        )
        return self.call(
            "Configure",
            provider_pb2.ConfigureRequest(
                args=wire.to_struct({"version": "1.2.1"}), acceptSecrets=True
            ),
        )

    def check(self, urn: str, news: dict) -> tuple[dict, list[tuple[str, str]]]:
        resp = self.call("Check", provider_pb2.CheckRequest(urn=urn, news=wire.to_struct(news)))
        return wire.from_struct(resp.inputs), [(f.property, f.reason) for f in resp.failures]

    def create(self, urn: str, inputs: dict, timeout: float = 0) -> tuple[str, dict]:
        resp = self.call(
            "Create",
            provider_pb2.CreateRequest(urn=urn, properties=wire.to_struct(inputs), timeout=timeout),
        )
        return resp.id, wire.from_struct(resp.properties)

    def diff(self, urn: str, rid: str, olds: dict, news: dict) -> provider_pb2.DiffResponse:
        return self.call(
            "Diff",
            provider_pb2.DiffRequest(
                id=rid, urn=urn, olds=wire.to_struct(olds), news=wire.to_struct(news)
            ),
        )

    def update(self, urn: str, rid: str, olds: dict, news: dict) -> dict:
        resp = self.call(
            "Update",
            provider_pb2.UpdateRequest(
                id=rid, urn=urn, olds=wire.to_struct(olds), news=wire.to_struct(news)
            ),
        )
        return wire.from_struct(resp.properties)

    def delete(self, urn: str, rid: str, props: dict) -> None:
        self.call(
            "Delete", provider_pb2.DeleteRequest(id=rid, urn=urn, properties=wire.to_struct(props))
        )

    def up(self, urn: str, news: dict) -> tuple[str, dict]:
        """Check + Create, failing the test on Check failures."""
        inputs, failures = self.check(urn, news)
        assert failures == []
        return self.create(urn, inputs)


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("program")


@pytest.fixture(scope="module")
def double(program_dir):
    d = CommandDouble(cwd=program_dir, env={"DOUBLE_PARENT_ONLY": "inherited"})
    d.configure()
    yield d
    d.stop()


def urn(name: str = "cmd") -> str:
    return make_urn(TYPE, name, stack="local")


# ------------------------------------------------------------------------ plugin surface


def test_plugin_info_configure_and_config_check(double):
    info = double.call("GetPluginInfo", empty_pb2.Empty())
    assert info.version == "1.2.1"
    configured = double.configure()
    assert configured.acceptSecrets is True
    assert configured.supportsPreview is False

    resp = double.call(
        "CheckConfig",
        provider_pb2.CheckRequest(news=wire.to_struct({"version": "1.2.1", "region": "x"})),
    )
    assert [(f.property, f.reason) for f in resp.failures] == [
        (
            "region",
            "provider config 'region' is not supported: pulumi-resource-command has no "
            "configuration; only 'version' is expected",
        )
    ]


def test_schema_marks_triggers_replace_on_changes(double):
    schema = json.loads(double.call("GetSchema", provider_pb2.GetSchemaRequest()).schema)
    resource = schema["resources"][TYPE]
    assert schema["version"] == "1.2.1"
    assert resource["inputProperties"]["triggers"]["replaceOnChanges"] is True
    assert resource["required"] == ["stdout", "stderr"]


# ------------------------------------------------------------------------ Check


def test_check_fills_upstream_default_and_keeps_secrets(double):
    inputs, failures = double.check(
        urn(), {"create": "true", "environment": {"TOKEN": wire.secret("s3cr3t")}}
    )
    assert failures == []
    assert inputs == {
        "create": "true",
        "environment": {"TOKEN": wire.secret("s3cr3t")},
        "addPreviousOutputInEnv": True,
    }


def test_check_refuses_unknown_property_naming_it(double):
    _, failures = double.check(urn(), {"create": "true", "bogus": 1})
    assert len(failures) == 1
    prop, reason = failures[0]
    assert prop == "bogus"
    assert reason.startswith("Unrecognized field 'bogus' on 'local.CommandInputs'; known fields:")
    assert "create" in reason and "triggers" in reason


def test_check_refuses_unimplemented_inputs_and_bad_types(double):
    _, failures = double.check(urn(), {"create": 3, "assetPaths": ["*.txt"], "logging": "loud"})
    reasons = dict(failures)
    assert reasons["create"] == (
        "Field 'create' on 'local.CommandInputs' must be a 'string'; got 'float64' instead"
    )
    assert reasons["assetPaths"].startswith(
        "'assetPaths' is not implemented by the pulumi-resource-command test double"
    )
    assert reasons["logging"] == (
        "'logging' is 'loud'; allowed values: stdout, stderr, stdoutAndStderr, none "
        "(absent logs stdout and stderr)"
    )


def test_check_accepts_unknowns_during_preview(double):
    inputs, failures = double.check(
        urn(), {"create": "true", "triggers": ["arn", wire.UNKNOWN], "environment": wire.UNKNOWN}
    )
    assert failures == []
    assert inputs["triggers"] == ["arn", wire.UNKNOWN]


# ------------------------------------------------------------------------ Create


def test_create_captures_stdout_and_stderr_trimmed(double, program_dir):
    rid, outputs = double.up(
        urn("smoke"), {"create": "printf 'out\\n\\n'; printf 'err\\n' >&2; pwd >&2"}
    )
    assert rid.startswith("smoke") and len(rid) == len("smoke") + 8
    assert outputs["stdout"] == "out\n"  # exactly one trailing newline trimmed, as upstream
    assert outputs["stderr"] == f"err\n{program_dir.resolve()}"  # default dir = plugin's cwd
    assert outputs["create"].startswith("printf")
    assert outputs["addPreviousOutputInEnv"] is True


def test_environment_reaches_child_on_top_of_the_plugin_environment(double):
    _, outputs = double.up(
        urn(),
        {
            "create": 'echo "$MICROVMS_REGION $DOUBLE_PARENT_ONLY $TOKEN"',
            "environment": {"MICROVMS_REGION": "us-east-1", "TOKEN": wire.secret("tok-1")},
        },
    )
    assert outputs["stdout"] == "us-east-1 inherited tok-1"
    # Secretness flows only to the output of the same name: the echoed environment stays
    # secret, stdout does not (upstream's default wiring; use additionalSecretOutputs).
    assert outputs["environment"]["TOKEN"] == wire.secret("tok-1")
    assert not wire.contains_secret(outputs["stdout"])


def test_stdin_is_delivered(double, tmp_path):
    _, outputs = double.up(
        urn(),
        {"create": "cat; echo", "stdin": wire.secret('{"payload": 1}'), "dir": str(tmp_path)},
    )
    assert outputs["stdout"] == '{"payload": 1}'
    assert outputs["stdin"] == wire.secret('{"payload": 1}')


def test_interpreter_is_honoured(double):
    _, outputs = double.up(urn(), {"create": "print(6 * 7)", "interpreter": [sys.executable, "-c"]})
    assert outputs["stdout"] == "42"


def test_nonzero_exit_fails_create_with_exit_code_and_output(double):
    with pytest.raises(ProviderError) as err:
        double.up(urn(), {"create": "echo to-out; echo boom >&2; exit 3"})
    assert err.value.code == grpc.StatusCode.UNKNOWN
    head, _, output = err.value.details.partition(":\n")
    assert head == 'exit status 3: running "echo to-out; echo boom >&2; exit 3"'
    # stdout and stderr interleave as they arrive (two pipes: no order between them).
    assert sorted(output.splitlines()) == ["boom", "to-out"] and output.endswith("\n")


def test_secret_command_text_is_not_echoed_in_errors(double):
    inputs, _ = double.check(urn(), {"create": wire.secret("echo tok-9 >/dev/null; exit 4")})
    with pytest.raises(ProviderError) as err:
        double.create(urn(), inputs)
    assert err.value.details == 'exit status 4: running "[secret]":\n'


def test_missing_dir_and_interpreter_fail_like_upstream(double, tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ProviderError) as err:
        double.up(urn(), {"create": "true", "dir": str(missing)})
    assert err.value.details == f'chdir {missing}: no such file or directory: running "true":\n'
    with pytest.raises(ProviderError) as err:
        double.up(urn(), {"create": "true", "interpreter": ["no-such-shell-xyz"]})
    assert err.value.details.startswith('exec: "no-such-shell-xyz": executable file not found')


def test_timeout_kills_the_command_process_group(double, tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    inputs, _ = double.check(
        urn(), {"create": f"echo started; sleep 60 & echo $! > {pidfile}; wait"}
    )
    with pytest.raises(ProviderError) as err:
        double.create(urn(), inputs, timeout=1)
    assert err.value.code == grpc.StatusCode.UNKNOWN
    assert err.value.details.startswith("signal: killed (timed out after 1s, the resource's ")
    assert err.value.details.endswith('; wait":\nstarted\n')
    grandchild = int(pidfile.read_text())
    _wait_until_gone(grandchild)


def test_cancel_kills_running_commands_and_refuses_new_ones(tmp_path):
    d = CommandDouble(cwd=tmp_path)
    try:
        d.configure()
        inputs, _ = d.check(urn(), {"create": f"echo $$ > {tmp_path / 'pid'}; exec sleep 60"})
        errors: list[ProviderError] = []

        def create() -> None:
            try:
                d.create(urn(), inputs)
            except ProviderError as exc:
                errors.append(exc)

        worker = threading.Thread(target=create)
        worker.start()
        _wait_for_file(tmp_path / "pid")
        d.call("Cancel", empty_pb2.Empty())
        worker.join(30)
        assert [e.details for e in errors] == [
            'signal: killed (the engine cancelled the operation): running "echo $$ > '
            f'{tmp_path / "pid"}; exec sleep 60":\n'
        ]
        _wait_until_gone(int((tmp_path / "pid").read_text()))
        with pytest.raises(ProviderError) as err:
            d.create(urn(), inputs)
        assert err.value.details.startswith("context canceled: running ")
    finally:
        d.stop()


def _wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not (path.exists() and path.read_text().strip()):
        if time.monotonic() > deadline:
            pytest.fail(f"{path} was never written")
        time.sleep(0.05)


def _wait_until_gone(pid: int) -> None:
    """Wait (bounded) until ``pid`` no longer runs; a zombie counts as gone."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.05)
    pytest.fail(f"process {pid} of the timed-out command still runs")


# ------------------------------------------------------------------------ Diff / Update / Delete


def _created(double, news: dict, name: str = "cmd") -> tuple[str, str, dict, dict]:
    u = urn(name)
    inputs, failures = double.check(u, news)
    assert failures == []
    rid, outputs = double.create(u, inputs)
    return u, rid, inputs, outputs


def test_no_change_means_no_diff(double):
    u, rid, inputs, outputs = _created(
        double, {"create": "echo hi", "triggers": ["arn", "1"], "environment": {"A": "1"}}
    )
    resp = double.diff(u, rid, outputs, inputs)
    assert resp.changes == DIFF.DIFF_NONE
    assert list(resp.replaces) == [] and dict(resp.detailedDiff) == {}


def test_triggers_change_replaces(double):
    u, rid, _, outputs = _created(double, {"create": "echo hi", "triggers": ["arn", "1"]})
    news, _ = double.check(u, {"create": "echo hi", "triggers": ["arn", "2"]})
    resp = double.diff(u, rid, outputs, news)
    assert resp.changes == DIFF.DIFF_SOME
    assert list(resp.replaces) == ["triggers"]
    assert resp.deleteBeforeReplace is False
    assert {k: v.kind for k, v in resp.detailedDiff.items()} == {"triggers[1]": KIND.UPDATE_REPLACE}


def test_other_changes_update_in_place(double):
    u, rid, _, outputs = _created(double, {"create": "echo hi", "environment": {"A": "1"}})
    news, _ = double.check(
        u, {"create": "echo hi", "environment": {"A": "2"}, "delete": "echo bye"}
    )
    resp = double.diff(u, rid, outputs, news)
    assert resp.changes == DIFF.DIFF_SOME
    assert list(resp.replaces) == []
    assert {k: v.kind for k, v in resp.detailedDiff.items()} == {
        "delete": KIND.ADD,
        "environment.A": KIND.UPDATE,
    }


def test_update_runs_update_with_previous_output_else_create(double):
    u, rid, _, outputs = _created(double, {"create": "echo first; echo warn >&2"})
    news, _ = double.check(
        u,
        {
            "create": "echo first",
            "update": 'echo "was=$PULUMI_COMMAND_STDOUT/$PULUMI_COMMAND_STDERR"',
        },
    )
    updated = double.update(u, rid, outputs, news)
    assert updated["stdout"] == "was=first/warn"
    assert updated["update"].startswith("echo")

    # Without `update`, Update re-runs `create`; addPreviousOutputInEnv=false hides the old output.
    news, _ = double.check(
        u,
        {"create": 'echo "again:${PULUMI_COMMAND_STDOUT:-none}"', "addPreviousOutputInEnv": False},
    )
    assert double.update(u, rid, updated, news)["stdout"] == "again:none"


def test_update_failure_reports_exit_code(double):
    u, rid, _, outputs = _created(double, {"create": "echo ok"})
    news, _ = double.check(u, {"create": "echo ok", "update": "echo nope >&2; exit 7"})
    with pytest.raises(ProviderError) as err:
        double.update(u, rid, outputs, news)
    assert err.value.details == 'exit status 7: running "echo nope >&2; exit 7":\nnope\n'


def test_delete_gets_previous_stdout(double, tmp_path):
    record = tmp_path / "deleted.txt"
    u, rid, _, outputs = _created(
        double,
        {
            "create": 'echo \'{"microvmId": "mvm-1"}\'',
            "delete": f'printf "%s" "$PULUMI_COMMAND_STDOUT" > {record}',
        },
    )
    double.delete(u, rid, outputs)
    assert record.read_text() == '{"microvmId": "mvm-1"}'


def test_delete_without_command_does_nothing_and_failure_is_reported(double):
    u, rid, _, outputs = _created(double, {"create": "echo hi"})
    double.delete(u, rid, outputs)  # no `delete`: nothing runs, no error
    u, rid, _, outputs = _created(double, {"create": "echo hi", "delete": "exit 9"})
    with pytest.raises(ProviderError) as err:
        double.delete(u, rid, outputs)
    assert err.value.details == 'exit status 9: running "exit 9":\n'


def test_read_returns_state_as_is_and_refuses_import(double):
    u, rid, inputs, outputs = _created(double, {"create": "echo hi"})
    resp = double.call(
        "Read",
        provider_pb2.ReadRequest(
            id=rid, urn=u, properties=wire.to_struct(outputs), inputs=wire.to_struct(inputs)
        ),
    )
    assert resp.id == rid
    assert wire.from_struct(resp.properties) == outputs
    assert wire.from_struct(resp.inputs) == inputs
    with pytest.raises(ProviderError) as err:
        double.call("Read", provider_pb2.ReadRequest(id="x", urn=u))
    assert err.value.details.startswith(
        "Missing required field 'stdout' on 'local.CommandOutputs': command:local:Command has "
        "no live state to read, so it cannot be imported"
    )


# ------------------------------------------------------------------------ refused surface


def test_unknown_type_and_invokes_are_refused(double):
    remote = make_urn("command:remote:Command", "r", stack="local")
    with pytest.raises(ProviderError) as err:
        double.check(remote, {"create": "true"})
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details == (
        "unknown resource type 'command:remote:Command': the pulumi-resource-command test "
        "double (tests/engine/doubles/command_provider) implements only command:local:Command"
    )
    with pytest.raises(ProviderError) as err:
        double.call("Invoke", provider_pb2.InvokeRequest(tok="command:local:run"))
    assert err.value.details.startswith("Unknown Invoke token 'command:local:run': ")


# ------------------------------------------------------------------------ engine log


class _RecordingEngine(engine_pb2_grpc.EngineServicer):
    def __init__(self):
        self.logs: list = []
        self.lock = threading.Lock()

    def Log(self, request, context):
        with self.lock:
            self.logs.append(request)
        return empty_pb2.Empty()


@pytest.fixture
def recording_engine():
    recorder = _RecordingEngine()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield recorder, f"127.0.0.1:{port}"
    server.stop(grace=0)


def test_output_lines_go_to_the_engine_as_ephemeral_status_per_logging(recording_engine, tmp_path):
    recorder, address = recording_engine
    d = CommandDouble(cwd=tmp_path, engine=address)
    try:
        d.configure()
        d.up(urn("logged"), {"create": "echo line-1; echo line-2 >&2"})
        d.up(urn("quiet"), {"create": "echo hidden", "logging": "none"})
        d.up(urn("stderr-only"), {"create": "echo no; echo yes >&2", "logging": "stderr"})
    finally:
        d.stop()
    seen = sorted((r.urn.split("::")[-1], r.message, r.ephemeral) for r in recorder.logs)
    assert seen == [
        ("logged", "line-1", True),
        ("logged", "line-2", True),
        ("stderr-only", "yes", True),
    ]


# ------------------------------------------------------------------------ installer


def test_installer_writes_a_launcher_the_plugin_cache_counts_as_installed(tmp_path):
    home = tmp_path / "pulumi-home"
    stale = home / "plugins" / "resource-command-v1.2.1.partial"
    stale.parent.mkdir(parents=True)
    stale.write_text("")
    launcher = install_command_double(home, sys.executable)
    assert launcher == home / "plugins" / "resource-command-v1.2.1" / "pulumi-resource-command"
    assert launcher.stat().st_mode & stat.S_IXUSR
    assert not stale.exists()  # a .partial marker would make the CLI treat it as not installed
    assert sys.executable in launcher.read_text()

    # The launcher really starts the double (from an unrelated cwd) and keeps that cwd.
    d = CommandDouble(cwd=tmp_path, launcher=launcher)
    try:
        d.configure()
        _, outputs = d.up(urn(), {"create": "pwd"})
        assert outputs["stdout"] == str(tmp_path.resolve())
    finally:
        d.stop()
