"""Reads of the POS side, every one scoped to one store."""

from django.db import connection
from django.db.models import Prefetch, QuerySet

from aftersales.models import AfterSalesRequest
from aftersales.selectors import aftersales_list
from orders.models import Order, OrderLine, OrderStatus, StoreFeedEvent


def pos_orders(*, store_id: int) -> QuerySet[Order]:
    """The store's orders a POS may see: everything but orders still waiting
    for payment (they are not the store's to handle yet). Lines in one query."""
    return (
        Order.objects.filter(store_id=store_id).exclude(status=OrderStatus.PENDING_PAYMENT)
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("line_no")))
    )


# The probe of an idle poll: one row of the partial index ``store_feed_unacked_idx``.
# Plain SQL because building the ORM query costs more than running it, and most
# polls of a POS find nothing (benchmarked in bench/pos_feed.py).
_UNACKED_PROBE_SQL = (
    f"SELECT 1 FROM {StoreFeedEvent._meta.db_table} WHERE store_id = %s AND acked_at IS NULL LIMIT 1"
)


def pos_events_pending(*, store_id: int) -> bool:
    """Whether the store has any unacknowledged feed event (one index probe)."""
    with connection.cursor() as cursor:
        cursor.execute(_UNACKED_PROBE_SQL, [store_id])
        return cursor.fetchone() is not None


def pos_events_unacked(*, store_id: int, limit: int) -> list[StoreFeedEvent]:
    """Unacknowledged feed events of a store, oldest first, with their orders
    and lines: a constant number of queries whatever the count (one when there
    are none, three when there are some)."""
    if not pos_events_pending(store_id=store_id):
        return []
    return list(
        StoreFeedEvent.objects.filter(store_id=store_id, acked_at__isnull=True)
        .select_related("order").defer("order__raw_payload")  # the platform's payload: never in a POS answer
        .prefetch_related(Prefetch("order__lines", queryset=OrderLine.objects.order_by("line_no")))
        .order_by("id")[:limit]
    )


def pos_after_sales(*, store_id: int, status: str | None = None):
    """The store's after-sales requests, newest first, with their orders and lines."""
    return aftersales_list(store_id=store_id, status=status)


def pos_after_sales_get(*, store_id: int, request_id: int) -> AfterSalesRequest | None:
    return aftersales_list(store_id=store_id).filter(pk=request_id).first()


def pos_after_sales_for_events(*, events: list[StoreFeedEvent]) -> dict[int, AfterSalesRequest]:
    """The after-sales requests the ``aftersales.*`` events of a page name, by id: one
    query (two with their lines) for the page, none when it has no such event."""
    ids = {event.after_sales_id for event in events if event.after_sales_id}
    if not ids:
        return {}
    store_ids = {event.store_id for event in events}
    return {request.pk: request for request in aftersales_list().filter(pk__in=ids, store_id__in=store_ids)}
