"""Reads of the POS side, every one scoped to one store."""

from django.db.models import Prefetch, QuerySet

from orders.models import Order, OrderLine, OrderStatus, StoreFeedEvent


def pos_orders(*, store_id: int) -> QuerySet[Order]:
    """The store's orders a POS may see: everything but orders still waiting
    for payment (they are not the store's to handle yet). Lines in one query."""
    return (
        Order.objects.filter(store_id=store_id).exclude(status=OrderStatus.PENDING_PAYMENT)
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("line_no")))
    )


def pos_events_unacked(*, store_id: int, limit: int) -> list[StoreFeedEvent]:
    """Unacknowledged feed events of a store, oldest first, with their orders
    and lines: a constant number of queries whatever the count."""
    return list(
        StoreFeedEvent.objects.filter(store_id=store_id, acked_at__isnull=True)
        .select_related("order")
        .prefetch_related(Prefetch("order__lines", queryset=OrderLine.objects.order_by("line_no")))
        .order_by("id")[:limit]
    )
