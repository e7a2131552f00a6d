"""Group commit inside one process: work items arriving together are written together.

Threads of one web process (gunicorn's gthread workers) that submit work of the same
kind at the same moment -- placements at one store, pushed orders of one platform
shop -- queue behind each other. The first to arrive while no batch is running leads:
it writes the head of the queue (at most ``size`` items) as one batch, gives every
item of it its outcome, and hands the lead to the first item still queued, which
writes the next batch; so no thread writes more than the batch it is in, and every
caller returns only once its own item has been written (or has failed). Used by
``orders.services.placement`` and ``channels.services.intake.pushed_order_ingest``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Submitted:
    """One item of a batch: ``write`` sets its ``result`` or its ``error``."""

    result: Any = None
    error: BaseException | None = None
    finished: bool = False
    wake: threading.Event = field(default_factory=threading.Event, repr=False)

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result

    def has_outcome(self) -> bool:
        return self.result is not None or self.error is not None


class GroupCommit:
    """``GroupCommit(write, size=...)``; ``submit(item)`` blocks until ``item`` is written.

    ``write(batch)`` gives each item of ``batch`` its outcome (``result`` or ``error``); an
    item it leaves without one (``write`` itself raised) gets ``RuntimeError``. ``size``:
    the most items a batch holds (a callable is asked for each batch)."""

    def __init__(self, write: Callable[[list], None], *, size: int | Callable[[], int]) -> None:
        self._write = write
        self._size = size
        self._lock = threading.Lock()
        self._queue: list[Submitted] = []
        self._busy = False
        self.batches = 0  # batches written by this process, and the items in them
        self.items = 0

    def submit(self, item: Submitted) -> Any:
        with self._lock:
            self._queue.append(item)
            lead = not self._busy
            self._busy = True
        if not lead:
            item.wake.wait()
            lead = not item.finished  # woken to lead the next batch
        if lead:
            self._lead()
        return item.outcome()

    def _lead(self) -> None:
        with self._lock:
            size = max(1, self._size() if callable(self._size) else self._size)
            batch, self._queue = self._queue[:size], self._queue[size:]
            self.batches += 1
            self.items += len(batch)
        try:
            self._write(batch)
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._busy = False
            for item in batch:
                if not item.has_outcome():  # the batch itself was interrupted
                    item.error = RuntimeError("batch interrupted")
                item.finished = True
                item.wake.set()
            if successor is not None:
                successor.wake.set()


class GroupCommits:
    """One ``GroupCommit`` per key (a store, a platform binding), made on first use, all with
    the same ``write`` and ``size``: work of different keys is never batched together, and a
    batch waiting for a lock under one key holds up no other key."""

    def __init__(self, write: Callable[[list], None], *, size: int | Callable[[], int]) -> None:
        self._write = write
        self._size = size
        self._lock = threading.Lock()
        self._by_key: dict[Any, GroupCommit] = {}

    def for_key(self, key: Any) -> GroupCommit:
        with self._lock:
            group = self._by_key.get(key)
            if group is None:
                group = self._by_key[key] = GroupCommit(self._write, size=self._size)
            return group

    def all(self) -> dict[Any, GroupCommit]:
        """Every key's group so far (statistics)."""
        with self._lock:
            return dict(self._by_key)
