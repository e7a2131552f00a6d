"""Run the simulator in-process on a free port, for tests::

    with running_simulator(notify_backoff=(0.05, 0.1)) as sim:
        requests.post(f"{sim.base_url}/_sim/wxpay/pay", json={...})

The context value is the ``SimulatorServer`` (``.base_url``, ``.calls``,
``.faults``, ``.config``); on exit the server stops, its handler threads and
push threads are joined, and the socket is closed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

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
