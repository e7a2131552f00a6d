"""Payment workflows: start a payment, record the provider's notifies, reconcile,
refund. Keyword-only, ``<entity>_<verb>``: ``payment`` (start, close, notify,
reconcile), ``refund`` (start, notify, reconcile, retry, escalation marks),
``notify`` (the provider's one notify URL).

Orders calls these with its opaque order_no (``order_ref``) and acts on the
results (``first_time`` says whether this call is the one that changed the
payment, so the caller marks the order paid exactly once). Preconditions common
to the functions that call the provider (payment_start, payment_reconcile,
refund_start, refund_retry, refund_reconcile): call them OUTSIDE any transaction;
they commit their own rows before the HTTP call and hold no lock during it.
"""

from payments.services.notify import provider_notify_record
from payments.services.payment import (
    PaymentResult,
    payment_close,
    payment_notify_record,
    payment_reconcile,
    payment_start,
    payments_close_for_orders,
)
from payments.services.refund import (
    RefundResult,
    refund_next_check,
    refund_notify_record,
    refund_out_no,
    refund_person_done,
    refund_reconcile,
    refund_retry,
    refund_start,
    refunds_mark_escalated,
)

__all__ = [
    "PaymentResult",
    "RefundResult",
    "payment_close",
    "payment_notify_record",
    "payment_reconcile",
    "payment_start",
    "payments_close_for_orders",
    "provider_notify_record",
    "refund_next_check",
    "refund_notify_record",
    "refund_out_no",
    "refund_person_done",
    "refund_reconcile",
    "refund_retry",
    "refund_start",
    "refunds_mark_escalated",
]
