"""Recovering lost payment notifies (the job ``reconcile-payments``).

A payment whose notify never reached us is found by asking the provider
(``payments.services.payment_reconcile``); what the provider reports paid is
confirmed on its order like a notify would (``order_payment_confirm``).
"""

import logging

from orders.services.payment import order_payment_confirm
from payments.selectors import payments_closed_for_reconcile, payments_pending_for_reconcile
from payments.services import payment_reconcile

logger = logging.getLogger(__name__)


def orders_payments_reconcile(*, limit: int = 200) -> int:
    """Ask the provider about payments still open after a minute, and payments we
    closed in the last day (the provider keeps them payable; money that arrives
    there is refunded by ``order_payment_confirm``, the order being cancelled),
    each at most every 15 min, up to ``limit`` of each kind. Returns how many
    payments were found paid.

    Call it outside any transaction: the provider is called over HTTP
    (payments.services' precondition). A payment the provider cannot answer for
    is logged and does not stop the others."""
    recovered = 0
    candidates = [*payments_pending_for_reconcile(older_than_seconds=60, limit=limit),
                  *payments_closed_for_reconcile(window_hours=24, every_seconds=900, limit=limit)]
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
