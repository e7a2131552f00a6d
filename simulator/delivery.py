"""Shared by every counterpart: the call log and outbound push delivery.

Pushes (payment notifies, Meituan form pushes, Ele.me JSON pushes) run in
background threads that retry with backoff until the receiver answers HTTP 200,
honour the outbound faults (``bad_signature``, ``duplicate``, ``shuffle``), and
stop and are joined when the simulator resets or closes. Pushes given the same
``key`` (the platforms use one key per order) are delivered one after another in
the order they were made, unless a ``shuffle`` fault holds them.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from simulator.faults import SHUFFLE_DEFAULT_HOLD, Fault, FaultRegistry

if TYPE_CHECKING:
    from simulator.routing import SimConfig, SimRequest

logger = logging.getLogger("simulator")


# --- Call log --------------------------------------------------------------------


def _loggable_body(body: bytes, content_type: str = "") -> Any:
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    if content_type.startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(text, keep_blank_values=True))  # Meituan form bodies, decoded
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


class CallLog:
    """Every call the simulator received ("in") and every push it made ("out")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict] = []

    def _append(self, entry: dict) -> None:
        with self._lock:
            entry["seq"] = len(self._entries) + 1
            self._entries.append(entry)

    def record_in(self, *, request: SimRequest, status: int, fault: str = "", route: str = "") -> None:
        self._append({
            "direction": "in", "at": time.time(), "method": request.method, "path": request.path,
            "route": route or request.path,
            "query": request.query, "headers": request.headers,
            "body": _loggable_body(request.body, request.headers.get("content-type", "")),
            "status": status, "fault": fault,
        })

    def record_out(self, *, url: str, label: str, attempt: int, headers: dict[str, str], body: bytes,
                   status: int | None, error: str, fault: str) -> None:
        self._append({
            "direction": "out", "at": time.time(), "method": "POST", "url": url, "path": urlsplit(url).path,
            "label": label, "attempt": attempt, "headers": headers,
            "body": _loggable_body(body, headers.get("Content-Type", "")),
            "status": status, "error": error, "fault": fault,
        })

    def list(self, *, path_prefix: str = "", direction: str = "") -> list[dict]:
        with self._lock:
            return [
                dict(e) for e in self._entries
                if (e["path"].startswith(path_prefix) or e.get("route", "").startswith(path_prefix))
                and (not direction or e["direction"] == direction)
            ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# --- Outbound pushes ---------------------------------------------------------------

# (bad_signature: bool) -> headers for one delivery attempt; called per attempt so
# every attempt gets a fresh timestamp and nonce, as the real providers do.
HeaderSigner = Callable[[bool], dict[str, str]]
# (bad_signature: bool) -> (headers, body) for one delivery attempt: for pushes
# whose signature (and timestamp) travel in the body, as the platforms' do.
Renderer = Callable[[bool], tuple[dict[str, str], bytes]]

# Never route localhost pushes through an http_proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class _Push:
    url: str
    render: Renderer
    label: str


def _shuffled(items: list) -> list:
    """A random permutation of ``items`` that differs from the original order when it can."""
    order = list(items)
    random.shuffle(order)
    if len(order) > 1 and all(a is b for a, b in zip(order, items)):
        order = order[1:] + order[:1]
    return order


class PushDispatcher:
    """Delivers pushes in background threads, retrying with backoff until HTTP 200.

    Every thread it starts watches one stop event; ``close`` and ``reset`` set it
    and join the threads, so nothing outlives the server.
    """

    def __init__(self, *, config: SimConfig, faults: FaultRegistry, calls: CallLog) -> None:
        self._config = config
        self._faults = faults
        self._calls = calls
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._queues: dict[str, deque[_Push]] = {}  # key -> pushes waiting behind the one in flight
        self._held: dict[int, list[_Push]] = {}  # shuffle fault id -> pushes held back

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(target=target, args=(*args, self._stop), daemon=True, name="sim-push")
            self._threads.append(thread)
            thread.start()

    def push(self, *, url: str, body: bytes, sign: HeaderSigner, label: str, key: str = "") -> int:
        """Schedule delivery of a JSON ``body`` to ``url`` with headers from ``sign``; returns the copies made."""
        def render(bad_signature: bool) -> tuple[dict[str, str], bytes]:
            return {"Content-Type": "application/json", **sign(bad_signature)}, body

        return self.push_rendered(url=url, render=render, label=label, key=key)

    def push_rendered(self, *, url: str, render: Renderer, label: str, key: str = "") -> int:
        """Schedule delivery of what ``render`` builds per attempt; returns the copies (2 on a duplicate fault).

        Pushes with the same non-empty ``key`` go out strictly one after another.
        """
        path = urlsplit(url).path
        copies = 2 if self._faults.take(path=path, modes={"duplicate"}) else 1
        for _ in range(copies):
            item = _Push(url=url, render=render, label=label)
            shuffle = self._faults.take(path=path, modes={"shuffle"})
            if shuffle is not None:
                self._hold(shuffle, item)
            elif key:
                self._enqueue(key, item)
            else:
                self._start(self._deliver, item)
        return copies

    def later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``delay`` seconds unless the simulator stops or resets first."""
        self._start(self._run_later, delay, callback)

    def _run_later(self, delay: float, callback: Callable[[], None], stop: threading.Event) -> None:
        if stop.wait(delay):
            return
        try:
            callback()
        except Exception:  # a bug in the simulator: log it, keep serving
            logger.exception("scheduled simulator callback failed")

    # -- ordered delivery per key

    def _enqueue(self, key: str, item: _Push) -> None:
        with self._lock:
            waiting = self._queues.get(key)
            if waiting is not None:
                waiting.append(item)
                return
            self._queues[key] = deque([item])
        self._start(self._drain, key)

    def _drain(self, key: str, stop: threading.Event) -> None:
        while True:
            with self._lock:
                waiting = self._queues.get(key)
                if not waiting or stop.is_set():
                    self._queues.pop(key, None)
                    return
                item = waiting[0]
            self._deliver(item, stop)
            with self._lock:
                if waiting:
                    waiting.popleft()

    # -- shuffle fault

    def _hold(self, fault: Fault, item: _Push) -> None:
        with self._lock:
            batch = self._held.setdefault(fault.fault_id, [])
            batch.append(item)
            first = len(batch) == 1
        if fault.count == 0:  # the last push the fault covers: release the batch now
            self._release(fault.fault_id)
        elif first:
            self._start(self._release_later, fault.fault_id, fault.delay or SHUFFLE_DEFAULT_HOLD)

    def _release_later(self, fault_id: int, hold: float, stop: threading.Event) -> None:
        if not stop.wait(hold):
            self._release(fault_id)

    def _release(self, fault_id: int) -> None:
        with self._lock:
            batch = self._held.pop(fault_id, None)
        if batch:
            self._start(self._deliver_in_turn, _shuffled(batch))

    def _deliver_in_turn(self, items: list[_Push], stop: threading.Event) -> None:
        for item in items:
            if stop.is_set():
                return
            self._deliver(item, stop)

    # -- one push, with retries

    def _deliver(self, item: _Push, stop: threading.Event) -> None:
        path = urlsplit(item.url).path
        backoff = self._config.notify_backoff or (1.0,)
        for attempt in range(1, self._config.notify_max_attempts + 1):
            if stop.is_set():
                return
            fault = self._faults.take(path=path, modes={"bad_signature"})
            headers, body = item.render(fault is not None)
            status, error = self._post(item.url, body, headers)
            self._calls.record_out(url=item.url, label=item.label, attempt=attempt, headers=headers, body=body,
                                   status=status, error=error, fault=fault.mode if fault else "")
            if status == 200:
                return
            if stop.wait(backoff[min(attempt - 1, len(backoff) - 1)]):
                return
        logger.warning("push %s to %s abandoned after %s attempts", item.label, item.url,
                       self._config.notify_max_attempts)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=self._config.notify_timeout) as response:
                response.read()
                return response.status, ""
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code, ""
        except (urllib.error.URLError, OSError) as exc:
            return None, str(exc)

    def _stop_and_join(self) -> None:
        self._stop.set()
        with self._lock:
            threads, self._threads = self._threads, []
            self._queues.clear()
            self._held.clear()
        for thread in threads:
            thread.join(timeout=self._config.notify_timeout + 1)

    def reset(self) -> None:
        self._stop_and_join()
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop_and_join()
