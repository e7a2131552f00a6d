"""Run the simulator in-process on a free port, for tests::

    with running_simulator(notify_backoff=(0.05, 0.1)) as sim:
        requests.post(f"{sim.base_url}/_sim/wxpay/pay", json={...})

The context value is the ``SimulatorServer`` (``.base_url``, ``.calls``,
``.faults``, ``.config``); on exit the server stops, its handler threads, push
threads and order-generator threads are joined, and the socket is closed.

The signing helpers and tiny clients below are for tests, the demo and manual
poking (``meituan_call``, ``eleme_call``). Application code must NOT import them:
the channel adapters sign with their own code, so a mistake in one is not
hidden by the same mistake in the other.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from simulator.eleme import eleme_push_signature, eleme_signature
from simulator.meituan import meituan_sig

from simulator.server import SimConfig, SimulatorServer, build_server


@contextmanager
def running_simulator(config: SimConfig | None = None, **overrides: Any) -> Iterator[SimulatorServer]:
    config = replace(config or SimConfig(), **overrides)
    server = build_server(host="127.0.0.1", port=0, config=config)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="simulator", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


__all__ = ["eleme_call", "eleme_push_signature", "eleme_signature", "meituan_call", "meituan_sig",
           "running_simulator"]

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def meituan_call(base_url: str, path: str, *, app_id: str, secret: str, params: dict[str, Any] | None = None,
                 method: str = "GET", timeout: float = 5.0) -> dict:
    """One signed Meituan call (``path`` like "order/confirm"); GET params in the query, POST in a form body."""
    url = f"{base_url}/api/v1/{path}"
    params = {k: str(v) for k, v in (params or {}).items()}
    system = {"app_id": app_id, "timestamp": str(int(time.time()))}
    system["sig"] = meituan_sig(url, {**params, **system}, secret)
    if method == "GET":
        request = urllib.request.Request(f"{url}?{urlencode({**params, **system})}", method="GET")
    else:
        request = urllib.request.Request(f"{url}?{urlencode(system)}", data=urlencode(params).encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    with _OPENER.open(request, timeout=timeout) as response:
        return json.loads(response.read())


def eleme_call(base_url: str, action: str, params: dict[str, Any], *, app_key: str, secret: str, token: str,
               timeout: float = 5.0) -> dict:
    """One signed Ele.me envelope call; returns the whole answer ({id, result, error})."""
    timestamp = int(time.time())
    envelope = {"nop": "1.0.0", "id": uuid.uuid4().hex, "action": action, "token": token,
                "metas": {"app_key": app_key, "timestamp": timestamp}, "params": params,
                "signature": eleme_signature(action=action, token=token, params=params, app_key=app_key,
                                             timestamp=timestamp, secret=secret)}
    request = urllib.request.Request(f"{base_url}/api/v1/", method="POST",
                                     data=json.dumps(envelope, ensure_ascii=False).encode("utf-8"),
                                     headers={"Content-Type": "application/json"})
    with _OPENER.open(request, timeout=timeout) as response:
        return json.loads(response.read())
