from django.db.models import Prefetch, QuerySet

from core.errors import NotFound
from core.tenancy import TenantScope, scope_queryset
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
