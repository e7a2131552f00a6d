"""Row locks on orders, taken only through these helpers.

Batch jobs that lock many orders do it in one ``SELECT ... ORDER BY ... FOR
UPDATE SKIP LOCKED`` (see orders.services.expiry.orders_expire_unpaid).
"""

from core.errors import NotFound
from orders.models import Order


def _order_locked(*, store_id: int | None, **lookup) -> Order:
    queryset = Order.objects.select_for_update(of=("self",))
    if store_id is not None:
        queryset = queryset.filter(store_id=store_id)
    try:
        return queryset.get(**lookup)
    except Order.DoesNotExist:
        raise NotFound(code="order_not_found") from None


def order_lock(*, order_id: int, store_id: int | None = None) -> Order:
    """SELECT ... FOR UPDATE one order. Must be called inside a transaction.

    With ``store_id`` an order of another store is "not found" (tenancy).
    """
    return _order_locked(store_id=store_id, pk=order_id)


def order_lock_by_no(*, order_no: str, store_id: int | None = None) -> Order:
    """As ``order_lock``, by order number."""
    return _order_locked(store_id=store_id, order_no=order_no)
