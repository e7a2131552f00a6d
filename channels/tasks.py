"""Thin Celery wrappers around channels.services."""

from celery import shared_task

from channels.services import binding_pull, bindings_schedule_due, platform_orders_reconcile, store_states_reconcile
from channels.services.pull import PULL_BINDING_JOB


@shared_task(name="channels.schedule_due_pulls", work_keys=())
def schedule_due_pulls_task() -> int:
    """Periodic: start a pull for every binding whose time has come."""
    return len(bindings_schedule_due())


@shared_task(name=PULL_BINDING_JOB, work_keys=("created", "errors"))
def pull_binding_task(binding_id: int) -> dict:
    result = binding_pull(binding_id=binding_id)
    return {"pulled": result.pulled, "created": result.created, "errors": result.errors, "skipped": result.skipped}


@shared_task(name="channels.reconcile_platform_orders", work_keys=("changed", "errors"))
def reconcile_platform_orders_task() -> dict:
    """Periodic: ask the platforms about open orders (lost cancellations, refunds, deliveries)."""
    result = platform_orders_reconcile()
    return {"checked": result.checked, "changed": result.changed, "errors": result.errors}


@shared_task(name="channels.reconcile_store_states", work_keys=("drifted", "errors"))
def reconcile_store_states_task() -> dict:
    """Periodic: the platforms' open / closed view of our shops compared with ours; drift repaired."""
    result = store_states_reconcile()
    return {"checked": result.checked, "drifted": len(result.drifted), "errors": result.errors}
