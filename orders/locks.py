"""Row locks on orders, taken only through these helpers.

Batch jobs that lock many orders do it in one ``SELECT ... ORDER BY ... FOR
UPDATE SKIP LOCKED`` (see orders.services.checkout.orders_expire_unpaid).
"""

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

