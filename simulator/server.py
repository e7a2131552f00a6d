"""The simulator's HTTP plumbing: one ThreadingHTTPServer, a small router and the
``/_sim/`` control API (the call log and push delivery live in simulator.delivery).

Each simulated counterpart (simulator.wxpay the payment provider,
simulator.meituan and simulator.eleme the delivery platforms, simulator.oms the
e-voucher OMS) is one module with a class that registers its routes on the router; the
server owns everything they share. No Django here: this runs as a separate
process (``python -m simulator``) or in-process for tests
(``simulator.testing.running_simulator``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simulator.delivery import CallLog, PushDispatcher
from simulator.faults import INBOUND_MODES, FaultRegistry, FaultSpecError, fault_from_dict
from simulator.history import history_load

logger = logging.getLogger("simulator")

CONTROL_PREFIX = "/_sim/"


# --- Configuration -----------------------------------------------------------


def _float_tuple(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class SimConfig:
    wxpay_api_key: str = "sim-wxpay-key"
    wxpay_mchid: str = "1900000001"
    # The OMS's app credentials (simulator.oms): requests are signed with the secret.
    oms_app_key: str = "sim-oms-app"
    oms_app_secret: str = "sim-oms-secret"
    # Seconds between notify attempts; the last value repeats. A real provider
    # waits 15 s, 15 s, 30 s, 3 min, ... ; the demo does not need to be that patient.
    notify_backoff: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
    notify_max_attempts: int = 15
    notify_timeout: float = 5.0
    # Seconds from a refund request to its REFUND.SUCCESS notify.
    refund_delay: float = 1.0
    verbose: bool = False
    # Shops registered at start and again after every reset: the bodies of
    # POST /_sim/meituan/shops and POST /_sim/eleme/shops.
    meituan_shops: tuple[dict, ...] = ()
    eleme_shops: tuple[dict, ...] = ()
    # Orders the platforms already have at start and after every reset (simulator.history).
    meituan_orders: tuple[dict, ...] = ()
    eleme_orders: tuple[dict, ...] = ()
    # Seconds between the order generator's checks (rate_per_minute per shop).
    generator_tick: float = 0.1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> SimConfig:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if "SIM_WXPAY_API_KEY" in environ:
            values["wxpay_api_key"] = environ["SIM_WXPAY_API_KEY"]
        if "SIM_WXPAY_MCHID" in environ:
            values["wxpay_mchid"] = environ["SIM_WXPAY_MCHID"]
        if "SIM_OMS_APP_KEY" in environ:
            values["oms_app_key"] = environ["SIM_OMS_APP_KEY"]
        if "SIM_OMS_APP_SECRET" in environ:
            values["oms_app_secret"] = environ["SIM_OMS_APP_SECRET"]
        if "SIM_NOTIFY_BACKOFF" in environ:
            values["notify_backoff"] = _float_tuple(environ["SIM_NOTIFY_BACKOFF"])
        if "SIM_NOTIFY_MAX_ATTEMPTS" in environ:
            values["notify_max_attempts"] = int(environ["SIM_NOTIFY_MAX_ATTEMPTS"])
        if "SIM_NOTIFY_TIMEOUT" in environ:
            values["notify_timeout"] = float(environ["SIM_NOTIFY_TIMEOUT"])
        if "SIM_REFUND_DELAY" in environ:
            values["refund_delay"] = float(environ["SIM_REFUND_DELAY"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# --- Requests, responses, routing ----------------------------------------------


class SimHttpError(Exception):
    """Raised by a route handler to answer ``status`` with a JSON ``payload``."""

    def __init__(self, status: int, payload: dict) -> None:
        super().__init__(payload)
        self.status = status
        self.payload = payload


@dataclass
class SimRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self, *, error: Callable[[str], SimHttpError] | None = None) -> Any:
        try:
            return json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            message = f"body is not valid JSON: {exc}"
            raise (error(message) if error else SimHttpError(400, {"code": "BAD_REQUEST", "message": message}))


@dataclass
class SimResponse:
    status: int = 200
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.payload, bytes):
            return self.payload, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.payload, str):
            return self.payload.encode("utf-8"), "text/plain; charset=utf-8"
        return json.dumps(self.payload, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8"


Handler = Callable[[SimRequest], SimResponse]


class Router:
    """Method + path pattern ("/v3/x/{name}") -> handler."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}"))
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        path_matched = False
        for route_method, regex, handler in self._routes:
            match = regex.match(path)
            if match is None:
                continue
            path_matched = True
            if route_method == method:
                return handler, match.groupdict()
        if path_matched:
            raise SimHttpError(405, {"code": "METHOD_NOT_ALLOWED", "message": f"{method} not allowed on {path}"})
        raise SimHttpError(404, {"code": "NOT_FOUND", "message": f"no route for {method} {path}"})


# --- The server ---------------------------------------------------------------------


def _counterpart_classes() -> list[type]:
    from simulator.eleme import ElemeSimulator
    from simulator.meituan import MeituanSimulator
    from simulator.oms import OmsSimulator
    from simulator.wxpay import WxPaySimulator

    return [WxPaySimulator, MeituanSimulator, ElemeSimulator, OmsSimulator]


class SimulatorServer(ThreadingHTTPServer):
    # Handler threads are joined on close (no daemon threads left behind).
    daemon_threads = False
    block_on_close = True
    # socketserver's default listen backlog is 5: a relay or a load test with more
    # concurrent connections than that would see resets, which the real platforms never cause.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.faults = FaultRegistry()
        self.calls = CallLog()
        self.dispatcher = PushDispatcher(config=self.config, faults=self.faults, calls=self.calls)
        self.closing = threading.Event()
        self.router = Router()
        self._register_control_routes()
        self.counterparts = [
            cls(config=self.config, dispatcher=self.dispatcher) for cls in _counterpart_classes()
        ]
        for counterpart in self.counterparts:
            counterpart.register(self.router)
        try:
            history_load(self)
            super().__init__(address, SimRequestHandler)
        except BaseException:  # e.g. the port is taken: stop what the counterparts started
            for counterpart in self.counterparts:
                getattr(counterpart, "close", lambda: None)()
            self.dispatcher.close()
            raise

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def route_of(self, request: SimRequest) -> str:
        """The path faults and the call log match against: the request path, or a
        counterpart's finer name for it (Ele.me: "/api/v1/" + the envelope's action)."""
        for counterpart in self.counterparts:
            route = getattr(counterpart, "route_of", lambda request: None)(request)
            if route:
                return route
        return request.path

    def counterpart(self, name: str) -> Any:
        return next(c for c in self.counterparts if c.name == name)

    def reset(self) -> None:
        for counterpart in self.counterparts:  # stop the order generators before the pushes
            getattr(counterpart, "close", lambda: None)()
        self.dispatcher.reset()
        self.faults.clear()
        self.calls.clear()
        for counterpart in self.counterparts:
            counterpart.reset()
        history_load(self)

    def server_close(self) -> None:
        self.closing.set()
        for counterpart in self.counterparts:
            getattr(counterpart, "close", lambda: None)()
        self.dispatcher.close()
        super().server_close()

    # -- control API (never logged, never faulted)

    def _register_control_routes(self) -> None:
        self.router.add("POST", "/_sim/reset", self._control_reset)
        self.router.add("GET", "/_sim/calls", self._control_calls)
        self.router.add("GET", "/_sim/faults", self._control_faults_list)
        self.router.add("POST", "/_sim/faults", self._control_faults_arm)
        self.router.add("GET", "/_sim/health", lambda request: SimResponse(200, {"status": "ok"}))

    def _control_reset(self, request: SimRequest) -> SimResponse:
        self.reset()
        return SimResponse(200, {"reset": True})

    def _control_calls(self, request: SimRequest) -> SimResponse:
        calls = self.calls.list(path_prefix=request.query.get("path_prefix", ""),
                                direction=request.query.get("direction", ""))
        return SimResponse(200, {"calls": calls})

    def _control_faults_list(self, request: SimRequest) -> SimResponse:
        return SimResponse(200, {"faults": self.faults.list()})

    def _control_faults_arm(self, request: SimRequest) -> SimResponse:
        try:
            fault = fault_from_dict(request.json())
        except FaultSpecError as exc:
            raise SimHttpError(400, {"code": "BAD_REQUEST", "message": str(exc)}) from exc
        self.faults.arm(fault)
        return SimResponse(201, {"fault": fault.to_dict()})


class SimRequestHandler(BaseHTTPRequestHandler):
    server: SimulatorServer
    server_version = "OrderCenterSimulator/1.0"
    # HTTP/1.0: one request per connection, so no idle keep-alive connection
    # holds a handler thread open when the server shuts down.
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = SimRequest(
            method=self.command, path=split.path, query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        is_control = request.path.startswith(CONTROL_PREFIX)
        route = "" if is_control else self.server.route_of(request)
        fault = None if is_control else self.server.faults.take(path=route, modes=INBOUND_MODES)
        if fault is not None and fault.mode == "error500":
            response = SimResponse(500, {"code": "SYSTEM_ERROR", "message": "simulated fault: error500"})
        else:
            if fault is not None and fault.mode == "slow":
                self.server.closing.wait(fault.delay)
            response = self._dispatch(request)
        if not is_control:
            self.server.calls.record_in(request=request, status=response.status, fault=fault.mode if fault else "",
                                        route=route)
        self._send(response)

    def _dispatch(self, request: SimRequest) -> SimResponse:
        try:
            handler, params = self.server.router.resolve(request.method, request.path)
            request.params = params
            return handler(request)
        except SimHttpError as exc:
            return SimResponse(exc.status, exc.payload)
        except Exception:  # a simulator bug: answer 500 and say why
            logger.exception("simulator handler failed")
            return SimResponse(500, {"code": "SIMULATOR_BUG", "message": traceback.format_exc(limit=3)})

    def _send(self, response: SimResponse) -> None:
        body, content_type = response.encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in response.headers.items():
                if name.lower() != "content-type":
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired during a "slow" fault)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.config.verbose:
            super().log_message(format, *args)


def build_server(*, host: str = "127.0.0.1", port: int = 8100, config: SimConfig | None = None) -> SimulatorServer:
    return SimulatorServer((host, port), config)
