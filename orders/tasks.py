"""Thin Celery wrappers: take ids, call one service, retry with bounded backoff."""

import logging
from decimal import Decimal

from celery import shared_task

from orders.services import orders_complete_after_sales
from orders.services.expiry import orders_expire_unpaid
from orders.services.payment import order_payment_confirm
from orders.services.acceptance import orders_handle_unaccepted
from orders.services.refunds import PAYMENT_REFUND_JOB, order_refund_start, order_refunds_follow_up


logger = logging.getLogger(__name__)


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
    """Recover lost payment notifies by asking the provider (payments.selectors):
    payments still open after a minute, and payments we closed in the last day
    (the provider keeps them payable; money that arrives there is refunded by
    ``order_payment_confirm``, the order being cancelled), each at most every 15 min."""
    from payments.selectors import payments_closed_for_reconcile, payments_pending_for_reconcile
    from payments.services import payment_reconcile

    recovered = 0
    candidates = [*payments_pending_for_reconcile(older_than_seconds=60, limit=200),
                  *payments_closed_for_reconcile(window_hours=24, every_seconds=900, limit=200)]
    for txn in candidates:
        try:
            result = payment_reconcile(out_trade_no=txn.out_trade_no)
            if result is not None:
                order_payment_confirm(order_no=result.order_ref, provider=result.provider,
                                      transaction_id=result.transaction_id, amount=result.amount,
                                      paid_at=result.paid_at)
                recovered += 1
        except Exception:  # one payment the provider cannot answer for must not stop the others
            logger.exception("payment reconciliation failed", extra={"out_trade_no": txn.out_trade_no})
    return recovered


@shared_task(name="orders.retry_owed_refunds")
def retry_owed_refunds_task(days: int = 7) -> dict:
    """Follow refunds up until each has ended or a person has it
    (orders.services.refunds.order_refunds_follow_up): start owed ones, ask the
    provider about open ones, start closed ones again, flag what needs a person."""
    result = order_refunds_follow_up(days=days)
    return {"started": result.started, "checked": result.checked, "retried": result.retried,
            "flagged": result.flagged, "settled": result.settled}
