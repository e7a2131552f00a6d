from celery import shared_task

from core.idempotency import idempotency_records_purge
from core import outbox
from core.outbox import RELAY_TASK_NAME


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records_task() -> int:
    return idempotency_records_purge()


@shared_task(name=RELAY_TASK_NAME)
def relay_outbox_task(key: str | None = None, limit: int = 500) -> dict:
    """Deliver due outbox messages: kicked after commits (coalesced) and as the periodic sweep.

    Clears the kick flag before claiming (see core.outbox); kicks another relay
    when a round comes back full (a backlog: other worker processes join in) and
    when it stopped at ``limit`` with more possibly due. ``key`` (one key only)
    is accepted for relays queued by older code."""
    outbox.outbox_kick_clear()
    result = outbox.outbox_relay(limit=limit, key=key, on_backlog=outbox.outbox_relay_kick)
    if result["delivered"] + result["failed"] >= limit:
        outbox.outbox_relay_kick()
    return result
