"""A pull's platform calls, run ahead of its writes.

``WalkAhead`` runs an adapter's walk (``pull_new_orders``: HTTP calls and parsing
only) in a thread of its own, a bounded number of orders ahead of the pulling
thread, which writes what has been fetched meanwhile. The walk never touches the
database: its one question to it (``known``: which of these order ids do we hold)
is answered by the pulling thread, which holds the connection and the transaction.
An error of the walk reaches the pulling thread after every order fetched before
it, so those are written first.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

from channels.adapters.base import PulledOrder

# How long a blocked put/get waits before checking whether the other side gave up.
POLL_SECONDS = 0.2
_ORDER, _KNOWN, _END, _ERROR = "order", "known", "end", "error"


class _Stopped(Exception):
    """The pulling thread closed the walk: the walk thread ends."""


class WalkAhead:
    """``WalkAhead(walk, known=..., ahead=n)``: ``walk(known)`` is an iterator of
    ``PulledOrder`` (an adapter's ``pull_new_orders`` given the ``known`` to use); it runs
    at most ``ahead`` orders ahead of ``pages()``. Call ``close()`` when done (it stops
    the walk if the pulling thread leaves early)."""

    def __init__(self, walk: Callable[[Callable[[list[str]], set[str]] | None], Iterator[PulledOrder]], *,
                 known: Callable[[list[str]], set[str]] | None, ahead: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        self._known = known
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(walk,), name="pull-walk", daemon=True)
        self._thread.start()

    # --- the walk thread ---------------------------------------------------------------

    def _put(self, item: tuple) -> None:
        while True:
            if self._stop.is_set():
                raise _Stopped
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _ask_known(self, order_ids: list[str]) -> set[str]:
        answer: queue.Queue = queue.Queue(maxsize=1)
        self._put((_KNOWN, order_ids, answer))
        while True:
            try:
                reply = answer.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if self._stop.is_set():
                    raise _Stopped from None
                continue
            if isinstance(reply, BaseException):
                raise reply
            return reply

    def _run(self, walk) -> None:
        try:
            for pulled in walk(self._ask_known if self._known is not None else None):
                self._put((_ORDER, pulled, None))
            self._put((_END, None, None))
        except _Stopped:
            return
        except Exception as exc:  # noqa: BLE001 - handed to the pulling thread, which raises it
            try:
                self._put((_ERROR, exc, None))
            except _Stopped:
                return

    # --- the pulling thread ------------------------------------------------------------

    def pages(self, *, size: int, wait: float) -> Iterator[list[PulledOrder]]:
        """The walk's orders in order, in lists of at most ``size``: a list is handed over
        when full, when the walk ends or fails, or ``wait`` seconds after its first order
        arrived (a slow platform's orders are not held back; a backlog's are written a
        page at a time). The walk's error, if any, is raised after the orders fetched
        before it."""
        page: list[PulledOrder] = []
        deadline = 0.0
        while True:
            timeout = max(deadline - time.monotonic(), 0.0) if page else POLL_SECONDS
            try:
                kind, value, answer = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                if page:
                    yield page
                    page = []
                elif not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the pull's walk thread ended without a word") from None
                continue
            if kind == _ORDER:
                if not page:
                    deadline = time.monotonic() + wait
                page.append(value)
                if len(page) >= size:
                    yield page
                    page = []
            elif kind == _KNOWN:
                try:
                    answer.put(self._known(value))
                except Exception as exc:  # noqa: BLE001 - raised in the walk thread, where it was asked
                    answer.put(exc)
            else:
                if page:
                    yield page
                if kind == _ERROR:
                    raise value
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
