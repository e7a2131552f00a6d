"""The transactional outbox: messages to other systems, delivered at least once.

A service that changes something another system must hear about calls
``outbox_enqueue`` INSIDE its own transaction, so the message exists exactly
when the change does (a rolled-back change leaves no message). After commit a
relay is scheduled (``core.relay_outbox``); the periodic sweep (PERIODIC_JOBS)
runs the same relay, so a broker outage only delays delivery.

Delivery (``outbox_relay``):
- per ``key`` strictly in order: only the OLDEST pending message of a key is
  eligible, so message n+1 never leaves while message n is pending or waiting
  for a retry. A dead letter no longer holds its key back (a person decides in
  the dead-letter view; ``outbox_retry`` puts it back in line);
- a message is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and leased
  (``next_attempt_at`` pushed ``OUTBOX_LEASE_SECONDS`` ahead, ``attempts`` + 1) in
  a short transaction; the handler runs AFTER that commit, so no row lock is held
  during a network call. A worker that dies mid-delivery leaves the lease to
  expire and the message is delivered again (at least once: handlers and the
  receiving side must tolerate a repeat);
- a failure is retried with exponential backoff and jitter; after
  ``OUTBOX_MAX_ATTEMPTS`` attempts (or on ``OutboxPermanentError``) the message
  becomes a dead letter.

Handlers are registered per topic by the consuming app in its
``AppConfig.ready`` with ``outbox_handler_register`` (a plain call, no signals).
A handler takes the message and returns normally on success or raises.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.models import OutboxMessage, OutboxStatus

logger = logging.getLogger(__name__)

OutboxHandler = Callable[[OutboxMessage], None]
_HANDLERS: dict[str, OutboxHandler] = {}

RELAY_TASK_NAME = "core.relay_outbox"


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


# --- Settings ------------------------------------------------------------------------


def _max_attempts() -> int:
    return int(getattr(settings, "OUTBOX_MAX_ATTEMPTS", 8))


def _lease_seconds() -> float:
    return float(getattr(settings, "OUTBOX_LEASE_SECONDS", 120))


def outbox_backoff_seconds(*, attempts: int, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1-based).

    ``base * 2 ** (attempts - 1)`` capped at ``OUTBOX_BACKOFF_MAX_SECONDS``, plus up
    to ``OUTBOX_BACKOFF_JITTER`` of itself at random, so messages that failed
    together do not all come back together.
    """
    base = float(getattr(settings, "OUTBOX_BACKOFF_BASE_SECONDS", 5))
    cap = float(getattr(settings, "OUTBOX_BACKOFF_MAX_SECONDS", 3600))
    jitter = float(getattr(settings, "OUTBOX_BACKOFF_JITTER", 0.2))
    delay = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay + delay * jitter * rng()


# --- Writing -------------------------------------------------------------------------


def outbox_enqueue(*, topic: str, key: str, payload: dict, brand_id: int | None = None) -> OutboxMessage:
    """Write one message. Call inside the transaction of the change it reports.

    After that transaction commits, a relay for ``key`` is scheduled (robustly: a
    broker that is down is logged and left to the periodic sweep).
    """
    message = OutboxMessage.objects.create(topic=topic, key=str(key), payload=payload, brand_id=brand_id)
    transaction.on_commit(lambda: outbox_relay_schedule(key=message.key), robust=True)
    return message


def outbox_relay_schedule(*, key: str | None = None) -> None:
    """Ask a worker (or, without a broker, this process) to run the relay now."""
    from core.tasks import relay_outbox_task

    try:
        relay_outbox_task.delay(key=key)
    except Exception:  # the broker is down: the sweep delivers later
        logger.warning("outbox relay could not be scheduled; the sweep will deliver", exc_info=True)


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
        for key in sorted({m.key for m in revived}):
            transaction.on_commit(lambda key=key: outbox_relay_schedule(key=key), robust=True)
    return len(revived)


# --- Delivering ----------------------------------------------------------------------


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
    """Lease up to ``limit`` deliverable messages (one per key) in one short transaction."""
    with transaction.atomic():
        claimed = list(
            _due_heads(now=now, key=key).select_for_update(skip_locked=True).order_by("next_attempt_at", "pk")[:limit]
        )
        if claimed:
            lease_until = now + timedelta(seconds=_lease_seconds())
            for message in claimed:
                message.attempts += 1
                message.next_attempt_at = lease_until
            OutboxMessage.objects.bulk_update(claimed, ["attempts", "next_attempt_at"])
    return claimed


def _deliver(message: OutboxMessage, *, now: datetime, rng: Callable[[], float]) -> bool:
    handler = outbox_handler_for(message.topic)
    permanent = False
    try:
        if handler is None:
            raise LookupError(f"no outbox handler registered for topic {message.topic!r}")
        handler(message)
    except Exception as exc:  # noqa: BLE001 (any failure of a handler is a failed delivery)
        permanent = isinstance(exc, OutboxPermanentError)
        error = f"{type(exc).__name__}: {exc}"[:2000]
    else:
        OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.PENDING).update(
            status=OutboxStatus.DELIVERED, delivered_at=timezone.now(), last_error="",
        )
        return True
    if permanent or message.attempts >= _max_attempts():
        logger.error("outbox message dead-lettered", extra={"outbox_id": message.pk, "topic": message.topic,
                                                            "key": message.key, "error": error})
        OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.PENDING).update(
            status=OutboxStatus.DEAD, last_error=error,
        )
    else:
        retry_at = now + timedelta(seconds=outbox_backoff_seconds(attempts=message.attempts, rng=rng))
        logger.warning("outbox delivery failed; will retry", extra={"outbox_id": message.pk, "topic": message.topic,
                                                                   "attempts": message.attempts, "error": error})
        OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.PENDING).update(
            next_attempt_at=retry_at, last_error=error,
        )
    return False


def outbox_relay(*, limit: int = 100, key: str | None = None, now: datetime | None = None,
                 rng: Callable[[], float] = random.random) -> dict[str, int]:
    """Deliver due messages (all keys, or one ``key``), at most ``limit`` attempts.

    Works in rounds: each round claims the head message of every due key, so a
    key with several messages advances one message per round, in order. Stops
    when nothing is due. Safe to run in several workers at once.
    Returns {"delivered": n, "failed": n}.
    """
    delivered = failed = 0
    while delivered + failed < limit:
        moment = now or timezone.now()
        batch = _claim(now=moment, limit=limit - delivered - failed, key=key)
        if not batch:
            break
        for message in batch:
            if _deliver(message, now=moment, rng=rng):
                delivered += 1
            else:
                failed += 1
    return {"delivered": delivered, "failed": failed}
