"""Fault injection shared by every simulated counterpart.

A fault is armed through ``POST /_sim/faults`` and fires for the next ``count``
matching events. Modes split by direction:

- inbound (the simulator answering our adapters): ``error500`` answers HTTP 500
  without touching any state, so a retry is safe; ``slow`` sleeps ``delay``
  seconds before handling the request normally (past the client's timeout, the
  request still takes effect, as on a real provider);
- outbound (the simulator pushing notifies to a URL): ``bad_signature`` signs one
  delivery attempt with a wrong key (the retry after the receiver refuses it is
  signed correctly); ``duplicate`` delivers one push twice; ``shuffle`` holds the
  next ``count`` pushes and then delivers them one after another in a shuffled
  order (never the original order when there are two or more); if fewer than
  ``count`` pushes come within ``delay`` seconds (default 5), the ones held are
  released, shuffled, when that time is up.

The same modes work for every counterpart: the payment provider's paths
(``/v3/...``, notify URLs) and the delivery platforms' (``/api/v1/...`` for calls
from our adapters; the merchant's push URLs for Meituan ``create_order`` /
``cancel_order`` / ``refund_order`` and Ele.me pushes).

``path_prefix`` is matched against the request path for inbound modes (for an
Ele.me call, its route "/api/v1/" + the envelope's action) and against the path
of the target URL for outbound modes; "" or "/" match all.

Inbound modes take three more fields:

- ``after`` (default 0): the first ``after`` matching calls pass untouched, e.g. the
  7th getOrderDetail of a pull fails with ``{"after": 6}``;
- ``rate`` (0 < rate <= 1, default 1): each matching call (past ``after``) fires
  with this probability, drawn from a generator seeded with ``seed`` (an integer;
  none: unseeded), so the same sequence of calls meets the same faults. With
  ``rate``, ``count`` defaults to 0;
- ``count`` 0: fires until ``POST /_sim/reset`` (or a restart) clears it.

``GET /_sim/faults`` lists each armed fault with ``seen`` (matching calls so far) and
``fired`` (of them, how many it failed).
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field

INBOUND_MODES = frozenset({"error500", "slow"})
OUTBOUND_MODES = frozenset({"bad_signature", "duplicate", "shuffle"})
SHUFFLE_DEFAULT_HOLD = 5.0
MODES = INBOUND_MODES | OUTBOUND_MODES


class FaultSpecError(ValueError):
    """A fault definition that cannot be armed."""


@dataclass
class Fault:
    path_prefix: str
    mode: str
    count: int = 1  # firings left; 0: no limit (inbound modes)
    delay: float = 0.0
    # Assigned when armed; a firing returned by ``take`` carries it, so a batch
    # mode (shuffle) can tell which armed fault a push belongs to.
    fault_id: int = 0
    after: int = 0  # matching events to let through first (inbound modes)
    rate: float = 1.0  # chance that a matching event fires (inbound modes)
    seed: int | None = None
    seen: int = 0
    fired: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def to_dict(self) -> dict:
        return {"path_prefix": self.path_prefix, "mode": self.mode, "count": self.count, "delay": self.delay,
                "fault_id": self.fault_id, "after": self.after, "rate": self.rate, "seed": self.seed,
                "seen": self.seen, "fired": self.fired}


def fault_from_dict(data: object) -> Fault:
    if not isinstance(data, dict):
        raise FaultSpecError("body must be a JSON object")
    mode = data.get("mode")
    if mode not in MODES:
        raise FaultSpecError(f"mode must be one of {sorted(MODES)}")
    path_prefix = data.get("path_prefix", "")
    if not isinstance(path_prefix, str):
        raise FaultSpecError("path_prefix must be a string")
    inbound_only = [name for name in ("after", "rate", "seed") if name in data]
    if inbound_only and mode not in INBOUND_MODES:
        raise FaultSpecError(f"{', '.join(inbound_only)} only go with the inbound modes {sorted(INBOUND_MODES)}")
    rate = data.get("rate", 1)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise FaultSpecError("rate must be a number above 0 and at most 1")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise FaultSpecError("seed must be an integer")
    after = data.get("after", 0)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise FaultSpecError("after must be a non-negative integer")
    count = data.get("count", 0 if "rate" in data else 1)
    lowest = 0 if mode in INBOUND_MODES else 1
    if isinstance(count, bool) or not isinstance(count, int) or count < lowest:
        raise FaultSpecError("count must be a positive integer" + (" or 0 (no limit)" if lowest == 0 else ""))
    delay = data.get("delay", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
        raise FaultSpecError("delay must be a non-negative number of seconds")
    if mode == "slow" and delay <= 0:
        raise FaultSpecError("mode slow needs a positive delay")
    return Fault(path_prefix=path_prefix, mode=mode, count=count, delay=float(delay), after=after,
                 rate=float(rate), seed=seed)


class FaultRegistry:
    """Armed faults, consumed one firing at a time (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def arm(self, fault: Fault) -> None:
        with self._lock:
            fault.fault_id = next(self._ids)
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, *, path: str, modes: frozenset[str] | set[str]) -> Fault | None:
        """Consume one firing of the first armed fault of ``modes`` matching ``path``
        that fires for this event (past its ``after``, and drawn within its ``rate``).

        The firing returned has ``count`` = the firings still left after this one
        (0 on the last, and for a fault without a limit), and the armed fault's ``fault_id``.
        """
        with self._lock:
            for fault in self._faults:
                if fault.mode not in modes or not _matches(fault.path_prefix, path):
                    continue
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                if fault.rate < 1 and fault._random.random() >= fault.rate:
                    continue
                fault.fired += 1
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                return Fault(path_prefix=fault.path_prefix, mode=fault.mode, count=fault.count,
                             delay=fault.delay, fault_id=fault.fault_id)
        return None


def _matches(prefix: str, path: str) -> bool:
    return prefix in ("", "/") or path.startswith(prefix)
