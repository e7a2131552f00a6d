"""Row locks on orders, taken only through these helpers.

Several orders are always locked in primary-key order, so two callers that
lock overlapping sets cannot deadlock.
"""

from django.db.models import QuerySet

from core.errors import NotFound
from orders.models import Order


def order_lock(*, order_id: int, store_id: int | None = None, skip_locked: bool = False) -> Order:
    """SELECT ... FOR UPDATE one order. Must be called inside a transaction.

    With ``store_id`` an order of another store is "not found" (tenancy).
    With ``skip_locked`` an order another transaction holds is "not found"
    too (batch jobs skip it instead of waiting).
    """
    queryset = Order.objects.select_for_update(of=("self",), skip_locked=skip_locked)
    if store_id is not None:
        queryset = queryset.filter(store_id=store_id)
    try:
        return queryset.get(pk=order_id)
    except Order.DoesNotExist:
        raise NotFound(code="order_not_found") from None


def order_lock_by_no(*, order_no: str, store_id: int | None = None) -> Order:
    """As ``order_lock``, by order number."""
    queryset = Order.objects.select_for_update(of=("self",))
    if store_id is not None:
        queryset = queryset.filter(store_id=store_id)
    try:
        return queryset.get(order_no=order_no)
    except Order.DoesNotExist:
        raise NotFound(code="order_not_found") from None


def orders_lock_in_order(*, order_ids: list[int]) -> QuerySet[Order]:
    return Order.objects.select_for_update(of=("self",)).filter(pk__in=order_ids).order_by("pk")
