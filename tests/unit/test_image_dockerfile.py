"""Static checks on the MicroVM image (``image/``): no container engine runs here, so the
Dockerfile, the hook configuration and the MCP config are read and judged as text and data.

Also the pure parts of the app module (configuration and ``/run`` body parsing), imported
straight from ``image/app/main.py`` (importing it has no side effects, which is checked too).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import botocore.session
import pytest
import yaml
from botocore.validate import ParamValidator

from components.artifact import collect_files

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "image"
DOCKERFILE = IMAGE / "Dockerfile"
BASE_IMAGE = "public.ecr.aws/lambda/microvms:al2023-minimal"
SUPPORTED_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1")

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- Dockerfile parsing


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """``[(INSTRUCTION, arguments)]`` with comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def build_args(instructions: list[tuple[str, str]]) -> dict[str, str]:
    args: dict[str, str] = {}
    for word, rest in instructions:
        if word == "ARG":
            name, sep, default = rest.partition("=")
            assert sep, f"ARG {name} has no default: every pin must live in the Dockerfile"
            args[name] = default
    return args


def substitute(text: str, args: dict[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        assert name in args, f"${name} is used but never declared with ARG"
        return args[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, text)


def env_vars(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in instructions:
        if word == "ENV":
            for item in shlex.split(rest):
                key, sep, value = item.partition("=")
                assert sep, f"ENV {item!r}: use the KEY=value form"
                env[key] = value
    return env


def commands(run_args: str) -> list[list[str]]:
    """Split a RUN line into its ``&&``/``;``-separated commands, each as argv."""
    return [shlex.split(part) for part in re.split(r"&&|;|\|\|", run_args) if part.strip()]


_PINNED_NPM = re.compile(r"^(@[a-z0-9._-]+/)?[a-z0-9._-]+@\d+\.\d+\.\d+$")
_PINNED_PY = re.compile(r"^[A-Za-z0-9._-]+(\[[\w,-]+\])?==\d+(\.\d+)*$")
_AL2023_RELEASE = re.compile(r"^--releasever=2023\.\d+\.\d{8}$")
_KNOWN_INSTALLERS = frozenset({"dnf", "microdnf", "yum", "npm", "pip", "uv"})


def unpinned_installs(argv: list[str]) -> list[str]:
    """Problems with one command's version pins (empty when it installs nothing or pins all)."""
    if not argv:
        return []
    tool, rest = Path(argv[0]).name, argv[1:]
    if tool in ("dnf", "microdnf", "yum") and "install" in rest:
        if not any(_AL2023_RELEASE.match(a) for a in rest):
            return [f"{' '.join(argv)}: OS packages need --releasever=2023.X.YYYYMMDD"]
        return []
    if tool == "npm" and rest[:1] in (["install"], ["i"], ["add"]):
        pkgs = [a for a in rest[1:] if not a.startswith("-") and a != "/usr/local"]
        return [
            f"npm package {p!r} is not pinned to x.y.z" for p in pkgs if not _PINNED_NPM.match(p)
        ]
    if tool == "pip" or (tool.startswith("python") and rest[:2] == ["-m", "pip"]):
        rest = rest[2:] if tool.startswith("python") else rest
        if rest[:1] == ["install"]:
            pkgs = [a for a in rest[1:] if not a.startswith("-")]
            return [
                f"pip package {p!r} is not pinned with ==" for p in pkgs if not _PINNED_PY.match(p)
            ]
    if tool == "uv" and (rest[:2] == ["tool", "install"] or rest[:2] == ["pip", "install"]):
        pkgs: list[str] = []
        it = iter(rest[2:])
        for a in it:
            if a in ("--python", "-p"):
                next(it, None)  # the interpreter, not a package
            elif not a.startswith("-"):
                pkgs.append(a)
        return [f"uv package {p!r} is not pinned with ==" for p in pkgs if not _PINNED_PY.match(p)]
    if tool in ("uvx", "npx"):
        return [f"{' '.join(argv)}: run installed tools, not {tool} (it resolves versions late)"]
    if tool in ("curl", "wget"):
        return [f"{' '.join(argv)}: no downloads outside package managers"]
    if "install" in rest and tool not in _KNOWN_INSTALLERS:
        # An installer this checker has no pin rule for (apt-get, gem, cargo, pipx, go, ...)
        # would otherwise pass unchecked: teach the checker first.
        return [f"{' '.join(argv)}: {tool} is not an installer whose pins this test checks"]
    return []


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return parse_dockerfile(DOCKERFILE.read_text())


# --------------------------------------------------------------------------- the Dockerfile


def test_dockerfile_is_at_the_artifact_root():
    """The service runs the Dockerfile at the zip root (docs/service-facts.md §4.1): check what the zip holds."""
    files = collect_files(IMAGE)
    assert "Dockerfile" in files
    assert "app/main.py" in files and ".mcp.json" in files and "claude-settings.json" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert "README.md" not in files, ".artifactignore keeps docs out of the build input"


def test_base_image_is_the_lambda_microvms_al2023_minimal(dockerfile):
    froms = [rest for word, rest in dockerfile if word == "FROM"]
    assert froms == [BASE_IMAGE], "one stage, on the snapshot-safe Lambda base (facts: OpenSSL)"
    assert dockerfile[0][0] == "FROM"


def test_every_install_is_pinned(dockerfile):
    args = build_args(dockerfile)
    problems: list[str] = []
    installs = 0
    for word, rest in dockerfile:
        if word != "RUN":
            continue
        for argv in commands(substitute(rest, args)):
            if argv and ("install" in argv):
                installs += 1
            problems += unpinned_installs(argv)
    assert installs >= 4, "dnf (git, node, python), npm (claude-code), pip (uv), uv (MCP server)"
    assert problems == []
    assert "@latest" not in DOCKERFILE.read_text()


def test_pin_checker_rejects_unpinned_lines():
    """The checker above is not vacuous: each unpinned form is reported."""
    bad = [
        "dnf install -y git",
        "npm install -g @anthropic-ai/claude-code",
        "npm install -g @anthropic-ai/claude-code@latest",
        "pip install uv",
        "python3.12 -m pip install uv>=0.5",
        "uv tool install awslabs.aws-api-mcp-server",
        "uvx awslabs.aws-api-mcp-server@latest",
        "curl -fsSL https://example.invalid/install.sh",
        "apt-get install -y git",
        "gem install bundler",
        "pipx install awslabs.aws-api-mcp-server==1.5.6",
        "cargo install ripgrep",
        "dnf -y install git",
        "pip install --upgrade uv",
        "npm i -g @anthropic-ai/claude-code@^2.1.0",
    ]
    for line in bad:
        assert unpinned_installs(shlex.split(line)), line
    good = [
        "dnf install -y --releasever=2023.12.20260629 git",
        "npm install --global --prefix /usr/local @anthropic-ai/claude-code@2.1.332",
        "/opt/uv/bin/pip install --no-cache-dir uv==0.13.9",
        "uv tool install --python python3.12 awslabs.aws-api-mcp-server==1.5.6",
    ]
    for line in good:
        assert unpinned_installs(shlex.split(line)) == [], line


def test_installs_the_agent_toolchain(dockerfile):
    args = build_args(dockerfile)
    runs = " ".join(substitute(rest, args) for word, rest in dockerfile if word == "RUN")
    assert re.search(r"dnf install .*\bgit\b", runs)
    assert re.search(r"\bnodejs\d+\b", runs)
    assert re.search(r"\bpython3\.\d+\b", runs)
    assert re.search(r"@anthropic-ai/claude-code@\d+\.\d+\.\d+", runs)
    assert re.search(r"\buv==\d+\.\d+\.\d+", runs)
    assert re.search(r"awslabs\.aws-api-mcp-server==\d+\.\d+\.\d+", runs)
    assert "compileall" in runs, "our bytecode is compiled at build time (lands in the snapshot)"
    env = env_vars(dockerfile)
    assert env.get("UV_COMPILE_BYTECODE") == "1", "the MCP server's bytecode too"


def test_bedrock_settings_and_no_api_key(dockerfile):
    env = env_vars(dockerfile)
    assert env["CLAUDE_CODE_USE_BEDROCK"] == "1"
    assert re.match(
        r"^(us|eu|apac|global)\.anthropic\.claude-[a-z0-9.-]+(:\d+)?$", env["ANTHROPIC_MODEL"]
    )
    assert env["AWS_REGION"] in SUPPORTED_REGIONS
    assert env["DISABLE_AUTOUPDATER"] == "1", "the pinned CLI must not replace itself"
    forbidden = {"ANTHROPIC_" + "API_KEY", "ANTHROPIC_AUTH_TOKEN", "AWS_ACCESS_KEY_ID"}
    forbidden |= {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"}
    assert not forbidden & set(env)
    args = build_args(dockerfile)
    assert not forbidden & set(args)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_model_the_agent_uses_is_granted_to_the_execution_role(dockerfile, stack):
    """Claude Code calls the inference profile in ``ANTHROPIC_MODEL``; the execution role only
    allows ``bedrockModelArns``. If they disagree, every prompt fails with AccessDenied."""
    config = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
    overrides = config.get("lambda-microvms:environmentVariables") or {}
    model = overrides.get("ANTHROPIC_MODEL", env_vars(dockerfile)["ANTHROPIC_MODEL"])
    granted = config["lambda-microvms:bedrockModelArns"]
    profiles = [a for a in granted if a.endswith(f":inference-profile/{model}")]
    assert profiles, f"{stack}: {model} is not in bedrockModelArns {granted}"
    # The profile routes to the foundation model behind it, which must be granted too.
    foundation = model.split(".", 1)[1]
    assert [a for a in granted if a.endswith(f"::foundation-model/{foundation}")], foundation


def test_exposes_app_and_hook_ports_and_starts_the_app(dockerfile):
    exposed = {p for word, rest in dockerfile if word == "EXPOSE" for p in rest.split()}
    assert {"8080", "9000"} <= exposed
    hooks = json.loads((IMAGE / "hooks.json").read_text())
    assert str(hooks["port"]) in exposed
    env = env_vars(dockerfile)
    assert env["PORT"] == "8080" and env["HOOK_PORT"] == str(hooks["port"])
    assert env["HOST"] == "0.0.0.0", "hooks are called over the guest network, not loopback"
    cmds = [rest for word, rest in dockerfile if word == "CMD"]
    assert len(cmds) == 1
    argv = json.loads(cmds[0])
    assert argv == [build_args(dockerfile)["PYTHON"], "/opt/app/main.py"]
    copies = [rest.split() for word, rest in dockerfile if word == "COPY"]
    assert ["app/", "/opt/app/"] in copies
    assert [".mcp.json", "/workspace/.mcp.json"] in copies
    assert ["claude-settings.json", "/workspace/.claude/settings.json"] in copies


def test_every_copy_source_ships_in_the_artifact(dockerfile):
    """The service builds from the zip, not from this directory: a COPY source the ignore rules
    drop would fail the remote build, so each one must be in what the stack uploads."""
    shipped = collect_files(IMAGE)
    copies = [rest.split()[:-1] for word, rest in dockerfile if word == "COPY"]
    assert copies, "the Dockerfile copies the app and its config"
    for sources in copies:
        for src in sources:
            if src.endswith("/"):
                assert [f for f in shipped if f.startswith(src)], f"COPY {src}: nothing shipped"
            else:
                assert src in shipped, f"COPY {src}: not in the artifact zip"
    # Every shipped file has a use: COPYed, the Dockerfile itself, or the hook config.
    used = {"Dockerfile", "hooks.json"}
    for f in shipped:
        assert f in used or any(
            f == src or (src.endswith("/") and f.startswith(src)) for s in copies for src in s
        ), f"{f} ships but nothing uses it"


def test_dockerfile_uses_only_plain_instructions(dockerfile):
    allowed = {"FROM", "ARG", "RUN", "ENV", "COPY", "WORKDIR", "EXPOSE", "CMD"}
    assert {word for word, _ in dockerfile} <= allowed
    for word, rest in dockerfile:
        if word == "COPY":
            assert not rest.startswith("--from"), "single stage"
            src = IMAGE / rest.split()[0]
            assert src.exists(), f"COPY source {src} missing"


# --------------------------------------------------------------------------- secrets


_SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"),
    "AWS secret key assignment": re.compile(
        r"(?i)aws_?secret_?access_?key\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}"
    ),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "Anthropic API key variable": re.compile("ANTHROPIC_" + "API_KEY"),
    "Anthropic key": re.compile(r"sk-ant-[A-Za-z0-9_-]{8,}"),
    "AWS credential variable": re.compile(
        r"\bAWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)\b"
    ),
}


def find_secrets(text: str) -> list[str]:
    return [name for name, rx in _SECRET_PATTERNS.items() if rx.search(text)]


def test_no_secrets_or_keys_anywhere_in_image():
    """Every file under image/ (shipped or not, dotfiles included) is scanned."""
    scanned = 0
    hits: dict[str, list[str]] = {}
    for path in sorted(IMAGE.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        found = find_secrets(path.read_text(errors="replace"))
        scanned += 1
        if found:
            hits[str(path.relative_to(REPO))] = found
    assert scanned >= 6
    assert hits == {}


def test_secret_scanner_detects_each_pattern():
    samples = {
        "AWS access key id": "key = AKIA" + "Q" * 16,
        "AWS secret key assignment": "aws_secret_access_key = " + "a1B2" * 10,
        "private key": "-----BEGIN RSA " + "PRIVATE KEY-----",
        "Anthropic API key variable": "export ANTHROPIC_" + "API_KEY=x",
        "Anthropic key": "sk-" + "ant-api03-abcdefghijkl",
        "AWS credential variable": "AWS_" + "SESSION_TOKEN=abc",
    }
    for name, text in samples.items():
        assert name in find_secrets(text), name
    assert find_secrets("CLAUDE_CODE_USE_BEDROCK=1 AWS_REGION=us-east-1") == []


# --------------------------------------------------------------------------- MCP + Claude config


def test_mcp_server_is_project_scope_and_read_only(dockerfile):
    mcp = json.loads((IMAGE / ".mcp.json").read_text())
    servers = mcp["mcpServers"]
    assert list(servers) == ["aws-api"]
    server = servers["aws-api"]
    assert server["env"]["READ_OPERATIONS_ONLY"] == "true"
    assert server["env"]["AWS_API_MCP_TELEMETRY"] == "false"
    env = env_vars(dockerfile)
    # The command is the pinned uv-tool entry point, not a late-resolving `uvx …@latest`.
    assert server["command"] == f"{env['UV_TOOL_BIN_DIR']}/awslabs.aws-api-mcp-server"
    workdir = server["env"]["AWS_API_MCP_WORKING_DIR"]
    runs = " ".join(rest for word, rest in dockerfile if word == "RUN")
    assert workdir in runs, "the MCP server refuses a working dir that does not exist"
    settings = json.loads((IMAGE / "claude-settings.json").read_text())
    assert settings["enabledMcpjsonServers"] == ["aws-api"]


# --------------------------------------------------------------------------- hooks.json


def _hooks_shape():
    model = botocore.session.get_session().get_service_model("lambda-microvms")
    return model, model.operation_model("CreateMicrovmImage").input_shape.members["hooks"]


def hook_problems(doc: object) -> list[str]:
    """Validate against the botocore model: types, enums, required members, min and max."""
    model, shape = _hooks_shape()
    report = ParamValidator().validate(doc, shape)
    problems = [report.generate_report()] if report.has_errors() else []

    def walk(value: object, sh, path: str) -> None:  # botocore checks neither max nor enum
        if sh.type_name == "structure" and isinstance(value, dict):
            for key, member in sh.members.items():
                if key in value:
                    walk(value[key], member, f"{path}.{key}")
        elif sh.type_name == "string" and sh.enum and value not in sh.enum:
            problems.append(f"{path}: {value!r} is not one of {', '.join(sh.enum)}")
        elif sh.type_name == "integer" and isinstance(value, int):
            hi = sh.metadata.get("max")
            if hi is not None and value > hi:
                problems.append(f"{path}: {value} is above the maximum {hi}")

    walk(doc, shape, "hooks")
    return problems


def test_hooks_json_matches_the_service_model():
    model, shape = _hooks_shape()
    assert shape.name == "Hooks"
    doc = json.loads((IMAGE / "hooks.json").read_text())
    assert hook_problems(doc) == []
    assert doc["port"] == 9000
    image_hooks, vm_hooks = doc["microvmImageHooks"], doc["microvmHooks"]
    # All six enabled, each with an explicit timeout (the documented defaults are 30 s and 1 s).
    for group, names in (
        (image_hooks, ("ready", "validate")),
        (vm_hooks, ("run", "resume", "suspend", "terminate")),
    ):
        for name in names:
            assert group[name] == "ENABLED", name
            assert isinstance(group[f"{name}TimeoutInSeconds"], int), name
    assert set(shape.members) == set(doc)


def test_hook_validator_rejects_out_of_range_and_bad_enum():
    good = json.loads((IMAGE / "hooks.json").read_text())
    too_long = json.loads(json.dumps(good))
    too_long["microvmHooks"]["runTimeoutInSeconds"] = 61
    assert hook_problems(too_long) == [
        "hooks.microvmHooks.runTimeoutInSeconds: 61 is above the maximum 60"
    ]
    bad_enum = json.loads(json.dumps(good))
    bad_enum["microvmImageHooks"]["ready"] = "ON"
    (problem,) = hook_problems(bad_enum)
    assert "ON" in problem and "ENABLED" in problem
    zero = json.loads(json.dumps(good))
    zero["microvmImageHooks"]["readyTimeoutInSeconds"] = 0
    (problem,) = hook_problems(zero)
    assert "readyTimeoutInSeconds" in problem


# --------------------------------------------------------------------------- the app module (pure)


@pytest.fixture(scope="module")
def app_main():
    spec = importlib.util.spec_from_file_location("image_app_main", IMAGE / "app" / "main.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_app_module_imports_without_side_effects():
    code = (
        "import sys, threading, logging; sys.path.insert(0, sys.argv[1]); import main; "
        "print(threading.active_count(), len(logging.getLogger('sandbox').handlers))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(IMAGE / "app")],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.split() == ["1", "0"], "no threads, no servers, no log handlers on import"
    assert out.stderr == ""


def test_config_defaults(app_main):
    cfg = app_main.Config.from_env({})
    assert (cfg.host, cfg.port, cfg.hook_port) == ("0.0.0.0", 8080, 9000)
    assert cfg.break_ready == ""
    hooks = json.loads((IMAGE / "hooks.json").read_text())
    # /suspend must answer inside the platform's timeout, and boot must fit inside /ready's.
    assert cfg.suspend_drain_seconds < hooks["microvmHooks"]["suspendTimeoutInSeconds"]
    assert cfg.init_seconds < hooks["microvmImageHooks"]["readyTimeoutInSeconds"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "http"}, "PORT must be an integer from 0 to 65535, got 'http'"),
        ({"HOOK_PORT": "70000"}, "HOOK_PORT must be an integer from 0 to 65535, got '70000'"),
        ({"PORT": "9000"}, "PORT and HOOK_PORT must differ, both are 9000"),
        ({"APP_INIT_SECONDS": "-1"}, "APP_INIT_SECONDS must be a number from 0 to 3600, got '-1'"),
        (
            {"APP_BREAK_READY": "yes"},
            "APP_BREAK_READY must be one of '4xx', '5xx' or unset, got 'yes'",
        ),
        (
            {"APP_SUSPEND_DRAIN_SECONDS": "90"},
            "APP_SUSPEND_DRAIN_SECONDS must be a number from 0 to 60, got '90'",
        ),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'"),
    ],
)
def test_config_rejects_bad_values(app_main, env, message):
    with pytest.raises(app_main.ConfigError) as err:
        app_main.Config.from_env(env)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", (None, None, "absent", 0)),
        (b"   ", (None, None, "absent", 0)),
        (b'{"microvmId": "microvm-1"}', ("microvm-1", None, "absent", 0)),
        (
            b'{"microvmId": "microvm-1", "runHookPayload": "{\\"tenant\\": \\"t1\\"}"}',
            ("microvm-1", {"tenant": "t1"}, "json", 16),
        ),
        (
            b'{"microvmId": "microvm-1", "runHookPayload": "plain words"}',
            ("microvm-1", "plain words", "text", 11),
        ),
        (b"not json at all", (None, "not json at all", "text", 15)),
        (b'{"tenant": "t1"}', (None, {"tenant": "t1"}, "json", 16)),
        (b'{"microvmId": "", "runHookPayload": null}', (None, None, "absent", 0)),
    ],
)
def test_parse_run_body(app_main, body, expected):
    info = app_main.parse_run_body(body)
    assert (
        info["microvmId"],
        info["payload"],
        info["payloadFormat"],
        info["payloadBytes"],
    ) == expected


def test_parse_run_body_counts_utf8_bytes(app_main):
    payload = "é" * 2048  # 2048 characters, 4096 bytes: the API's limit counts characters
    info = app_main.parse_run_body(
        json.dumps({"microvmId": "m", "runHookPayload": payload}).encode()
    )
    assert info["payloadFormat"] == "text" and info["payloadBytes"] == 4096


class _SnapshotClocks:
    """A guest's clocks across a snapshot: monotonic time stands still while the snapshot
    sleeps (it resumes where the build left it), wall-clock time does not."""

    def __init__(self) -> None:
        self.mono = 50.0
        self.wall = 1_000_000.0

    def module(self):
        import time as real_time

        return types.SimpleNamespace(
            time=lambda: self.wall, monotonic=lambda: self.mono, sleep=real_time.sleep
        )


@pytest.mark.parametrize("hook", ["run", "resume"])
def test_run_and_resume_re_anchor_wall_time_after_a_snapshot(app_main, monkeypatch, hook):
    clocks = _SnapshotClocks()
    monkeypatch.setattr(app_main, "time", clocks.module())
    app = app_main.Application(
        app_main.Config.from_env({"APP_INIT_SECONDS": "0"}), clock=lambda: clocks.mono
    )
    app.initialize()
    assert app.now() == 1_000_000.0
    clocks.wall += 86_400  # restored a day after the build; the monotonic clock did not move
    assert app.now() == 1_000_000.0, "stale until a hook re-anchors it (the hazard)"
    if hook == "run":
        status, _ = app.hook_run(b'{"microvmId": "m-1"}')
    else:
        status, _ = app.hook_resume()
    assert status == 200
    assert app.now() == 1_086_400.0
    assert app.health()["time"] == 1_086_400.0
    clocks.mono += 5
    clocks.wall += 5
    assert app.now() == 1_086_405.0


def test_a_replayed_run_keeps_identity_and_random_stream(app_main):
    """A retried /run for the same VM changes nothing: same instance id, no re-seed."""
    app = app_main.Application(app_main.Config.from_env({"APP_INIT_SECONDS": "0"}))
    _, first = app.hook_run(b'{"microvmId": "m-1", "runHookPayload": "p"}')
    state = app.rng.getstate()
    _, again = app.hook_run(b'{"microvmId": "m-1", "runHookPayload": "p"}')
    assert again == {**first, "replayed": True}
    assert app.rng.getstate() == state
    assert app.counts["run"] == 2
