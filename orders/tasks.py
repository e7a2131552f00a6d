"""Thin Celery wrappers: take ids, call one service, retry with bounded backoff."""

from decimal import Decimal

from celery import shared_task

from orders.services import orders_complete_after_sales
from orders.services.checkout import order_payment_confirm, orders_expire_unpaid


@shared_task(name="orders.expire_unpaid")
def expire_unpaid_orders_task() -> int:
    return orders_expire_unpaid()


@shared_task(name="orders.complete_after_sales")
def complete_after_sales_task() -> int:
    return orders_complete_after_sales()


@shared_task(name="orders.payment_refund", bind=True, max_retries=8, retry_backoff=True, retry_backoff_max=600,
             autoretry_for=(ConnectionError, TimeoutError, OSError))
def payment_refund_task(self, order_no: str, amount: str, refund_ref: str, reason: str) -> str:
    from payments.services import refund_start

    refund = refund_start(order_ref=order_no, refund_ref=refund_ref, amount=Decimal(amount), reason=reason)
    return refund.out_refund_no


@shared_task(name="orders.reconcile_payments")
def reconcile_payments_task() -> int:
    """Recover lost payment notifies by asking the provider (payments.selectors)."""
    from payments.selectors import payments_pending_for_reconcile
    from payments.services import payment_reconcile

    recovered = 0
    for txn in payments_pending_for_reconcile(older_than_seconds=60, limit=200):
        result = payment_reconcile(out_trade_no=txn.out_trade_no)
        if result is not None:
            order_payment_confirm(order_no=result.order_ref, provider=result.provider,
                                  transaction_id=result.transaction_id, amount=result.amount, paid_at=result.paid_at)
            recovered += 1
    return recovered
