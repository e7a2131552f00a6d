"""Fault injection shared by every simulated counterpart.

A fault is armed through ``POST /_sim/faults`` and fires for the next ``count``
matching events. Modes split by direction:

- inbound (the simulator answering our adapters): ``error500`` answers HTTP 500
  without touching any state, so a retry is safe; ``slow`` sleeps ``delay``
  seconds before handling the request normally (past the client's timeout, the
  request still takes effect, as on a real provider);
- outbound (the simulator pushing notifies to a URL): ``bad_signature`` signs one
  delivery with a wrong key; ``duplicate`` delivers one push twice.

``path_prefix`` is matched against the request path for inbound modes and
against the path of the target URL for outbound modes; "" or "/" match all.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

INBOUND_MODES = frozenset({"error500", "slow"})
OUTBOUND_MODES = frozenset({"bad_signature", "duplicate"})
MODES = INBOUND_MODES | OUTBOUND_MODES


class FaultSpecError(ValueError):
    """A fault definition that cannot be armed."""


@dataclass
class Fault:
    path_prefix: str
    mode: str
    count: int = 1
    delay: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def fault_from_dict(data: object) -> Fault:
    if not isinstance(data, dict):
        raise FaultSpecError("body must be a JSON object")
    mode = data.get("mode")
    if mode not in MODES:
        raise FaultSpecError(f"mode must be one of {sorted(MODES)}")
    path_prefix = data.get("path_prefix", "")
    if not isinstance(path_prefix, str):
        raise FaultSpecError("path_prefix must be a string")
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise FaultSpecError("count must be a positive integer")
    delay = data.get("delay", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        raise FaultSpecError("delay must be a non-negative number of seconds")
    if mode == "slow" and delay <= 0:
        raise FaultSpecError("mode slow needs a positive delay")
    return Fault(path_prefix=path_prefix, mode=mode, count=count, delay=float(delay))


class FaultRegistry:
    """Armed faults, consumed one firing at a time (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, *, path: str, modes: frozenset[str] | set[str]) -> Fault | None:
        """Consume one firing of the first armed fault of ``modes`` matching ``path``."""
        with self._lock:
            for fault in self._faults:
                if fault.mode in modes and _matches(fault.path_prefix, path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return Fault(path_prefix=fault.path_prefix, mode=fault.mode, count=1, delay=fault.delay)
        return None


def _matches(prefix: str, path: str) -> bool:
    return prefix in ("", "/") or path.startswith(prefix)
