"""Writes to orders. ``creation``: day numbers and order creation; ``core``:
the one transition service and its shortcuts; ``checkout``: own-channel ordering
(price, place, pay, expire); ``placement``: batched own-channel placement."""

from orders.services.core import (
    CONFIRM_ACTION,
    event_write,
    order_accept,
    order_cancel,
    order_confirm,
    order_contact_update,
    order_mark_ready,
    order_reject,
    order_transition,
    orders_complete_after_sales,
)
from orders.services.creation import (
    DiscountInput,
    LineInput,
    business_date_of,
    day_seq_next,
    order_create,
    order_number_for,
)

__all__ = [
    "CONFIRM_ACTION",
    "DiscountInput",
    "LineInput",
    "business_date_of",
    "day_seq_next",
    "event_write",
    "order_accept",
    "order_cancel",
    "order_confirm",
    "order_contact_update",
    "order_create",
    "order_mark_ready",
    "order_number_for",
    "order_reject",
    "order_transition",
    "orders_complete_after_sales",
]
