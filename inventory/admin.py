from django.contrib import admin

from accounts.admin_base import BRAND_ADMIN, MANAGERS, TenantAdmin, TenantInline
from inventory.models import Stock, StockMovement, StockShortfall


class StockMovementInline(TenantInline):
    model = StockMovement
    fields = ["created_at", "delta", "reason", "reference", "note"]
    readonly_fields = fields
    can_delete = False
    role_permissions = {"view": MANAGERS}
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Stock)
class StockAdmin(TenantAdmin):
    list_display = ["store", "sku", "on_hand", "updated_at"]
    list_filter = ["store"]
    search_fields = ["sku__code", "sku__product__name"]
    list_select_related = ["store", "sku__product"]
    readonly_fields = ["store", "sku", "on_hand"]
    inlines = [StockMovementInline]
    role_permissions = {"view": MANAGERS}


@admin.register(StockMovement)
class StockMovementAdmin(TenantAdmin):
    list_display = ["created_at", "stock", "delta", "reason", "reference"]
    list_filter = ["reason"]
    search_fields = ["reference"]
    list_select_related = ["stock__store", "stock__sku"]
    role_permissions = {"view": MANAGERS}

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StockShortfall)
class StockShortfallAdmin(TenantAdmin):
    list_display = ["created_at", "store", "sku", "reference", "quantity", "resolved"]
    list_filter = ["resolved", "store"]
    list_select_related = ["store", "sku"]
    fields = ["store", "sku", "reference", "quantity", "resolved"]
    readonly_fields = ["store", "sku", "reference", "quantity"]
    role_permissions = {"view": MANAGERS, "change": {BRAND_ADMIN}}
