"""Writes to orders. ``core``: creation and the one transition service;
``checkout``: own-channel ordering (price, place, pay, expire)."""

from orders.services.core import (
    CONFIRM_ACTION,
    DiscountInput,
    LineInput,
    business_date_of,
    day_seq_next,
    event_write,
    order_accept,
    order_cancel,
    order_confirm,
    order_contact_update,
    order_create,
    order_mark_ready,
    order_number_for,
    order_reject,
    order_transition,
    orders_complete_after_sales,
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
