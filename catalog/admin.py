"""Admin for the brand's menu.

Brand admins manage the catalog and the platform SKU mappings; store staff may
look at it. A store manager switches a StoreSku's availability (sold out) for
their own store and nothing else; clerks only look.
"""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin import SameBrandForm
from accounts.admin_base import ALL_ROLES, BRAND_ADMIN, MANAGERS, TenantAdmin, roles_at
from catalog.models import Category, Platform, PlatformSkuMapping, Product, Sku, StoreSku
from catalog.services import store_sku_set_availability
from core.actors import Actor


class SkuChoicesMixin:
    """SKU dropdowns show the product name: load it with the choices, not once per option."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "sku" and formfield is not None:
            formfield.queryset = formfield.queryset.select_related("product")
        return formfield

CATALOG = {"view": ALL_ROLES, "add": {BRAND_ADMIN}, "change": {BRAND_ADMIN}, "delete": {BRAND_ADMIN}}


@admin.register(Category)
class CategoryAdmin(TenantAdmin):
    form = SameBrandForm
    role_permissions = CATALOG
    list_display = ["name", "brand", "sort_order"]
    list_select_related = ["brand"]
    search_fields = ["name"]


@admin.register(Product)
class ProductAdmin(TenantAdmin):
    form = SameBrandForm
    role_permissions = CATALOG
    list_display = ["name", "brand", "category", "is_active", "sort_order"]
    list_select_related = ["brand", "category"]
    list_filter = ["is_active"]
    search_fields = ["name"]


class UnmappedOnPlatformFilter(admin.SimpleListFilter):
    """SKUs no mapping names on a platform yet (neither by hand nor learnt from an order):
    their sold-out reaches that platform only by our merchant code."""

    title = _("not mapped on")
    parameter_name = "unmapped_on"

    def lookups(self, request, model_admin):
        return Platform.choices

    def queryset(self, request, queryset):
        if self.value() in Platform.values:
            return queryset.exclude(platform_mappings__platform=self.value())
        return queryset


@admin.register(Sku)
class SkuAdmin(TenantAdmin):
    form = SameBrandForm
    role_permissions = CATALOG
    list_display = ["code", "product", "spec", "price", "packaging_fee", "stock_mode", "is_active"]
    list_select_related = ["product"]
    list_filter = ["stock_mode", "is_active", UnmappedOnPlatformFilter]
    search_fields = ["=code", "product__name"]


@admin.register(StoreSku)
class StoreSkuAdmin(SkuChoicesMixin, TenantAdmin):
    form = SameBrandForm
    role_permissions = {"view": ALL_ROLES, "add": {BRAND_ADMIN}, "change": MANAGERS, "delete": {BRAND_ADMIN}}
    list_display = ["store", "sku_code", "sku_name", "price", "is_available", "stock_out", "on_sale_display",
                    "updated_at"]
    list_select_related = ["store", "sku__product"]
    list_filter = ["is_available", "stock_out"]
    search_fields = ["=sku__code", "sku__product__name"]
    readonly_fields = ["stock_out", "updated_at"]

    @admin.display(description=_("on sale on the channels"), boolean=True)
    def on_sale_display(self, obj: StoreSku) -> bool:
        return obj.on_sale

    @admin.display(description=_("merchant SKU code"), ordering="sku__code")
    def sku_code(self, obj: StoreSku) -> str:
        return obj.sku.code

    @admin.display(description=_("name"))
    def sku_name(self, obj: StoreSku) -> str:
        return obj.sku.display_name

    def get_readonly_fields(self, request, obj=None):
        if obj is None or request.user.is_superuser or BRAND_ADMIN in roles_at(user=request.user, obj=obj,
                                                                                right="change"):
            return ["stock_out", "updated_at"]
        return ["store", "sku", "price", "stock_out", "updated_at"]

    def save_model(self, request, obj, form, change):
        """Availability goes through the catalog service, so a sold-out (沽清) set
        here reaches every bound platform like one from the POS."""
        if change and "is_available" in form.changed_data:
            available = obj.is_available
            obj.is_available = not available  # let the service see and record the change
            super().save_model(request, obj, form, change)
            store_sku_set_availability(store_id=obj.store_id, sku_id=obj.sku_id, available=available,
                                       actor=Actor.staff(request.user))
            obj.refresh_from_db()
            return
        super().save_model(request, obj, form, change)


@admin.register(PlatformSkuMapping)
class PlatformSkuMappingAdmin(SkuChoicesMixin, TenantAdmin):
    form = SameBrandForm
    role_permissions = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN}, "change": {BRAND_ADMIN},
                        "delete": {BRAND_ADMIN}}
    list_display = ["platform", "platform_sku_id", "platform_food_code", "sku", "store", "brand", "learnt"]
    list_select_related = ["sku__product", "store", "brand"]
    list_filter = ["platform", "learnt"]
    search_fields = ["=platform_sku_id", "=platform_food_code", "=sku__code"]
