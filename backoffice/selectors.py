"""Reads of the back-office API: every order query goes through the staff member's scope."""

from django.db.models import QuerySet

from core.errors import NotFound
from core.tenancy import TenantScope, scope_queryset
from orders.models import Order


def order_list_for_staff(*, scope: TenantScope) -> QuerySet[Order]:
    """The orders ``scope`` reaches, with their store, newest first."""
    return scope_queryset(Order.objects.select_related("store"), scope).order_by("-placed_at", "-id")


def order_get_for_staff(*, scope: TenantScope, order_no: str) -> Order:
    """``access_*`` style fetch of one order with its store, lines and events: an
    order outside ``scope`` is not found (NotFound ``order_not_found``)."""
    queryset = scope_queryset(Order.objects.select_related("store"), scope).prefetch_related("lines", "events")
    try:
        return queryset.get(order_no=order_no)
    except Order.DoesNotExist:
        raise NotFound(code="order_not_found") from None
