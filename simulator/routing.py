"""What the simulated counterparts share with the server: the configuration, the
request and response shapes, the HTTP error and the router. The counterparts
(simulator.wxpay, .meituan, .eleme, .oms) import this, never simulator.server,
which imports them."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
