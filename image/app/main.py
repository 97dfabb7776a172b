"""The MicroVM workload's own service: a health endpoint and the six lifecycle hooks.

The image is a Claude Code agent sandbox; operators work in it through ``microvms shell``. This
small standard-library service is what the platform talks to:

* on ``PORT`` (default 8080), the app: ``GET /health`` (version, uptime, instance id, whether
  ``/run`` has happened), ``GET /`` (a short index) and ``GET /work?ms=N`` (sleeps N ms and
  answers; a stand-in for real work, used by ``/validate`` and by the drain test). Nothing here
  executes code or reads request bodies as commands.
* on ``HOOK_PORT`` (default 9000), from its own server thread, the hooks
  ``POST /aws/lambda-microvms/runtime/v1/{ready,validate,run,resume,suspend,terminate}``.

Snapshot safety: the build snapshots this process after ``/ready`` says 200, so every MicroVM
starts from the same memory. Nothing random made before ``/run`` may identify a VM: ``/run``
creates the instance id from the kernel CSPRNG, re-seeds every random generator the app uses
(the ``random`` module and the app's own ``random.Random``) and re-anchors wall-clock time;
``/resume`` re-seeds and re-anchors again. Payloads given to ``/run`` are never logged (the API marks
``runHookPayload`` sensitive), nor are request headers (they carry auth tokens).

Environment (all optional): ``HOST`` (0.0.0.0), ``PORT`` (8080), ``HOOK_PORT`` (9000; 0 picks a
free port), ``APP_INIT_SECONDS`` (0.5: simulated boot work before ``/ready`` turns 200),
``APP_SUSPEND_DRAIN_SECONDS`` (25: must stay below ``suspendTimeoutInSeconds`` in
``image/hooks.json``), ``APP_LOG_FLUSH_SECONDS`` (2: how often buffered logs are written),
``LOG_LEVEL`` (INFO). Test knob: ``APP_BREAK_READY`` = ``4xx`` or ``5xx`` makes ``/ready`` answer
400 or 500, so a build can be seen to fail; leave it unset in real images.

Importing this module has no side effects; ``python3 main.py`` runs the service.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import logging.handlers
import os
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

VERSION = "1.0.0"
SERVICE_NAME = "claude-code-sandbox"
HOOK_PREFIX = "/aws/lambda-microvms/runtime/v1/"
HOOKS = ("ready", "validate", "run", "resume", "suspend", "terminate")
#: The API caps runHookPayload at 4096 characters; bodies far beyond that are refused unread.
MAX_BODY_BYTES = 64 * 1024
MAX_WORK_MS = 10_000
BREAK_READY_CHOICES = ("", "4xx", "5xx")

logger = logging.getLogger("sandbox")


# --------------------------------------------------------------------------- configuration


class ConfigError(ValueError):
    """A bad environment value; the message names the variable and the allowed values."""


def _int_env(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer from {lo} to {hi}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be an integer from {lo} to {hi}, got {raw!r}")
    return value


def _float_env(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number from {lo:g} to {hi:g}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be a number from {lo:g} to {hi:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"
    port: int = 8080
    hook_port: int = 9000
    init_seconds: float = 0.5
    suspend_drain_seconds: float = 25.0
    log_flush_seconds: float = 2.0
    break_ready: str = ""
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read and validate the environment once; raise ``ConfigError`` on a bad value."""
        env = os.environ if env is None else env
        port = _int_env(env, "PORT", 8080, 0, 65535)
        hook_port = _int_env(env, "HOOK_PORT", 9000, 0, 65535)
        if port and port == hook_port:
            raise ConfigError(f"PORT and HOOK_PORT must differ, both are {port}")
        break_ready = env.get("APP_BREAK_READY", "")
        if break_ready not in BREAK_READY_CHOICES:
            raise ConfigError(
                f"APP_BREAK_READY must be one of '4xx', '5xx' or unset, got {break_ready!r}"
            )
        log_level = env.get("LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(
                f"LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got {log_level!r}"
            )
        return cls(
            host=env.get("HOST", "") or "0.0.0.0",
            port=port,
            hook_port=hook_port,
            init_seconds=_float_env(env, "APP_INIT_SECONDS", 0.5, 0, 3600),
            suspend_drain_seconds=_float_env(env, "APP_SUSPEND_DRAIN_SECONDS", 25.0, 0, 60),
            log_flush_seconds=_float_env(env, "APP_LOG_FLUSH_SECONDS", 2.0, 0.05, 86400),
            break_ready=break_ready,
            log_level=log_level,
        )


# --------------------------------------------------------------------------- logging


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, sort_keys=True)


class LogBuffer(logging.handlers.MemoryHandler):
    """Buffers records and writes them on WARNING, when full, on a timer, or on ``flush()``.

    ``/ready`` flushes before the snapshot (so build-time lines are not replayed by every VM),
    and ``/suspend`` and ``/terminate`` flush so nothing is lost when the VM stops.
    """

    def __init__(self, stream: Any) -> None:
        target = logging.StreamHandler(stream)
        target.setFormatter(_JsonFormatter())
        super().__init__(capacity=200, flushLevel=logging.WARNING, target=target)


def _log(level: int, msg: str, **fields: Any) -> None:
    logger.log(level, msg, extra={"fields": fields})


# --------------------------------------------------------------------------- helpers


def _rng_fingerprint(state: object) -> str:
    """Short digest of a generator's state: equal digests mean equal future random streams."""
    return hashlib.sha256(repr(state).encode()).hexdigest()[:16]


def parse_run_body(body: bytes) -> dict[str, Any]:
    """Interpret a ``/run`` body as the platform sends it, tolerating what it might send instead.

    The documented body is ``{"microvmId": ..., "runHookPayload": "<string>"}``; the payload is
    an opaque string of at most 4096 characters that may itself hold JSON. An empty body, a
    non-JSON body (taken as the payload itself) and a JSON body of another shape are accepted.
    Returns ``microvmId``, ``payload`` (parsed JSON or text or None), ``payloadFormat``
    (``json``/``text``/``absent``) and ``payloadBytes``.
    """
    microvm_id: str | None = None
    raw: str | None
    if not body.strip():
        raw = None
    else:
        text = body.decode("utf-8", errors="replace")
        try:
            doc = json.loads(text)
        except ValueError:
            doc, raw = None, text
        else:
            if isinstance(doc, dict) and ("microvmId" in doc or "runHookPayload" in doc):
                mid = doc.get("microvmId")
                microvm_id = mid if isinstance(mid, str) and mid else None
                inner = doc.get("runHookPayload")
                if inner is None:
                    raw = None
                elif isinstance(inner, str):
                    raw = inner
                else:
                    raw = json.dumps(inner)
            else:
                raw = text
    if raw is None:
        return {
            "microvmId": microvm_id,
            "payload": None,
            "payloadFormat": "absent",
            "payloadBytes": 0,
        }
    size = len(raw.encode("utf-8"))
    try:
        return {
            "microvmId": microvm_id,
            "payload": json.loads(raw),
            "payloadFormat": "json",
            "payloadBytes": size,
        }
    except ValueError:
        return {
            "microvmId": microvm_id,
            "payload": raw,
            "payloadFormat": "text",
            "payloadBytes": size,
        }


# --------------------------------------------------------------------------- application state


class Application:
    """State shared by the app server and the hook server; every method is thread-safe."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._initialized = threading.Event()
        self._started = clock()
        self._inflight = 0
        self._work_served = 0
        # Per-VM state: empty until /run. The app's generator exists from build time (it is what
        # would otherwise be shared by every VM from the snapshot); /run re-seeds it.
        self.rng = random.Random()
        self.instance_id: str | None = None
        self.microvm_id: str | None = None
        self.run_payload: Any = None
        self.run_info: dict[str, Any] = {}
        self.counts = dict.fromkeys(HOOKS, 0)
        self._ran_at: float | None = None
        self._resumed_at: float | None = None
        self._wall_offset = time.time() - clock()
        self.terminated = False
        self.app_server: ThreadingHTTPServer | None = None
        self.hook_server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- lifecycle -----------------------------------------------------------------------------

    def initialize(self) -> None:
        """Boot work that belongs in the snapshot: warm caches, pre-render, build tables.

        The delay (``APP_INIT_SECONDS``) stands for real boot time so ``/ready`` is seen to
        answer 503 first. Runs once; later calls return at once.
        """
        if self._initialized.is_set():
            return
        deadline = self._clock() + self.config.init_seconds
        json.dumps(self.health())  # warm the code paths a request takes
        while self._clock() < deadline and not self._stop.is_set():
            time.sleep(min(0.05, max(0.0, deadline - self._clock())))
        self._initialized.set()
        _log(logging.INFO, "initialized", version=VERSION)

    @property
    def initialized(self) -> bool:
        return self._initialized.is_set()

    def reseed(self) -> None:
        """Fresh kernel entropy into every random generator the app uses."""
        random.seed(int.from_bytes(os.urandom(32), "big"))
        self.rng.seed(int.from_bytes(os.urandom(32), "big"))

    def rng_fingerprints(self) -> dict[str, str]:
        return {
            "app": _rng_fingerprint(self.rng.getstate()),
            "module": _rng_fingerprint(random.getstate()),
        }

    def now(self) -> float:
        """Wall-clock seconds, derived from the monotonic clock and the offset /resume refreshes."""
        return self._wall_offset + self._clock()

    # -- hooks (each idempotent and quick) -----------------------------------------------------

    def hook_ready(self) -> tuple[int, dict[str, Any]]:
        self._count("ready")
        if self.config.break_ready == "4xx":
            return 400, {"ready": False, "error": "APP_BREAK_READY=4xx (test knob) is set"}
        if self.config.break_ready == "5xx":
            return 500, {"ready": False, "error": "APP_BREAK_READY=5xx (test knob) is set"}
        if not self.initialized:
            return 503, {"ready": False, "reason": "initializing"}
        flush_logs()
        return 200, {"ready": True, "version": VERSION}

    def hook_validate(self) -> tuple[int, dict[str, Any]]:
        """Send one representative request through the app port; 200 only if it works."""
        self._count("validate")
        if not self.initialized or self.app_server is None:
            return 503, {"valid": False, "reason": "initializing"}
        host = self.config.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        port = self.app_server.server_address[1]
        url = f"http://{host}:{port}/work?ms=1"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        try:
            with opener.open(url, timeout=5) as resp:
                doc = json.loads(resp.read())
                status = resp.status
        except urllib.error.HTTPError as exc:
            return 500, {"valid": False, "reason": f"GET /work answered {exc.code}"}
        except (OSError, ValueError) as exc:
            return 503, {"valid": False, "reason": f"app not answering yet: {exc}"}
        if status != 200 or doc.get("version") != VERSION:
            return 500, {"valid": False, "reason": f"unexpected answer from GET /work: {doc}"}
        return 200, {"valid": True, "version": VERSION}

    def hook_run(self, body: bytes) -> tuple[int, dict[str, Any]]:
        info = parse_run_body(body)
        with self._lock:
            self.counts["run"] += 1
            replay = self.instance_id is not None and info["microvmId"] == self.microvm_id
            if not replay:
                self.reseed()
                # Restored from a snapshot that may be days old: the monotonic clock resumes
                # where the build left it, so re-anchor wall time as /resume does.
                self._wall_offset = time.time() - self._clock()
                self.instance_id = str(uuid.UUID(bytes=os.urandom(16), version=4))
                self.microvm_id = info["microvmId"]
                self.run_payload = info["payload"]
                self.run_info = {k: info[k] for k in ("payloadFormat", "payloadBytes")}
                self._ran_at = self._clock()
            answer = {
                "instanceId": self.instance_id,
                "microvmId": self.microvm_id,
                "replayed": replay,
                **self.run_info,
            }
        _log(
            logging.INFO,
            "run",
            microvmId=self.microvm_id,
            instanceId=self.instance_id,
            replayed=replay,
            **self.run_info,
        )
        return 200, answer

    def hook_resume(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.counts["resume"] += 1
            self.reseed()
            # The VM may have slept for hours: re-anchor wall time and the resume timestamp.
            self._wall_offset = time.time() - self._clock()
            self._resumed_at = self._clock()
        _log(logging.INFO, "resume", instanceId=self.instance_id)
        return 200, {"resumed": True, "instanceId": self.instance_id}

    def hook_suspend(self) -> tuple[int, dict[str, Any]]:
        """Wait (up to ``APP_SUSPEND_DRAIN_SECONDS``) for in-flight requests, then answer 200."""
        self._count("suspend")
        deadline = self._clock() + self.config.suspend_drain_seconds
        with self._idle:
            at_start = self._inflight
            while self._inflight and self._clock() < deadline:
                self._idle.wait(timeout=min(0.05, max(0.0, deadline - self._clock())))
            left = self._inflight
        if left:
            _log(logging.WARNING, "suspend: in-flight work did not drain in time", inflight=left)
        else:
            _log(logging.INFO, "suspend: drained")
        flush_logs()
        return 200, {"drained": left == 0, "inflight": left, "inflightAtStart": at_start}

    def hook_terminate(self) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.counts["terminate"] += 1
            self.terminated = True
        _log(logging.INFO, "terminate", instanceId=self.instance_id)
        flush_logs()
        return 200, {"terminated": True}

    def _count(self, hook: str) -> None:
        with self._lock:
            self.counts[hook] += 1

    # -- app endpoints ------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            return {
                "status": "ok",
                "service": SERVICE_NAME,
                "version": VERSION,
                "uptimeSeconds": round(now - self._started, 3),
                "initialized": self.initialized,
                "instanceId": self.instance_id,
                "microvmId": self.microvm_id,
                "ran": self.instance_id is not None,
                "secondsSinceRun": None if self._ran_at is None else round(now - self._ran_at, 3),
                "hookCalls": dict(self.counts),
                "inflight": self._inflight,
                "workServed": self._work_served,
                "rngFingerprint": self.rng_fingerprints(),
                "model": os.environ.get("ANTHROPIC_MODEL"),
                "time": round(self.now(), 3),
            }

    def work(self, ms: int) -> dict[str, Any]:
        """Sleep ``ms`` milliseconds and answer: a stand-in for a request that takes time."""
        time.sleep(ms / 1000)
        with self._lock:
            self._work_served += 1
            request_id = (
                f"{self.rng.getrandbits(64):016x}"  # the app's generator, re-seeded by /run
            )
        return {
            "slept_ms": ms,
            "version": VERSION,
            "instanceId": self.instance_id,
            "requestId": request_id,
        }

    def track(self) -> _Inflight:
        return _Inflight(self)

    # -- servers ------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind both servers, serve each from its own thread, and boot in the background."""
        self.app_server = _Server((self.config.host, self.config.port), _AppHandler, self)
        self.hook_server = _Server((self.config.host, self.config.hook_port), _HookHandler, self)
        for name, srv in (("app-server", self.app_server), ("hook-server", self.hook_server)):
            t = threading.Thread(target=srv.serve_forever, args=(0.1,), name=name, daemon=True)
            t.start()
            self._threads.append(t)
        if not self.initialized:
            t = threading.Thread(target=self.initialize, name="init", daemon=True)
            t.start()
            self._threads.append(t)
        flusher = threading.Thread(target=self._flush_loop, name="log-flush", daemon=True)
        flusher.start()
        self._threads.append(flusher)

    def urls(self) -> tuple[str, str]:
        assert self.app_server and self.hook_server
        host = self.config.host
        return (
            f"http://{host}:{self.app_server.server_address[1]}",
            f"http://{host}:{self.hook_server.server_address[1]}",
        )

    def wait(self, timeout: float | None = None) -> None:
        self._stop.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        for srv in (self.app_server, self.hook_server):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        flush_logs()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.config.log_flush_seconds):
            flush_logs()


class _Inflight:
    def __init__(self, app: Application) -> None:
        self.app = app

    def __enter__(self) -> None:
        with self.app._idle:
            self.app._inflight += 1

    def __exit__(self, *exc: object) -> None:
        with self.app._idle:
            self.app._inflight -= 1
            self.app._idle.notify_all()


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, app: Application) -> None:
        self.app = app
        super().__init__(address, handler)


class _JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"{SERVICE_NAME}/{VERSION}"
    sys_version = ""
    server: _Server

    @property
    def app(self) -> Application:
        return self.server.app

    def send_json(
        self, status: int, doc: Mapping[str, Any], headers: Mapping[str, str] = {}
    ) -> None:  # noqa: B006
        payload = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def read_body(self) -> bytes | None:
        """The request body, or None after answering 413/400 for a bad one."""
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            self.send_json(400, {"error": "Content-Length must be an integer"})
            return None
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self.send_json(413, {"error": f"body larger than {MAX_BODY_BYTES} bytes"})
            return None
        return self.rfile.read(length) if length > 0 else b""

    def not_found(self, path: str) -> None:
        self.send_json(404, {"error": "not found", "path": path})

    def method_not_allowed(self, allowed: str) -> None:
        self.send_json(405, {"error": "method not allowed", "allowed": allowed}, {"Allow": allowed})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Only the request line's method and path reach the log: never headers or bodies.
        pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urlsplit(self.path).path
        _log(logging.DEBUG, "request", method=self.command, path=path, status=int(code))

    def do_PUT(self) -> None:  # noqa: N802
        self.dispatch()

    do_DELETE = do_PATCH = do_PUT

    def do_GET(self) -> None:  # noqa: N802
        self.dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self.dispatch()

    def dispatch(self) -> None:  # overridden
        raise NotImplementedError


class _AppHandler(_JsonHandler):
    def dispatch(self) -> None:
        parts = urlsplit(self.path)
        routes = {"/": self._index, "/health": self._health, "/work": self._work}
        handler = routes.get(parts.path)
        if handler is None:
            self.not_found(parts.path)
        elif self.command != "GET":
            self.method_not_allowed("GET")
        elif handler == self._health:
            handler({})  # a probe, not work: /suspend does not wait for it
        else:
            with self.app.track():
                handler(parse_qs(parts.query))

    def _index(self, _query: dict[str, list[str]]) -> None:
        self.send_json(
            200,
            {"service": SERVICE_NAME, "version": VERSION, "endpoints": ["/health", "/work?ms=N"]},
        )

    def _health(self, _query: dict[str, list[str]]) -> None:
        self.send_json(200, self.app.health())

    def _work(self, query: dict[str, list[str]]) -> None:
        raw = (query.get("ms") or ["0"])[-1]
        try:
            ms = int(raw)
        except ValueError:
            ms = -1
        if not 0 <= ms <= MAX_WORK_MS:
            self.send_json(
                400, {"error": f"ms must be an integer from 0 to {MAX_WORK_MS}, got {raw!r}"}
            )
            return
        self.send_json(200, self.app.work(ms))


class _HookHandler(_JsonHandler):
    def dispatch(self) -> None:
        path = urlsplit(self.path).path
        hook = path[len(HOOK_PREFIX) :] if path.startswith(HOOK_PREFIX) else ""
        if hook not in HOOKS:
            self.not_found(path)
            return
        if self.command != "POST":
            self.method_not_allowed("POST")
            return
        body = self.read_body()
        if body is None:
            return
        app = self.app
        try:
            if hook == "run":
                status, doc = app.hook_run(body)
            else:
                status, doc = getattr(app, f"hook_{hook}")()
        except Exception as exc:  # a hook must answer, never hang or drop the connection
            logger.exception("hook %s failed", hook)
            status, doc = 500, {"error": f"{type(exc).__name__}: {exc}"}
        self.send_json(status, {"hook": hook, **doc})


# --------------------------------------------------------------------------- entry point


def flush_logs() -> None:
    for handler in logging.getLogger().handlers + logger.handlers:
        handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def configure_logging(level: str, stream: Any = None) -> None:
    buffer = LogBuffer(sys.stderr if stream is None else stream)
    logger.handlers[:] = [buffer]
    logger.setLevel(level)
    logger.propagate = False


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    try:
        config = Config.from_env(env)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level)
    app = Application(config)
    try:
        app.start()
    except OSError as exc:
        print(f"error: cannot listen on {config.host}: {exc}", file=sys.stderr)
        return 1

    def _on_signal(signum: int, _frame: object) -> None:
        _log(logging.INFO, "signal, stopping", signal=signum)
        app._stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    app_url, hook_url = app.urls()
    print(f"listening app={app_url} hooks={hook_url}", flush=True)
    app.wait()
    app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
