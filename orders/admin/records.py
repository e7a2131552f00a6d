"""Order lines, discounts, events and voucher codes on their own lists, and the day sequence counters.

All read-only: lines and discounts are written by orders.services with the
order; events are the append-only audit trail (no add, change or delete for
anyone, superusers included); day sequences are not tenant-owned, so only
superusers see them. Lines, discounts and events are internal records on their
own: brand admins see the lists, a store's people read them on the order's page
(its inlines). Voucher codes stay with every role: the counter looks codes up.
"""

from django.contrib import admin

from accounts.admin_base import BRAND_ADMIN, ReadOnlyTenantAdmin
from orders.models import DaySequence, OrderDiscount, OrderEvent, OrderLine, VoucherCode

INTERNAL = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}


@admin.register(OrderLine)
class OrderLineAdmin(ReadOnlyTenantAdmin):
    role_permissions = INTERNAL
    list_display = ["order", "line_no", "sku_code", "name", "spec", "unit_price", "quantity", "line_total"]
    list_select_related = ["order"]
    search_fields = ["=order__order_no", "=sku_code"]
    exclude = ["sku"]


@admin.register(OrderDiscount)
class OrderDiscountAdmin(ReadOnlyTenantAdmin):
    role_permissions = INTERNAL
    list_display = ["order", "kind", "name", "amount", "merchant_part", "platform_part"]
    list_select_related = ["order"]
    list_filter = ["kind"]
    search_fields = ["=order__order_no", "=reference"]


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyTenantAdmin):
    """The append-only audit trail."""

    role_permissions = INTERNAL
    list_display = ["created_at", "order", "action", "from_status", "to_status", "actor_kind", "actor_name",
                    "reason"]
    list_select_related = ["order"]
    list_filter = ["action", "actor_kind"]
    search_fields = ["=order__order_no"]


@admin.register(VoucherCode)
class VoucherCodeAdmin(ReadOnlyTenantAdmin):
    """E-voucher codes: look a code up to see its order, state and who redeemed it."""

    list_display = ["code", "order", "sku_code", "state", "issued_at", "redeemed_at", "redeemed_by_kind",
                    "redeemed_by_name"]
    list_select_related = ["order"]
    list_filter = ["state", "redeemed_by_kind"]
    search_fields = ["=code", "=order__order_no"]


@admin.register(DaySequence)
class DaySequenceAdmin(ReadOnlyTenantAdmin):
    """Not tenant-owned (no tenant_brand_lookup): superusers only."""

    role_permissions = {"view": set(), "add": set(), "change": set(), "delete": set()}
    list_display = ["store", "business_date", "last_value"]
    list_select_related = ["store"]
    date_hierarchy = "business_date"
    ordering = ["-business_date"]
    readonly_fields = ["store", "business_date", "last_value"]
