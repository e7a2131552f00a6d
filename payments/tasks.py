"""Thin Celery wrappers: take ids, re-read, call one service.

They only bring the payments rows up to date. Acting on a newly succeeded
payment (marking the order paid) belongs to the orders app, whose own job calls
payments.selectors.payments_pending_for_reconcile and
payments.services.payment_reconcile and acts when ``first_time`` is True.
"""

from celery import shared_task

from payments.errors import PaymentProviderError
from payments.models import PaymentRefund, PaymentTransaction
from payments.services import payment_reconcile, refund_reconcile


@shared_task(name="payments.reconcile_payment", autoretry_for=(PaymentProviderError,), retry_backoff=True,
             retry_backoff_max=300, max_retries=5)
def payment_reconcile_task(payment_id: int) -> bool:
    """True when this run recorded the payment as succeeded."""
    out_trade_no = PaymentTransaction.objects.filter(pk=payment_id).values_list("out_trade_no", flat=True).first()
    if out_trade_no is None:
        return False
    result = payment_reconcile(out_trade_no=out_trade_no)
    return bool(result and result.first_time)


@shared_task(name="payments.reconcile_refund", autoretry_for=(PaymentProviderError,), retry_backoff=True,
             retry_backoff_max=300, max_retries=5)
def refund_reconcile_task(refund_id: int) -> bool:
    """True when this run recorded the refund's final status."""
    out_refund_no = PaymentRefund.objects.filter(pk=refund_id).values_list("out_refund_no", flat=True).first()
    if out_refund_no is None:
        return False
    result = refund_reconcile(out_refund_no=out_refund_no)
    return bool(result and result.first_time)
