"""Admin of the promotion center: brand admins manage promotions and coupon templates.

Coupons are issued here through promotions.services.coupon_issue (the form
asks only for the template and the customer; the code is generated); their
status then changes only through the services, so it is read-only here.
Flash-sale usages and reservations are read-only records.
"""

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.admin import SameBrandForm
from accounts.admin_base import BRAND_ADMIN, TenantAdmin
from promotions.models import Coupon, CouponTemplate, FlashSaleReservation, FlashSaleUsage, Promotion
from promotions.services import coupon_issue

BRAND_DATA = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN}, "change": {BRAND_ADMIN}, "delete": {BRAND_ADMIN}}
READ_ONLY = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}


class PromotionForm(SameBrandForm):
    """Stores, SKUs and categories of a promotion belong to its brand."""

    class Meta:
        model = Promotion
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        brand = cleaned.get("brand") or (self.instance.brand if self.instance.brand_id else None)
        if brand is None:
            return cleaned
        for name in ("stores", "target_skus", "target_categories"):
            if any(item.brand_id != brand.pk for item in cleaned.get(name) or ()):
                self.add_error(name, _("All references of this row must belong to the same brand."))
        return cleaned


@admin.register(Promotion)
class PromotionAdmin(TenantAdmin):
    form = PromotionForm
    role_permissions = BRAND_DATA
    list_display = ["name", "kind", "brand", "priority", "exclusive_group", "starts_at", "ends_at", "is_active"]
    list_select_related = ["brand"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "exclusive_group"]
    filter_horizontal = ["stores", "target_skus", "target_categories"]
    readonly_fields = ["created_at"]
    fieldsets = [
        (None, {"fields": ["brand", "name", "kind", "is_active", "starts_at", "ends_at", "order_types"]}),
        (_("Where"), {"fields": ["all_stores", "stores"]}),
        (_("Stacking"), {"fields": ["priority", "exclusive_group", "stackable_with_coupons", "member_stackable"]}),
        (_("Full reduction"), {"fields": ["tiers"]}),
        (_("Targets (item discount, flash sale, optional for full reduction)"),
         {"fields": ["target_skus", "target_categories"]}),
        (_("Item discount"), {"fields": ["discount_rate", "fixed_price"]}),
        (_("Flash sale"), {"fields": ["flash_price", "purchase_limit", "force_deduct_on_order"]}),
        (_("Delivery fee waiver"), {"fields": ["min_spend", "max_waiver"]}),
        (_("Record"), {"fields": ["created_at"]}),
    ]


@admin.register(CouponTemplate)
class CouponTemplateAdmin(TenantAdmin):
    form = SameBrandForm
    role_permissions = BRAND_DATA
    list_display = ["name", "kind", "value", "min_spend", "brand", "valid_days", "valid_until", "is_active"]
    list_select_related = ["brand"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name"]
    readonly_fields = ["created_at"]


class CouponIssueForm(forms.ModelForm):
    """Issuing: pick the template and the customer; the service does the rest."""

    class Meta:
        model = Coupon
        fields = ["template", "customer"]

    def clean(self):
        cleaned = super().clean()
        template, customer = cleaned.get("template"), cleaned.get("customer")
        if template is not None and customer is not None and template.brand_id != customer.brand_id:
            self.add_error("customer", _("All references of this row must belong to the same brand."))
        if template is not None and not template.is_active:
            self.add_error("template", _("This coupon template no longer issues coupons."))
        elif template is not None and template.valid_days is None and template.valid_until <= timezone.now():
            self.add_error("template", _("This coupon template's validity has ended."))
        return cleaned


@admin.register(Coupon)
class CouponAdmin(TenantAdmin):
    role_permissions = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN}, "change": set(), "delete": set()}
    list_display = ["code", "template", "customer", "status", "valid_until", "order_ref", "used_at"]
    list_select_related = ["template", "customer"]
    list_filter = ["status"]
    search_fields = ["=code", "=order_ref", "=customer__phone"]
    readonly_fields = ["code", "template", "customer", "status", "order_ref", "valid_from", "valid_until",
                       "issued_at", "reserved_at", "used_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = CouponIssueForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return ["template", "customer"] if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return
        issued = coupon_issue(template_id=obj.template_id, customer_id=obj.customer_id, now=timezone.now())
        for model_field in Coupon._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(issued, model_field.attname))
        obj._state = issued._state


@admin.register(FlashSaleUsage)
class FlashSaleUsageAdmin(TenantAdmin):
    role_permissions = READ_ONLY
    list_display = ["promotion", "customer", "used", "limit", "updated_at"]
    list_select_related = ["promotion", "customer"]
    search_fields = ["=customer__phone", "promotion__name"]


@admin.register(FlashSaleReservation)
class FlashSaleReservationAdmin(TenantAdmin):
    role_permissions = READ_ONLY
    list_display = ["order_ref", "promotion", "customer", "quantity", "released", "created_at", "released_at"]
    list_select_related = ["promotion", "customer"]
    list_filter = ["released"]
    search_fields = ["=order_ref"]
