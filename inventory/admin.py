from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_base import BRAND_ADMIN, MANAGERS, TenantAdmin, TenantInline
from inventory.models import Stock, StockMovement, StockShortfall
from inventory.services import stock_set


class StockMovementInline(TenantInline):
    model = StockMovement
    fields = ["created_at", "delta", "reason", "reference", "note"]
    readonly_fields = fields
    can_delete = False
    role_permissions = {"view": MANAGERS}
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False


class StockCountForm(forms.ModelForm):
    note = forms.CharField(label=_("note"), max_length=200, required=False,
                           help_text=_("Why the count changed (delivery, spoilage, recount); kept in the ledger."))

    class Meta:
        model = Stock
        fields = ["on_hand"]
        labels = {"on_hand": _("counted on hand")}
        help_texts = {"on_hand": _("The units at the store now. The difference is written to the ledger as an "
                                   "adjustment; at zero the SKU is sold out on every channel, above zero it is "
                                   "back on sale (unless sold out by hand).")}


@admin.register(Stock)
class StockAdmin(TenantAdmin):
    """Managers count the stock: the new on-hand goes through inventory.stock_set (a ledger
    adjustment, sold out / back on sale on every channel when it crosses zero)."""

    form = StockCountForm
    list_display = ["store", "sku", "on_hand", "updated_at"]
    list_filter = ["store"]
    search_fields = ["sku__code", "sku__product__name"]
    list_select_related = ["store", "sku__product"]
    readonly_fields = ["store", "sku"]
    fields = ["store", "sku", "on_hand", "note"]
    inlines = [StockMovementInline]
    role_permissions = {"view": MANAGERS, "change": MANAGERS}

    def has_add_permission(self, request):
        return False  # stock starts being tracked with a first count (inventory.stock_set), not a blank row

    def save_model(self, request, obj, form, change):
        if change and "on_hand" in form.changed_data:
            stock_set(store_id=obj.store_id, sku_id=obj.sku_id, on_hand=form.cleaned_data["on_hand"],
                      note=(form.cleaned_data.get("note") or _("counted in the back-office"))[:255])
            obj.refresh_from_db()


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
