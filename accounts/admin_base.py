"""The admin base class: every registered model is scoped to the user's tenants.

Subclasses declare which roles may do what::

    role_permissions = {"view": ALL_ROLES, "change": {BRAND_ADMIN}}

and tenant-owned models are filtered by core.tenancy.scope_queryset; foreign
key choices are scoped the same way, so no form offers another tenant's rows.
"""

from django.contrib import admin

from accounts.models import StaffRole
from accounts.selectors import roles_for_user, scope_for_user
from core.tenancy import is_tenant_owned, scope_queryset

BRAND_ADMIN = StaffRole.BRAND_ADMIN.value
STORE_MANAGER = StaffRole.STORE_MANAGER.value
CLERK = StaffRole.CLERK.value
ALL_ROLES = frozenset({BRAND_ADMIN, STORE_MANAGER, CLERK})
MANAGERS = frozenset({BRAND_ADMIN, STORE_MANAGER})


class RoleScopedMixin:
    role_permissions: dict[str, frozenset[str] | set[str]] = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN},
                                                             "change": {BRAND_ADMIN}, "delete": set()}

    def _role_allows(self, request, action: str) -> bool:
        roles = roles_for_user(user=request.user)
        if "superuser" in roles:
            return True
        if not request.user.is_active or not request.user.is_staff:
            return False
        allowed = set(self.role_permissions.get(action, set()))
        if action == "view":
            # Whoever may change may also view.
            allowed |= set(self.role_permissions.get("change", set()))
        return bool(roles & allowed)

    def has_module_permission(self, request):
        return self._role_allows(request, "view")

    def has_view_permission(self, request, obj=None):
        return self._role_allows(request, "view")

    def has_add_permission(self, request, *args):
        return self._role_allows(request, "add")

    def has_change_permission(self, request, obj=None):
        return self._role_allows(request, "change")

    def has_delete_permission(self, request, obj=None):
        return self._role_allows(request, "delete")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if is_tenant_owned(related):
            kwargs["queryset"] = scope_queryset(related._default_manager.all(), scope_for_user(user=request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TenantAdmin(RoleScopedMixin, admin.ModelAdmin):

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_tenant_owned(queryset.model):
            queryset = scope_queryset(queryset, scope_for_user(user=request.user))
        return queryset

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if is_tenant_owned(related):
            kwargs["queryset"] = scope_queryset(related._default_manager.all(), scope_for_user(user=request.user))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ReadOnlyTenantAdmin(TenantAdmin):
    """Rows written only by services (ledgers, audit trails, answers of the
    platforms): nobody adds, changes or deletes them here; ``role_permissions``
    says who may view. Admin actions may still call services."""

    role_permissions = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set()}

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TenantInline(RoleScopedMixin, admin.TabularInline):
    extra = 0
