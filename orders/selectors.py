from django.db.models import Prefetch, QuerySet

from catalog.models import StoreSku
from core.errors import NotFound
from core.tenancy import TenantScope, scope_queryset
from inventory.selectors import stock_on_hand_subquery
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


def cart_rows(*, store_id: int, brand_id: int, sku_codes: list[str]) -> list[StoreSku]:
    """A cart's SKU rows at a store of the brand, with the store, SKU, product and
    stock (``on_hand``; None when untracked): one query."""
    return list(
        StoreSku.objects.filter(store_id=store_id, store__brand_id=brand_id, sku__code__in=sku_codes)
        .select_related("store__brand", "sku__product")
        .annotate(on_hand=stock_on_hand_subquery())
    )
