"""Admin for brands, stores, staff, member tiers, customers and back-office users.

Who may do what (superusers may do everything):
- brand admins manage their brand's data: the brand's settings, stores, staff
  memberships, member tiers and customers;
- store managers see their store and change only its operating settings
  (mode, auto-accept, prep minutes);
- clerks see their store, read-only.

Back-office users (``auth.User``): a brand admin sees only the users holding a
membership in one of their brands, read-only; creating accounts, passwords,
superuser flags and Django permissions stay with platform operators
(superusers). That keeps one brand from ever listing, or taking over, another
brand's staff accounts.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.admin_base import ALL_ROLES, BRAND_ADMIN, MANAGERS, ReadOnlyTenantAdmin, TenantAdmin, roles_at
from accounts.models import Brand, Customer, CustomerToken, MemberTier, StaffMembership, Store, mask_phone
from accounts.models import LoginCode, LoginCodeAttempt
from accounts.selectors import roles_for_user, scope_for_user
from accounts.store_state import store_state_set
from core.actors import Actor
from core.models import IdempotencyRecord

User = get_user_model()

BRAND_DATA = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN}, "change": {BRAND_ADMIN}, "delete": {BRAND_ADMIN}}
SUPERUSER_ONLY = {"view": set(), "add": set(), "change": set(), "delete": set()}


def is_superuser(request) -> bool:
    return "superuser" in roles_for_user(user=request.user)


class SameBrandForm(forms.ModelForm):
    """Every tenant row a form points at belongs to one brand.

    The FK dropdowns are already scoped to the user's tenants; this stops a
    brand admin of two brands (or a superuser) from mixing them in one row.
    """

    def clean(self):
        cleaned = super().clean()
        brand_ids = {}
        for name, value in cleaned.items():
            if isinstance(value, Brand):
                brand_ids[name] = value.pk
            elif isinstance(value, models.Model) and getattr(value, "brand_id", None) is not None:
                brand_ids[name] = value.brand_id
        for name in ("brand", "store", "sku"):
            if name not in cleaned and getattr(self.instance, f"{name}_id", None) is not None:
                related = getattr(self.instance, name)
                brand_ids.setdefault(name, related.pk if isinstance(related, Brand) else related.brand_id)
        if len(set(brand_ids.values())) > 1:
            for name in brand_ids:
                if name in self.fields and name in cleaned:
                    self.add_error(name, _("All references of this row must belong to the same brand."))
        return cleaned


class BrandAdmin(TenantAdmin):
    role_permissions = {"view": {BRAND_ADMIN}, "add": set(), "change": {BRAND_ADMIN}, "delete": set()}
    list_display = ["code", "name", "unpaid_timeout_minutes", "after_sales_days", "created_at"]
    search_fields = ["code", "name"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not is_superuser(request):
            return ["code", "created_at"]
        return ["created_at"]


class StoreAdmin(TenantAdmin):
    """Brand admins manage stores; a store manager changes only the operating settings."""

    form = SameBrandForm
    role_permissions = {"view": ALL_ROLES, "add": {BRAND_ADMIN}, "change": MANAGERS, "delete": set()}
    manager_fields = ("mode", "auto_accept", "default_prep_minutes", "busy_extra_minutes", "business_hours")
    state_fields = ("mode", "busy_extra_minutes", "business_hours")
    list_display = ["code", "name", "brand", "mode", "open_now", "channels_open", "auto_accept",
                    "default_prep_minutes"]
    list_select_related = ["brand"]
    list_filter = ["mode", "auto_accept"]
    search_fields = ["code", "name"]

    @admin.display(description=_("open now"), boolean=True)
    def open_now(self, obj: Store) -> bool:
        return obj.open_at(timezone.now())

    def save_model(self, request, obj, form, change):
        """Mode, busy minutes and hours go through accounts.store_state, so a change made
        here reaches every bound platform like one from the POS."""
        changed = [name for name in self.state_fields if name in form.changed_data]
        if not change or not changed:
            super().save_model(request, obj, form, change)
            return
        wanted = {name: getattr(obj, name) for name in changed}
        current = Store.objects.filter(pk=obj.pk).values(*changed).get()
        for name in changed:  # the rest of the form first, the state through the service
            setattr(obj, name, current[name])
        super().save_model(request, obj, form, change)
        store_state_set(store_id=obj.pk, actor=Actor.staff(request.user), mode=wanted.get("mode"),
                        busy_minutes=wanted.get("busy_extra_minutes"), business_hours=wanted.get("business_hours"))
        obj.refresh_from_db()

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ["created_at"]
        if request.user.is_superuser or BRAND_ADMIN in roles_at(user=request.user, obj=obj, right="change"):
            return ["brand", "channels_open", "created_at"]
        return [f.name for f in Store._meta.fields if f.name not in self.manager_fields and f.name != "id"]


class StaffMembershipAdmin(TenantAdmin):
    form = SameBrandForm
    role_permissions = BRAND_DATA
    list_display = ["user", "role", "brand", "store", "created_at"]
    list_select_related = ["user", "brand", "store"]
    list_filter = ["role"]
    search_fields = ["user__username"]
    readonly_fields = ["created_at"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = user_list_for_request(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class MemberTierAdmin(TenantAdmin):
    form = SameBrandForm
    role_permissions = BRAND_DATA
    list_display = ["code", "name", "brand", "price_rate", "free_delivery", "rank"]
    list_select_related = ["brand"]
    search_fields = ["code", "name"]


class CustomerAdmin(TenantAdmin):
    form = SameBrandForm
    role_permissions = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN}, "change": {BRAND_ADMIN}, "delete": set()}
    list_display = ["name", "masked_phone", "brand", "tier", "created_at"]
    list_select_related = ["brand", "tier"]
    list_filter = ["tier"]
    search_fields = ["=phone", "name"]
    readonly_fields = ["created_at"]

    @admin.display(description=_("phone"), ordering="phone")
    def masked_phone(self, obj: Customer) -> str:
        return mask_phone(obj.phone)


class CustomerTokenAdmin(ReadOnlyTenantAdmin):
    """Read-only for everyone: tokens are issued and revoked by accounts.services (the
    customer's login and logout); the hash is never shown."""

    role_permissions = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}
    list_display = ["prefix", "customer", "created_at", "last_used_at", "revoked_at"]
    list_select_related = ["customer"]
    search_fields = ["=prefix", "=customer__phone"]
    exclude = ["key_hash"]


def user_list_for_request(request):
    """Users a back-office user may see: all for superusers, else those of their brands."""
    queryset = User._default_manager.all()
    if is_superuser(request):
        return queryset
    brand_ids = scope_for_user(user=request.user).brand_wide_ids
    return queryset.filter(
        pk__in=StaffMembership.objects.filter(brand_id__in=brand_ids).values("user_id")
    ).order_by("username")


class UserAdmin(TenantAdmin, DjangoUserAdmin):
    """Users are not tenant-owned: scoped here by membership (see the module docstring)."""

    role_permissions = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}
    brand_admin_fieldsets = [
        (None, {"fields": ["username", "first_name", "last_name", "email"]}),
        (_("Status"), {"fields": ["is_active", "is_staff", "last_login", "date_joined"]}),
    ]

    def get_queryset(self, request):
        return user_list_for_request(request)

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not is_superuser(request):
            return self.brand_admin_fieldsets
        return super().get_fieldsets(request, obj)

    def get_list_filter(self, request):
        return super().get_list_filter(request) if is_superuser(request) else ["is_active"]


class IdempotencyRecordAdmin(ReadOnlyTenantAdmin):
    """core's model, registered here (see core/admin.py). Not tenant-owned: no role
    gets any right, so only superusers see it; nobody edits it."""

    role_permissions = SUPERUSER_ONLY
    list_display = ["credential", "key", "status_code", "content_type", "created_at"]
    list_filter = ["status_code"]
    search_fields = ["=credential", "=key"]
    exclude = ["body"]


admin.site.register(IdempotencyRecord, IdempotencyRecordAdmin)
admin.site.register(Brand, BrandAdmin)
admin.site.register(Store, StoreAdmin)
admin.site.register(StaffMembership, StaffMembershipAdmin)
admin.site.register(MemberTier, MemberTierAdmin)
admin.site.register(Customer, CustomerAdmin)
admin.site.register(CustomerToken, CustomerTokenAdmin)
if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, UserAdmin)


# --- Customer login codes: written by accounts.services only ------------------------------
class LoginCodeAdmin(ReadOnlyTenantAdmin):
    """Who asked for login codes, from where, and how many guesses each took; the code's
    hash is never shown."""

    role_permissions = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}
    list_display = ["masked_phone", "brand", "created_at", "expires_at", "attempts", "used_at", "sent_to_ip"]
    list_select_related = ["brand"]
    search_fields = ["=phone", "=sent_to_ip"]
    exclude = ["code_hash"]

    @admin.display(description=_("phone"), ordering="phone")
    def masked_phone(self, obj: LoginCode) -> str:
        return mask_phone(obj.phone)


class LoginCodeAttemptAdmin(ReadOnlyTenantAdmin):
    role_permissions = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}
    list_display = ["login_code", "number", "correct", "ip", "created_at"]
    list_select_related = ["login_code"]
    list_filter = ["correct"]
    search_fields = ["=ip", "=login_code__phone"]


admin.site.register(LoginCode, LoginCodeAdmin)
admin.site.register(LoginCodeAttempt, LoginCodeAttemptAdmin)
