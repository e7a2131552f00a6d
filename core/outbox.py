"""The transactional outbox: messages to other systems, delivered at least once.

A service that changes something another system must hear about calls
``outbox_enqueue`` INSIDE its own transaction, so the message exists exactly
when the change does (a rolled-back change leaves no message). After commit the
relay is kicked (``outbox_relay_kick``: one ``core.relay_outbox`` task for a
burst of commits, not one per message); the periodic sweep (PERIODIC_JOBS) runs
the same relay, so a broker outage only delays delivery.

Kicks are coalesced through a flag in the broker's Redis (``KICK_FLAG``): a
commit publishes a relay task only when it sets the flag (``SET NX``); the
relay task clears the flag BEFORE it claims anything, so a commit either finds
the flag set (a relay that has not claimed yet is queued and will see its
message) or sets it and queues a new relay. The flag expires after
``OUTBOX_KICK_TTL_SECONDS`` in case a queued relay is lost. A relay that stops
at its ``limit`` kicks again. Without a Redis broker (eager tasks, other
brokers) every commit queues a relay.

Delivery (``outbox_relay``), in rounds:
- per ``key`` strictly in order: only the OLDEST pending message of a key is
  eligible, so message n+1 never leaves while message n is pending or waiting
  for a retry. A dead letter no longer holds its key back (a person decides in
  the dead-letter view; ``outbox_retry`` puts it back in line);
- a round claims up to ``OUTBOX_RELAY_BATCH`` due head messages across all keys
  (so at most one per key) and leases them (``next_attempt_at`` pushed
  ``OUTBOX_LEASE_SECONDS`` ahead, ``attempts`` + 1) in ONE statement (PostgreSQL:
  ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``), which
  commits on its own: no row lock is held during a network call. Handlers run
  after that, on up to ``OUTBOX_RELAY_THREADS`` threads (PostgreSQL, outside a
  transaction; else one after the other), and the outcomes are written back in
  one UPDATE for the delivered messages (plus one for the failed ones, if any).
  The next round then sees the next message of each key delivered in this one.
  A worker that dies mid-delivery leaves the lease to expire and the message is
  delivered again (at least once: handlers and the receiving side must tolerate
  a repeat). A claimed message whose handler has not started within half the
  lease is handed back (attempt undone) rather than risk overlapping a second
  relay;
- a failure is retried with exponential backoff and jitter; after
  ``OUTBOX_MAX_ATTEMPTS`` attempts (or on ``OutboxPermanentError``) the message
  becomes a dead letter. Outcomes are only written while the relay still holds
  the lease (same ``attempts``), except "delivered", which is always true.

Handlers are registered per topic by the consuming app in its
``AppConfig.ready`` with ``outbox_handler_register`` (a plain call, no signals).
A handler takes the message and returns normally on success or raises. It may
run on a worker thread, with its own database connection. ``outbox_memo``
shares a lookup (a platform binding, say) between the messages of one round.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, DateTimeField, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from core.jobs import job_enqueue, job_task
from core.models import OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)

OutboxHandler = Callable[[OutboxMessage], None]
_HANDLERS: dict[str, OutboxHandler] = {}

RELAY_TASK_NAME = "core.relay_outbox"
KICK_FLAG = "outbox:relay:kick"


class OutboxPermanentError(Exception):
    """Raised by a handler when retrying cannot help: the message goes straight to the dead letters."""


# --- Handler registry --------------------------------------------------------------


def outbox_handler_register(topic: str, handler: OutboxHandler) -> None:
    """Make ``handler`` deliver messages of ``topic``. Registering the same handler twice is harmless."""
    existing = _HANDLERS.get(topic)
    if existing is not None and existing is not handler:
        raise ValueError(f"outbox topic {topic!r} already has a handler: {existing!r}")
    _HANDLERS[topic] = handler


def outbox_handler_for(topic: str) -> OutboxHandler | None:
    return _HANDLERS.get(topic)


_round = threading.local()
_MISSING = object()


def outbox_memo(key: Hashable, factory: Callable[[], Any]) -> Any:
    """``factory()``, computed once per relay round for ``key`` (every call outside a round).

    For lookups every message of a round repeats (the platform binding of a
    store); a round lasts well under the lease, so a change made meanwhile is
    seen by the next round."""
    memo = getattr(_round, "memo", None)
    if memo is None:
        return factory()
    value = memo.get(key, _MISSING)
    if value is _MISSING:
        value = memo[key] = factory()
    return value


# --- Settings ------------------------------------------------------------------------


def _max_attempts() -> int:
    return int(settings.OUTBOX_MAX_ATTEMPTS)


def _lease_seconds() -> float:
    return float(settings.OUTBOX_LEASE_SECONDS)


def _batch_size() -> int:
    return max(1, int(settings.OUTBOX_RELAY_BATCH))


def _thread_count() -> int:
    return max(1, int(settings.OUTBOX_RELAY_THREADS))


def _kick_ttl_ms() -> int:
    return max(1, int(float(settings.OUTBOX_KICK_TTL_SECONDS) * 1000))


def outbox_backoff_seconds(*, attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1-based).

    ``base * 2 ** (attempts - 1)`` capped at ``OUTBOX_BACKOFF_MAX_SECONDS``, plus up
    to ``OUTBOX_BACKOFF_JITTER`` of itself at random, so messages that failed
    together do not all come back together.
    """
    base = float(settings.OUTBOX_BACKOFF_BASE_SECONDS)
    cap = float(settings.OUTBOX_BACKOFF_MAX_SECONDS)
    jitter = float(settings.OUTBOX_BACKOFF_JITTER)
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay + delay * jitter * rng()


# --- Writing and kicking ---------------------------------------------------------------


def outbox_enqueue(*, topic: str, key: str, payload: dict, brand_id: int | None = None) -> OutboxMessage:
    """Write one message. Call inside the transaction of the change it reports.

    After that transaction commits, the relay is kicked (robustly: a broker that
    is down is logged and left to the periodic sweep).
    """
    message = OutboxMessage.objects.create(topic=topic, key=str(key), payload=payload, brand_id=brand_id)
    transaction.on_commit(outbox_relay_kick, robust=True)
    return message


def outbox_enqueue_latest(*, topic: str, key: str, payload: dict, brand_id: int | None = None
                          ) -> OutboxMessage | None:
    """For a message whose handler sends the *current* state of something (a store's
    open / closed, a SKU's on sale / sold out), read when it is delivered, not a value
    carried in the payload: while a message of ``key`` is pending and not yet claimed
    (``attempts`` 0) it will read this change too, so nothing is written and None is
    returned. Stock flipping many times a second thus makes one message per relay
    round, not one per flip.

    Call it in the transaction that changed the state, *after* the change is written
    (its row stays locked to the commit); the handler must read that row FOR UPDATE
    after its claim. Either the claim came first (the message counts as claimed and a
    new one is written here) or the handler's read waits for this commit and sees it.
    """
    key = str(key)
    if OutboxMessage.objects.filter(key=key, status=OutboxStatus.PENDING, attempts=0).exists():
        return None
    return outbox_enqueue(topic=topic, key=key, payload=payload, brand_id=brand_id)


_kick_clients: dict[str, Any] = {}


def _kick_client():
    """A Redis client on the broker, for the kick flag; None when tasks are eager or the broker is not Redis."""
    app = job_task(RELAY_TASK_NAME).app
    if app.conf.task_always_eager:
        return None
    url = str(app.conf.broker_url or "")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    client = _kick_clients.get(url)
    if client is None:
        client = _kick_clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


def outbox_relay_kick() -> None:
    """Ask a worker (or, with eager tasks, this process) to run the relay soon; coalesced (see the module doc)."""
    client, flagged = None, False
    try:
        client = _kick_client()
        if client is not None:
            if not client.set(KICK_FLAG, b"1", nx=True, px=_kick_ttl_ms()):
                return  # a relay is queued and has not claimed yet: it will see this commit
            flagged = True
        job_enqueue(RELAY_TASK_NAME)
    except Exception:  # the broker is down: the sweep delivers later
        logger.warning("outbox relay could not be scheduled; the sweep will deliver", exc_info=True)
        if flagged:  # no relay was queued: let the next commit try again
            with contextlib.suppress(Exception):  # else the flag expires on its own
                client.delete(KICK_FLAG)


def outbox_kick_clear() -> None:
    """Called by a relay task before it claims: commits from now on queue another relay."""
    try:
        client = _kick_client()
        if client is not None:
            client.delete(KICK_FLAG)
    except Exception:  # the flag expires on its own; this relay runs anyway
        logger.warning("outbox kick flag could not be cleared", exc_info=True)


def outbox_retry(*, message_ids: Iterable[int], now: datetime | None = None) -> int:
    """Put dead letters back in line (attempts reset). Returns how many were revived."""
    now = now or timezone.now()
    with transaction.atomic():
        revived = list(
            OutboxMessage.objects.select_for_update()
            .filter(pk__in=list(message_ids), status=OutboxStatus.DEAD).order_by("pk")
        )
        OutboxMessage.objects.filter(pk__in=[m.pk for m in revived]).update(
            status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now,
        )
        if revived:
            transaction.on_commit(outbox_relay_kick, robust=True)
    return len(revived)


# --- Claiming ------------------------------------------------------------------------

_CLAIM_SQL = """
WITH due AS (
    SELECT c.id FROM {table} AS c
    WHERE c.status = %(pending)s AND c.next_attempt_at <= %(now)s {key_filter}
      AND NOT EXISTS (SELECT 1 FROM {table} AS o
                      WHERE o.status = %(pending)s AND o.key = c.key AND o.id < c.id)
    ORDER BY c.next_attempt_at, c.id
    LIMIT %(limit)s
    FOR UPDATE OF c SKIP LOCKED
)
UPDATE {table} AS m SET attempts = m.attempts + 1, next_attempt_at = %(lease_until)s
FROM due WHERE m.id = due.id
RETURNING {columns}
"""


def _due_heads(*, now: datetime, key: str | None):
    """Pending messages that are due and have no older pending message of their key."""
    older_pending = OutboxMessage.objects.filter(
        key=OuterRef("key"), status=OutboxStatus.PENDING, pk__lt=OuterRef("pk"),
    )
    queryset = OutboxMessage.objects.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
    if key is not None:
        queryset = queryset.filter(key=key)
    return queryset.filter(~Exists(older_pending))


def _claim(*, now: datetime, limit: int, key: str | None) -> list[OutboxMessage]:
    """Lease up to ``limit`` deliverable messages (at most one per key)."""
    lease_until = now + timedelta(seconds=_lease_seconds())
    if connection.vendor == "postgresql":
        fields = OutboxMessage._meta.concrete_fields
        sql = _CLAIM_SQL.format(table=connection.ops.quote_name(OutboxMessage._meta.db_table),
                                key_filter="AND c.key = %(key)s" if key is not None else "",
                                columns=", ".join(f"m.{connection.ops.quote_name(f.column)}" for f in fields))
        params = {"pending": OutboxStatus.PENDING, "now": now, "limit": limit, "key": key, "lease_until": lease_until}
        claimed = list(OutboxMessage.objects.raw(sql, params))
    else:
        with transaction.atomic():
            claimed = list(_due_heads(now=now, key=key).select_for_update(skip_locked=True)
                           .order_by("next_attempt_at", "pk")[:limit])
            OutboxMessage.objects.filter(pk__in=[m.pk for m in claimed]).update(
                attempts=F("attempts") + 1, next_attempt_at=lease_until)
        for message in claimed:
            message.attempts += 1
            message.next_attempt_at = lease_until
    claimed.sort(key=lambda m: m.pk)
    return claimed


# --- Delivering ----------------------------------------------------------------------


@dataclass
class _Outcome:
    message: OutboxMessage
    started: bool = False
    ok: bool = False
    permanent: bool = False
    error: str = ""
    at: datetime | None = None


def _run_handler(message: OutboxMessage, *, start_by: float, memo: dict, threaded: bool) -> _Outcome:
    outcome = _Outcome(message)
    if time.monotonic() > start_by:
        return outcome  # too late to start under this lease: handed back
    outcome.started = True
    _round.memo = memo
    try:
        handler = outbox_handler_for(message.topic)
        if handler is None:
            raise LookupError(f"no outbox handler registered for topic {message.topic!r}")
        handler(message)
    except Exception as exc:  # noqa: BLE001 (any failure of a handler is a failed delivery)
        outcome.permanent = isinstance(exc, OutboxPermanentError)
        outcome.error = f"{type(exc).__name__}: {exc}"[:2000]
    else:
        outcome.ok = True
    finally:
        _round.memo = None
        if threaded:
            try:
                _thread_connection_tidy()
            except Exception:  # the outcome stands; the next message reconnects
                logger.warning("outbox delivery thread could not close its connection", exc_info=True)
    outcome.at = timezone.now()
    return outcome


def _thread_connection_tidy() -> None:
    """A delivery thread keeps its connection between messages, like a worker between
    tasks: closed after an error or once past CONN_MAX_AGE (at once when it is 0)."""
    if connection.connection is None or connection.in_atomic_block:
        return
    if connection.errors_occurred or (connection.close_at is not None and time.monotonic() >= connection.close_at):
        connection.close()


_executor: ThreadPoolExecutor | None = None
_executor_pid: int | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The process's delivery threads (made on first use, again after a fork)."""
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=_thread_count(), thread_name_prefix="outbox-relay")
            _executor_pid = os.getpid()
        return _executor


def _threads_usable() -> bool:
    # Inside a transaction (a test, a caller's atomic block) another connection
    # would not see its rows; SQLite has a single writer.
    return _thread_count() > 1 and connection.vendor != "sqlite" and not connection.in_atomic_block


def _deliver_batch(batch: list[OutboxMessage]) -> list[_Outcome]:
    start_by = time.monotonic() + _lease_seconds() / 2
    memo: dict = {}
    if len(batch) > 1 and _threads_usable():
        pool = _pool()
        futures = [pool.submit(_run_handler, m, start_by=start_by, memo=memo, threaded=True) for m in batch]
        return [future.result() for future in futures]
    return [_run_handler(m, start_by=start_by, memo=memo, threaded=False) for m in batch]


def _record(outcomes: list[_Outcome], *, now: datetime, rng: Callable[[], float]) -> tuple[int, int]:
    """Write the outcomes of a round: one UPDATE for the delivered, one for the failed, one for the handed back."""
    delivered = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if o.started and not o.ok]
    returned = [o for o in outcomes if not o.started]
    pending = OutboxMessage.objects.filter(status=OutboxStatus.PENDING)
    if delivered:
        pending.filter(pk__in=[o.message.pk for o in delivered]).update(
            status=OutboxStatus.DELIVERED, last_error="",
            delivered_at=Case(*[When(pk=o.message.pk, then=Value(o.at)) for o in delivered],
                              output_field=DateTimeField()),
        )
    if failed:
        dead, retry_at = [], {}
        for outcome in failed:
            message = outcome.message
            log = {"outbox_id": message.pk, "topic": message.topic, "key": message.key, "error": outcome.error}
            if outcome.permanent or message.attempts >= _max_attempts():
                logger.error("outbox message dead-lettered", extra=log)
                dead.append(message.pk)
            else:
                retry_at[message.pk] = now + timedelta(
                    seconds=outbox_backoff_seconds(attempts=message.attempts, rng=rng))
                logger.warning("outbox delivery failed; will retry", extra={**log, "attempts": message.attempts})
        still_ours = reduce(or_, [Q(pk=o.message.pk, attempts=o.message.attempts) for o in failed])
        pending.filter(still_ours).update(
            status=Case(When(pk__in=dead, then=Value(OutboxStatus.DEAD)), default=Value(OutboxStatus.PENDING)),
            next_attempt_at=Case(*[When(pk=pk, then=Value(at)) for pk, at in retry_at.items()],
                                 default=F("next_attempt_at"), output_field=DateTimeField()),
            last_error=Case(*[When(pk=o.message.pk, then=Value(o.error)) for o in failed]),
        )
    if returned:
        logger.warning("outbox messages handed back unstarted (round too slow for the lease)",
                       extra={"outbox_ids": [o.message.pk for o in returned]})
        pending.filter(reduce(or_, [Q(pk=o.message.pk, attempts=o.message.attempts) for o in returned])).update(
            attempts=F("attempts") - 1, next_attempt_at=now)
    return len(delivered), len(failed)


def outbox_relay(*, limit: int = 100, key: str | None = None, now: datetime | None = None,
                 rng: Callable[[], float] = random.random,
                 on_backlog: Callable[[], None] | None = None) -> dict[str, int]:
    """Deliver due messages (all keys, or one ``key``), at most ``limit`` attempts.

    Works in rounds: each round claims the head message of up to
    ``OUTBOX_RELAY_BATCH`` due keys, so a key with several messages advances
    one message per round, in order. Stops when nothing is due. Safe to run in
    several workers at once. ``on_backlog`` is called (once) when a round came
    back full: more is due than one round takes, another relay may help.
    Returns {"delivered": n, "failed": n}.
    """
    delivered = failed = 0
    while delivered + failed < limit:
        moment = now or timezone.now()
        size = min(limit - delivered - failed, _batch_size())
        batch = _claim(now=moment, limit=size, key=key)
        if not batch:
            break
        if on_backlog is not None and len(batch) == _batch_size():
            on_backlog()
            on_backlog = None
        ok, not_ok = _record(_deliver_batch(batch), now=moment, rng=rng)
        delivered += ok
        failed += not_ok
    return {"delivered": delivered, "failed": failed}
