from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.utils.functional import SimpleLazyObject

from accounts.models import Brand, Store
from catalog.models import Product, Sku, StoreSku
from core.errors import NotFound
from core.rowread import Join, JoinedRead
from core.tenancy import TenantScope, scope_queryset
from inventory.models import Stock
from orders.models import Order, OrderEvent, OrderLine


def order_list_for_scope(*, scope: TenantScope) -> QuerySet[Order]:
    return scope_queryset(Order.objects.select_related("store", "brand"), scope)


def order_get_by_no_for_scope(*, scope: TenantScope, order_no: str) -> Order:
    """``access_*`` style fetch: another tenant's order is not found."""
    try:
        return (
            order_list_for_scope(scope=scope)
            .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("line_no")), "discounts")
            .get(order_no=order_no)
        )
    except Order.DoesNotExist:
        raise NotFound(code="order_not_found") from None


def order_timeline(*, order_id: int) -> QuerySet[OrderEvent]:
    return OrderEvent.objects.filter(order_id=order_id).order_by("id")


def _cart_rows_read() -> JoinedRead:
    q = connection.ops.quote_name
    return JoinedRead(
        StoreSku, (Join(Store, StoreSku, "store"), Join(Brand, Store, "brand"), Join(Sku, StoreSku, "sku"),
                   Join(Product, Sku, "product")),
        where=("store_id", "t1.brand_id", "t3.code IN"),
        extra=(("on_hand", f"SELECT s.{q('on_hand')} FROM {q(Stock._meta.db_table)} s WHERE s.{q('store_id')} "
                           f"= t0.{q('store_id')} AND s.{q('sku_id')} = t0.{q('sku_id')}"),))


_CART_ROWS = SimpleLazyObject(_cart_rows_read)


def cart_rows(*, store_id: int, brand_id: int, sku_codes: list[str]) -> list[StoreSku]:
    """A cart's SKU rows at a store of the brand, with the store, SKU, product and
    stock (``on_hand``; None when untracked): one query, as plain SQL built once
    (``StoreSku.objects.filter(store_id=, store__brand_id=, sku__code__in=)
    .select_related("store__brand", "sku__product").annotate(on_hand=...)``: building
    that query cost more than running it)."""
    return _CART_ROWS.all(store_id, brand_id, sorted(set(sku_codes)))
