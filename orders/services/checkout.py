"""Own-channel ordering: ``order_place`` chooses the way a cart is placed, batched
with others (orders.services.placement) or on its own (orders.services.cart)."""

from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from accounts.models import Customer
from orders.models import Order
from orders.services.cart import Cart
from orders.services.placement import placement_submit


def order_place(*, customer: Customer, cart: Cart, channel: str, now: datetime | None = None,
                on_created: Callable[[Order], None] | None = None) -> Order:
    """Create an unpaid own-channel order: priced on the server, coupons and
    purchase limits reserved, on-order stock taken, all in one transaction.

    ``on_created(order)`` runs inside that transaction once the order and its
    lines are written, before the reservations and the stock deduction (so before
    the hot stock row is locked): the customer API renders and stores its
    Idempotency-Key answer there, so the order and its answer commit together.

    Called outside a transaction on PostgreSQL, placements that arrive at the
    same time in one process are written together, a batch per transaction
    (``orders.services.placement``): same checks, same answers, one COMMIT."""
    return placement_submit(customer=customer, cart=cart, channel=channel, now=now or timezone.now(),
                            on_created=on_created)
