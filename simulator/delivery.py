"""Shared by every counterpart: the call log and outbound push delivery.

Pushes (payment notifies now, platform order pushes later) run in background
threads that retry with backoff until the receiver answers HTTP 200, honour the
outbound faults, and stop and are joined when the simulator resets or closes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from simulator.faults import FaultRegistry

if TYPE_CHECKING:
    from simulator.server import SimConfig, SimRequest

logger = logging.getLogger("simulator")


# --- Call log --------------------------------------------------------------------


def _loggable_body(body: bytes) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
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

    def record_in(self, *, request: SimRequest, status: int, fault: str = "") -> None:
        self._append({
            "direction": "in", "at": time.time(), "method": request.method, "path": request.path,
            "query": request.query, "headers": request.headers, "body": _loggable_body(request.body),
            "status": status, "fault": fault,
        })

    def record_out(self, *, url: str, label: str, attempt: int, headers: dict[str, str], body: bytes,
                   status: int | None, error: str, fault: str) -> None:
        self._append({
            "direction": "out", "at": time.time(), "method": "POST", "url": url, "path": urlsplit(url).path,
            "label": label, "attempt": attempt, "headers": headers, "body": _loggable_body(body),
            "status": status, "error": error, "fault": fault,
        })

    def list(self, *, path_prefix: str = "", direction: str = "") -> list[dict]:
        with self._lock:
            return [
                dict(e) for e in self._entries
                if e["path"].startswith(path_prefix) and (not direction or e["direction"] == direction)
            ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# --- Outbound pushes ---------------------------------------------------------------

# (bad_signature: bool) -> headers for one delivery attempt; called per attempt so
# every attempt gets a fresh timestamp and nonce, as the real providers do.
HeaderSigner = Callable[[bool], dict[str, str]]

# Never route localhost pushes through an http_proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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

    @property
    def stop_event(self) -> threading.Event:
        return self._stop

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(target=target, args=(*args, self._stop), daemon=True, name="sim-push")
            self._threads.append(thread)
            thread.start()

    def push(self, *, url: str, body: bytes, sign: HeaderSigner, label: str) -> int:
        """Schedule delivery of ``body`` to ``url``; returns the number of copies (2 on a duplicate fault)."""
        copies = 2 if self._faults.take(path=urlsplit(url).path, modes={"duplicate"}) else 1
        for _ in range(copies):
            self._start(self._deliver, url, body, sign, label)
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

    def _deliver(self, url: str, body: bytes, sign: HeaderSigner, label: str, stop: threading.Event) -> None:
        path = urlsplit(url).path
        backoff = self._config.notify_backoff or (1.0,)
        for attempt in range(1, self._config.notify_max_attempts + 1):
            if stop.is_set():
                return
            fault = self._faults.take(path=path, modes={"bad_signature"})
            headers = {"Content-Type": "application/json", **sign(fault is not None)}
            status, error = self._post(url, body, headers)
            self._calls.record_out(url=url, label=label, attempt=attempt, headers=headers, body=body,
                                   status=status, error=error, fault=fault.mode if fault else "")
            if status == 200:
                return
            if stop.wait(backoff[min(attempt - 1, len(backoff) - 1)]):
                return
        logger.warning("push %s to %s abandoned after %s attempts", label, url, self._config.notify_max_attempts)

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
        for thread in threads:
            thread.join(timeout=self._config.notify_timeout + 1)

    def reset(self) -> None:
        self._stop_and_join()
        self._stop = threading.Event()

    def close(self) -> None:
        self._stop_and_join()
