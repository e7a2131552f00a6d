"""Thin Celery wrappers of the after-sales jobs."""

from celery import shared_task

from aftersales.services import aftersales_deadlines_run, aftersales_refunds_sync


@shared_task(name="aftersales.deadlines")
def aftersales_deadlines_task() -> dict:
    """Own-channel requests past their deadline approved (or escalated, per brand);
    requests near their deadline flagged."""
    result = aftersales_deadlines_run()
    return {"approved": result.approved, "escalated": result.escalated, "warned": result.warned}


@shared_task(name="aftersales.refunds_sync")
def aftersales_refunds_sync_task() -> int:
    """Requests whose refund ended without a notify reaching us: completed or failed."""
    return aftersales_refunds_sync()
