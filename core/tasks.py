from celery import shared_task

from core.idempotency import idempotency_records_purge


@shared_task(name="core.purge_idempotency_records")
def purge_idempotency_records_task() -> int:
    return idempotency_records_purge()


@shared_task(name="core.relay_outbox")
def relay_outbox_task(key: str | None = None, limit: int = 200) -> dict:
    """Deliver due outbox messages: after a commit (one key) and as the periodic sweep (all keys)."""
    from core.outbox import outbox_relay

    return outbox_relay(limit=limit, key=key)
