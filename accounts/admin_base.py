"""The admin base classes: rights are decided per object, by the role the user holds THERE.

Subclasses declare which roles may do what, as data::

    role_permissions = {"view": ALL_ROLES, "change": {BRAND_ADMIN}, "revoke": MANAGERS}

The keys are ``view``, ``add``, ``change``, ``delete`` and one per admin action
(the action names it: ``@admin.action(permissions=["revoke"])``; the base answers
``has_revoke_permission``). Whoever may change may also view.

The role that counts for a row is the one held at the row's place, found through
the model's tenant lookups (core.tenancy):

- a store-level row (``tenant_store_lookup``): brand admin of the store's brand, or
  the membership at that store (accounts.selectors.roles_for_store);
- a brand-level row: brand admin of that brand; the roles held at the brand's stores
  count for viewing only (accounts.selectors.roles_for_brand).

So a user who is brand admin of X and clerk in a store of Y is a clerk for that
store's rows and for Y's data, and a manager of S1 who is a clerk of S2 is a clerk
at S2. One mechanism, here, applies it everywhere:

- ``has_*_permission(request, obj)`` with an object: the role at the object. Without
  one (the index, the list page, the add page): any role of the user, only to decide
  whether the page is shown;
- ``get_queryset`` lists only the rows where the role there allows viewing, so a
  change, delete or action on any other row answers "does not exist"; a list filter on
  a foreign key offers only what the listed rows point at;
- add and change forms offer store / brand / other tenant choices only where the
  role allows that form's right, ``clean()`` checks the submitted place, and
  ``save_form`` checks it once more before anything is saved (a forged POST for
  another store is refused);
- every admin action names its right; the base checks it at EACH selected row: the
  rows where the role refuses it are named in an error message and left untouched,
  the action runs on the others;
- inlines follow the parent object's place.

Superusers may do everything, except what ``ReadOnlyTenantAdmin`` forbids to all.
"""

import copy
import re
from dataclasses import dataclass
from functools import wraps

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_format_dict
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist, PermissionDenied, ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import StaffRole
from accounts.selectors import (
    roles_for_brand,
    roles_for_store,
    roles_for_user,
    scope_for_roles,
    scope_for_user,
)
from core.tenancy import TenantScope, is_tenant_owned, scope_queryset

BRAND_ADMIN = StaffRole.BRAND_ADMIN.value
STORE_MANAGER = StaffRole.STORE_MANAGER.value
CLERK = StaffRole.CLERK.value
SUPERUSER = "superuser"
ALL_ROLES = frozenset({BRAND_ADMIN, STORE_MANAGER, CLERK})
MANAGERS = frozenset({BRAND_ADMIN, STORE_MANAGER})

_RIGHT_CHECK = re.compile(r"has_(?P<right>[a-z_]+)_permission")


@dataclass(frozen=True)
class Place:
    """Where a row belongs: its brand, and its store (None for brand-level rows)."""

    brand_id: int | None
    store_id: int | None


def _follow(obj, lookup: str):
    value = obj
    for part in lookup.split("__"):
        if value is None:
            return None
        try:
            value = getattr(value, part)
        except ObjectDoesNotExist:  # a relation not set yet (an add form missing it)
            return None
    return value


def place_of(obj) -> Place | None:
    """The place of a tenant-owned instance (saved or not); None for other models."""
    model = type(obj)
    if not is_tenant_owned(model):
        return None
    store_lookup = getattr(model, "tenant_store_lookup", None)
    return Place(brand_id=_follow(obj, model.tenant_brand_lookup),
                 store_id=_follow(obj, store_lookup) if store_lookup else None)


def roles_at_place(*, user, place: Place, right: str = "view") -> frozenset[str]:
    """The roles of ``user`` that count for ``right`` at ``place`` (see the module docstring)."""
    if place.store_id is not None:
        return roles_for_store(user=user, store_id=place.store_id, brand_id=place.brand_id)
    roles = roles_for_brand(user=user, brand_id=place.brand_id)
    return roles if right == "view" else roles & {BRAND_ADMIN, SUPERUSER}


def roles_at(*, user, obj, right: str = "view") -> frozenset[str]:
    """The roles of ``user`` that count for ``right`` on ``obj``. A model that is not
    tenant-owned has no place: its admin scopes its rows itself (users) or gives no
    role any right (superusers only), so the roles held anywhere count."""
    place = place_of(obj)
    if place is None:
        return roles_for_user(user=user)
    return roles_at_place(user=user, place=place, right=right)


class RoleScopedMixin:
    role_permissions: dict[str, frozenset[str] | set[str]] = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN},
                                                             "change": {BRAND_ADMIN}, "delete": set()}

    def roles_allowed(self, right: str) -> frozenset[str]:
        allowed = set(self.role_permissions.get(right, ()))
        if right == "view":
            # Whoever may change may also view.
            allowed |= set(self.role_permissions.get("change", ()))
        return frozenset(allowed)

    def role_allows(self, request, right: str, obj=None) -> bool:
        """``right`` at ``obj`` (the row, or an inline's parent); without ``obj``: anywhere."""
        user = request.user
        if not user.is_authenticated or not user.is_active:
            return False
        if user.is_superuser:
            return True
        if not user.is_staff:
            return False
        roles = roles_for_user(user=user) if obj is None else roles_at(user=user, obj=obj, right=right)
        return bool(roles & self.roles_allowed(right))

    def scope_for(self, request, right: str) -> TenantScope:
        """Where the user's role allows ``right``: the rows of a list, the choices of a form."""
        return scope_for_roles(user=request.user, roles=self.roles_allowed(right),
                               store_roles_reach_brand=right == "view")

    def has_module_permission(self, request):
        return self.role_allows(request, "view")

    def has_view_permission(self, request, obj=None):
        return self.role_allows(request, "view", obj)

    def has_add_permission(self, request, obj=None):
        # ModelAdmin passes no object (the add page); an inline passes its parent.
        return self.role_allows(request, "add", obj)

    def has_change_permission(self, request, obj=None):
        return self.role_allows(request, "change", obj)

    def has_delete_permission(self, request, obj=None):
        return self.role_allows(request, "delete", obj)

    def __getattr__(self, name):
        # has_<right>_permission for the rights of the admin actions (role_permissions keys).
        match = _RIGHT_CHECK.fullmatch(name)
        if match and match["right"] in type(self).role_permissions:
            right = match["right"]
            return lambda request, obj=None: self.role_allows(request, right, obj)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if is_tenant_owned(related):
            kwargs["queryset"] = scope_queryset(related._default_manager.all(), scope_for_user(user=request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TenantAdmin(RoleScopedMixin, admin.ModelAdmin):

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_tenant_owned(queryset.model):
            queryset = scope_queryset(queryset, self.scope_for(request, "view"))
        return queryset

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if is_tenant_owned(related):
            kwargs["queryset"] = scope_queryset(related._default_manager.all(), scope_for_user(user=request.user))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        # Django's filter on a foreign key lists every row of the related table (every
        # store, every member tier); list only those the user's listed rows point at.
        filters = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str) and "__" not in entry:
                related = getattr(self.model._meta.get_field(entry), "related_model", None)
                if related is not None and is_tenant_owned(related):
                    entry = (entry, admin.RelatedOnlyFieldListFilter)
            filters.append(entry)
        return filters

    # --- forms: choices and the submitted place --------------------------------------------

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return role_checked_form(form, model_admin=self, request=request,
                                 right="change" if obj is not None else "add")

    def save_form(self, request, form, change):
        obj = super().save_form(request, form, change)
        # The form checked the place already; this is the last gate before any save.
        if not self.role_allows(request, "change" if change else "add", obj):
            raise PermissionDenied
        return obj

    # --- actions: the right is checked at each selected row -----------------------------------

    def get_actions(self, request):
        return {name: (self._role_checked_action(func), name, description)
                for name, (func, _name, description) in super().get_actions(request).items()}

    def _role_checked_action(self, func):
        rights = tuple(getattr(func, "allowed_permissions", ()))
        if not rights:
            raise ImproperlyConfigured(
                f"{type(self).__name__}: the action {func.__name__!r} must name the right it needs "
                "(@admin.action(permissions=[...]), a key of role_permissions)"
            )

        @wraps(func)
        def checked(model_admin, request, queryset):
            allowed_pks, refused_pks = model_admin.split_by_right(request, queryset, rights)
            selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            missing = 0 if request.POST.get("select_across") == "1" else (
                len(set(selected)) - len(allowed_pks) - len(refused_pks))
            if missing > 0:
                model_admin.message_user(request, ngettext(
                    "%(count)d selected item was not found.", "%(count)d selected items were not found.", missing,
                ) % {"count": missing}, messages.ERROR)
            if refused_pks:
                names = ", ".join(str(obj) for obj in queryset.model._default_manager.filter(pk__in=refused_pks))
                model_admin.message_user(request, _(
                    "Your role at their store or brand does not allow “%(action)s” for: %(items)s. "
                    "Nothing was done to them."
                ) % {"action": model_admin._get_action_description(func, func.__name__)
                     % model_format_dict(model_admin.opts), "items": names},
                    messages.ERROR)
            if not allowed_pks:
                return None
            return func(model_admin, request, queryset.filter(pk__in=allowed_pks))

        return checked

    def split_by_right(self, request, queryset, rights) -> tuple[list, list]:
        """(pks where the role at the row allows one of ``rights``, pks where it does not)."""
        model = queryset.model
        if request.user.is_superuser or not is_tenant_owned(model):
            allowed = any(self.role_allows(request, right) for right in rights)
            pks = list(queryset.values_list("pk", flat=True))
            return (pks, []) if allowed else ([], pks)
        store_lookup = getattr(model, "tenant_store_lookup", None)
        rows = queryset.values_list("pk", model.tenant_brand_lookup, store_lookup or model.tenant_brand_lookup)
        allowed_pks, refused_pks = [], []
        for pk, brand_id, store_id in rows:
            place = Place(brand_id=brand_id, store_id=store_id if store_lookup else None)
            if any(roles_at_place(user=request.user, place=place, right=right) & self.roles_allowed(right)
                   for right in rights):
                allowed_pks.append(pk)
            else:
                refused_pks.append(pk)
        return allowed_pks, refused_pks


def role_checked_form(form_class, *, model_admin: RoleScopedMixin, request, right: str):
    """``form_class`` whose tenant choices are limited to where the role allows ``right``,
    and which refuses a place (store, brand...) where it does not."""

    class RoleCheckedForm(form_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            scope = model_admin.scope_for(request, right)
            for field in self.fields.values():
                queryset = getattr(field, "queryset", None)
                if queryset is not None and is_tenant_owned(queryset.model):
                    field.queryset = scope_queryset(queryset, scope)

        def clean(self):
            cleaned = super().clean()
            target = copy.copy(self.instance)
            for model_field in target._meta.concrete_fields:
                if model_field.is_relation and model_field.name in cleaned:
                    setattr(target, model_field.name, cleaned[model_field.name])
            place = place_of(target)
            # A place not complete yet: the missing field has its own error (save_form checks again).
            if place is not None and place.brand_id is not None and not model_admin.role_allows(
                    request, right, target):
                raise ValidationError(_("Your role does not allow this at the chosen store or brand."),
                                      code="role")
            return cleaned

    RoleCheckedForm.__name__ = RoleCheckedForm.__qualname__ = form_class.__name__
    return RoleCheckedForm


class ReadOnlyTenantAdmin(TenantAdmin):
    """Rows written only by services (ledgers, audit trails, answers of the
    platforms): nobody adds, changes or deletes them here; ``role_permissions``
    says who may view. Admin actions may still call services."""

    role_permissions = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set()}

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TenantInline(RoleScopedMixin, admin.TabularInline):
    """Rights at the parent object's place (Django passes the parent as ``obj``)."""

    extra = 0
