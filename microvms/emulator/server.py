"""The emulator's WSGI application and :class:`EmulatorServer` (threaded werkzeug server).

``EmulatorServer`` runs in a daemon thread on an ephemeral port (``port=0``) and is a context manager::

    with EmulatorServer(build_seconds=0.3, upstreams={8080: "http://127.0.0.1:8000"}) as emu:
        client = boto3.client("lambda-microvms", endpoint_url=emu.url, region_name="us-east-1")
        emu.clock.advance(900)   # jump over an idle policy without sleeping

A background ticker re-evaluates the lifecycle every few milliseconds, so builds finish, MicroVMs
start, idle VMs suspend and lifecycle hooks are called in real time as well as on every request.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import traceback
import uuid

from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from . import admin as admin_api
from . import urls, wire
from .clock import Clock
from .exceptions import (
    EmulatorError,
    InternalServerException,
    MissingAuthenticationToken,
    SerializationException,
    ThrottlingException,
    TooManyRequestsException,
    UnknownOperationException,
    ValidationException,
)
from .models import EmulatorState, Settings
from .proxy import EndpointProxy, endpoint_host
from .responses import MicrovmsResponses

CREDENTIAL_SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/[^/,\s]+/aws4_request")
TICK_SECONDS = 0.02


def signing_region(authorization: str | None) -> str | None:
    """The region of a SigV4 ``Authorization`` header's credential scope (any credentials pass)."""
    if not authorization or not authorization.startswith("AWS4-HMAC-SHA256"):
        return None
    match = CREDENTIAL_SCOPE_RE.search(authorization)
    return match.group(1) if match else None


def presigned_region(credential: str | None) -> str | None:
    """The region of a presigned URL's ``X-Amz-Credential`` (``AKID/date/region/service/aws4_request``)."""
    parts = (credential or "").split("/")
    return parts[2] if len(parts) == 5 and parts[4] == "aws4_request" else None


def read_body(request: Request) -> bytes:
    """The raw request body; a body the client cut short or mis-chunked is a 400, not a 500."""
    try:
        return request.get_data(cache=True)
    except (HTTPException, ValueError, OSError) as exc:
        raise SerializationException("Could not read the request body") from exc


def _json(data, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


def error_response(error: EmulatorError) -> Response:
    status = wire.error_status(error.code, error.status or 400)
    headers = {"X-Amzn-Errortype": error.code, "x-amzn-RequestId": str(uuid.uuid4())}
    headers.update(error.headers)
    if isinstance(error, ThrottlingException | TooManyRequestsException):
        headers.setdefault("Retry-After", "1")
    return Response(
        json.dumps(error.body()), status=status, content_type="application/json", headers=headers
    )


class EmulatorApp:
    """WSGI callable: control plane, admin API and endpoint proxy on one port."""

    def __init__(self, state: EmulatorState):
        self.state = state
        self.responses = MicrovmsResponses(state)
        self.admin_api = admin_api.AdminApi(state)
        self.proxy = EndpointProxy(state)

    def __call__(self, environ, start_response):
        host = endpoint_host(environ.get("HTTP_HOST"))
        if host is not None:
            return self.proxy.handle(environ, start_response, host)
        request = Request(environ)
        raw_path = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.path
        if raw_path.startswith(urls.ADMIN_PREFIX):
            response = self.admin(request, raw_path.split("?", 1)[0])
        else:
            response = self.control_plane(request, raw_path)
        return response(environ, start_response)

    # ------------------------------------------------------------------ control plane
    def control_plane(self, request: Request, raw_path: str) -> Response:
        state = self.state
        try:
            route = urls.control_plane_route(request.method, raw_path)
            if route is None:
                raise UnknownOperationException(
                    f"Unknown operation: {request.method} {raw_path.split('?', 1)[0]}"
                )
            service, operation, labels = route
            state.count(operation)
            region = signing_region(request.headers.get("Authorization")) or presigned_region(
                request.args.get("X-Amz-Credential")
            )
            if region is None:
                raise MissingAuthenticationToken("Missing Authentication Token")
            latency = state.faults.latency_ms
            if latency:
                time.sleep(latency / 1000.0)
            if state.should_throttle():
                if service == wire.CORE_SERVICE:
                    raise TooManyRequestsException("Rate exceeded")
                raise ThrottlingException("Rate exceeded")
            query = {key: request.args.getlist(key) for key in request.args}
            params = wire.parse_request(
                operation, labels, query, dict(request.headers), read_body(request), service
            )
            params = wire.validate_input(operation, params, service)
            with state.lock:
                state.tick()
                data = self.responses.dispatch(operation, region, params)
            status, headers, body = wire.serialize_output(operation, data, service)
            headers["x-amzn-RequestId"] = str(uuid.uuid4())
            response = Response(body, status=status, headers=headers)
            if not body:
                response.headers.pop("Content-Type", None)
            return response
        except EmulatorError as error:
            return error_response(error)
        except Exception as exc:  # pragma: no cover - a bug in the emulator
            traceback.print_exc(file=sys.stderr)
            return error_response(InternalServerException(f"emulator error: {exc}"))

    # ------------------------------------------------------------------ admin API
    def admin(self, request: Request, path: str) -> Response:
        handler = urls.admin_paths.get((request.method, path))
        try:
            if handler is None:
                raise UnknownOperationException(f"unknown admin call {request.method} {path}")
            body = admin_api.parse_body(read_body(request))
            return _json(getattr(self.admin_api, handler)(body))
        except EmulatorError as error:
            return error_response(error)


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log every request (``log_requests=True`` restores it)."""

    def log_request(self, code="-", size="-"):
        pass


class EmulatorServer:
    """A running emulator: threaded werkzeug server plus the lifecycle ticker.

    ``upstreams`` maps a GUEST port to a local base URL: endpoint traffic for guest port N goes to
    ``upstreams[N]``; lifecycle hooks go to ``upstreams[image.hooks.port]``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str = "123456789012",
        build_seconds: float = 1.0,
        run_seconds: float = 0.5,
        upstreams: dict[int, str] | None = None,
        s3_endpoint: str | None = None,
        iam_endpoint: str | None = None,
        clock: Clock | None = None,
        *,
        transition_seconds: float = 0.2,
        delete_seconds: float = 0.5,
        connector_seconds: float = 0.5,
        memory_quota_mib: int | None = None,
        throttle_rate: float = 0.0,
        latency_ms: float = 0.0,
        fail_next_builds: list[str] | None = None,
        hook_retry_interval: float = 0.1,
        log_requests: bool = False,
        start: bool = True,
    ) -> None:
        settings = Settings(
            account_id=account_id,
            build_seconds=build_seconds,
            run_seconds=run_seconds,
            transition_seconds=transition_seconds,
            delete_seconds=delete_seconds,
            connector_seconds=connector_seconds,
            upstreams={int(k): v.rstrip("/") for k, v in (upstreams or {}).items()},
            s3_endpoint=s3_endpoint,
            iam_endpoint=iam_endpoint,
            memory_quota_mib=memory_quota_mib,
            hook_retry_interval=hook_retry_interval,
        )
        self.state = EmulatorState(settings, clock or Clock())
        try:  # the admin API's limits hold for start-up faults too
            faults = admin_api.validate_faults(
                {
                    "throttleRate": throttle_rate,
                    "latencyMs": latency_ms,
                    "failNextBuilds": list(fail_next_builds or []),
                    "memoryQuotaMiB": memory_quota_mib,
                }
            )
        except ValidationException as exc:
            raise ValueError(exc.message) from exc
        admin_api.apply_faults(self.state, faults)
        self.state.keep_as_baseline()
        self.state.clock.on_advance(self.state.tick)
        self.app = EmulatorApp(self.state)
        handler = WSGIRequestHandler if log_requests else _QuietHandler
        self._server = make_server(host, port, self.app, threaded=True, request_handler=handler)
        self.host = host
        self.port = self._server.server_port
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._serving = False
        self._closed = False
        if start:
            self.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def clock(self) -> Clock:
        return self.state.clock

    @property
    def settings(self) -> Settings:
        return self.state.settings

    def start(self) -> EmulatorServer:
        if self._threads:
            return self
        serve = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        ticker = threading.Thread(target=self._tick_forever, daemon=True)
        self._threads = [serve, ticker]
        self._serving = True
        for thread in self._threads:
            thread.start()
        return self

    def _tick_forever(self) -> None:
        while not self._stopped.wait(TICK_SECONDS):
            try:
                self.state.tick()
            except Exception:  # pragma: no cover - keep ticking whatever a bug does
                traceback.print_exc(file=sys.stderr)

    def serve_forever(self) -> None:
        """Serve in the calling thread (the CLI); the ticker still runs in the background."""
        ticker = threading.Thread(target=self._tick_forever, daemon=True)
        self._threads = [ticker]
        ticker.start()
        self._serving = True
        try:
            self._server.serve_forever(poll_interval=0.1)
        finally:
            self._stopped.set()

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopped.set()
        if self._serving:
            self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads = []

    def reset(self) -> None:
        self.state.reset()

    def calls(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.calls)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
