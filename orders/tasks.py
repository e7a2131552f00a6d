"""Thin Celery wrappers: take ids, call one service, retry with bounded backoff."""

from decimal import Decimal

from celery import shared_task

from orders.services import orders_complete_after_sales
from orders.services.acceptance import orders_handle_unaccepted
from orders.services.expiry import orders_expire_unpaid
from orders.services.reconcile import orders_payments_reconcile
from orders.services.refunds import PAYMENT_REFUND_JOB, order_refund_start, order_refunds_follow_up


@shared_task(name="orders.expire_unpaid")
def expire_unpaid_orders_task() -> int:
    return orders_expire_unpaid()


@shared_task(name="orders.handle_unaccepted")
def handle_unaccepted_orders_task() -> dict:
    """Paid orders past their channel's acceptance limit: own channels rejected, platform ones flagged."""
    result = orders_handle_unaccepted()
    return {"rejected": result.rejected, "flagged": result.flagged}


@shared_task(name="orders.complete_after_sales")
def complete_after_sales_task() -> int:
    return orders_complete_after_sales()


@shared_task(name=PAYMENT_REFUND_JOB, bind=True, max_retries=8, retry_backoff=True, retry_backoff_max=600,
             autoretry_for=(ConnectionError, TimeoutError, OSError))
def payment_refund_task(self, order_no: str, amount: str, refund_ref: str, reason: str) -> str:
    return order_refund_start(order_no=order_no, amount=Decimal(amount), refund_ref=refund_ref, reason=reason)


@shared_task(name="orders.reconcile_payments")
def reconcile_payments_task() -> int:
    """Recover lost payment notifies by asking the provider
    (orders.services.reconcile.orders_payments_reconcile)."""
    return orders_payments_reconcile()


@shared_task(name="orders.retry_owed_refunds")
def retry_owed_refunds_task(days: int = 7) -> dict:
    """Follow refunds up until each has ended or a person has it
    (orders.services.refunds.order_refunds_follow_up): start owed ones, ask the
    provider about open ones, start closed ones again, flag what needs a person."""
    result = order_refunds_follow_up(days=days)
    return {"started": result.started, "checked": result.checked, "retried": result.retried,
            "flagged": result.flagged, "settled": result.settled}
