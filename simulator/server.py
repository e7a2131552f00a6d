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

import logging
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simulator.delivery import CallLog, PushDispatcher
from simulator.faults import INBOUND_MODES, FaultRegistry, FaultSpecError, fault_from_dict
from simulator.eleme import ElemeSimulator
from simulator.history import history_load
from simulator.meituan import MeituanSimulator
from simulator.oms import OmsSimulator
from simulator.routing import Router, SimConfig, SimHttpError, SimRequest, SimResponse
from simulator.wxpay import WxPaySimulator

logger = logging.getLogger("simulator")

CONTROL_PREFIX = "/_sim/"


# --- The server ---------------------------------------------------------------------


def _counterpart_classes() -> list[type]:
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
