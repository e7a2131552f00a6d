from collections.abc import Collection

from django.db.models import QuerySet

from accounts.models import Brand, Customer, StaffMembership, StaffRole, Store
from core.errors import NotFound
from core.tenancy import TenantScope, scope_queryset

_EMPTY = TenantScope()


def _memberships(user) -> list[tuple[int, int | None, str]]:
    """(brand_id, store_id, role) of a user; one query, cached on the user object."""
    cached = getattr(user, "_tenant_memberships", None)
    if cached is None:
        cached = list(StaffMembership.objects.filter(user=user).values_list("brand_id", "store_id", "role"))
        user._tenant_memberships = cached
    return cached


def scope_for_user(*, user) -> TenantScope:
    """The tenant scope of a back-office user, from their memberships.

    Cached on the user object for the request; superusers see everything.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return _EMPTY
    cached = getattr(user, "_tenant_scope", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        scope = TenantScope(all_access=True)
    else:
        brand_ids, store_ids, brand_wide = set(), set(), set()
        for brand_id, store_id, role in _memberships(user):
            brand_ids.add(brand_id)
            if role == StaffRole.BRAND_ADMIN:
                brand_wide.add(brand_id)
            elif store_id is not None:
                store_ids.add(store_id)
        scope = TenantScope(
            brand_ids=frozenset(brand_ids), store_ids=frozenset(store_ids), brand_wide_ids=frozenset(brand_wide)
        )
    user._tenant_scope = scope
    return scope


def roles_for_user(*, user) -> frozenset[str]:
    """The roles a user holds anywhere ("superuser" for platform operators)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_tenant_roles", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        roles = frozenset({"superuser"})
    else:
        roles = frozenset(role for _brand, _store, role in _memberships(user))
    user._tenant_roles = roles
    return roles


def store_list_for_scope(*, scope: TenantScope) -> QuerySet[Store]:
    return scope_queryset(Store.objects.select_related("brand"), scope)


def store_get_for_scope(*, scope: TenantScope, store_id: int) -> Store:
    """``access_*`` style: a store of another tenant is simply not found."""
    try:
        return store_list_for_scope(scope=scope).get(pk=store_id)
    except (Store.DoesNotExist, ValueError, TypeError):
        raise NotFound() from None


def customer_get(*, customer_id: int) -> Customer:
    return Customer.objects.select_related("tier", "brand").get(pk=customer_id)


def roles_for_store(*, user, store_id: int | None, brand_id: int | None) -> frozenset[str]:
    """The roles a user holds FOR ONE STORE: brand admin of its brand, or a
    membership at that store. Roles held elsewhere never count here.

    ``store_id`` None (a row of the brand not tied to a store, a store not saved
    yet): only the brand admin role of ``brand_id`` counts."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset({"superuser"})
    roles = set()
    for m_brand, m_store, role in _memberships(user):
        if role == StaffRole.BRAND_ADMIN:
            if m_brand == brand_id:
                roles.add(role)
        elif store_id is not None and m_store == store_id:
            roles.add(role)
    return frozenset(roles)


def roles_for_brand(*, user, brand_id: int | None) -> frozenset[str]:
    """The roles a user holds IN ONE BRAND: brand admin of it, and the roles held at
    its stores (a store's staff reads some of the brand's data, e.g. the menu)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset({"superuser"})
    return frozenset(role for m_brand, _store, role in _memberships(user) if m_brand == brand_id)


def scope_for_roles(*, user, roles: Collection[str], store_roles_reach_brand: bool) -> TenantScope:
    """The tenant scope where ``user`` holds one of ``roles``: the admin lists and
    form choices for one right (e.g. the rows a role may view, the stores where a
    role may add).

    Stores: every store of a brand where the user is a brand admin (if that role
    is in ``roles``), and the stores where they hold a store role in ``roles``.
    Brands (brand-level rows): the brands where they are brand admin, and, with
    ``store_roles_reach_brand``, the brands of those stores."""
    if user is None or not user.is_authenticated or not user.is_active:
        return _EMPTY
    if user.is_superuser:
        return TenantScope(all_access=True)
    brand_ids, store_ids, brand_wide = set(), set(), set()
    for brand_id, store_id, role in _memberships(user):
        if role not in roles:
            continue
        if role == StaffRole.BRAND_ADMIN:
            brand_wide.add(brand_id)
            brand_ids.add(brand_id)
        elif store_id is not None:
            store_ids.add(store_id)
            if store_roles_reach_brand:
                brand_ids.add(brand_id)
    return TenantScope(brand_ids=frozenset(brand_ids), store_ids=frozenset(store_ids),
                       brand_wide_ids=frozenset(brand_wide))


def brand_name_for_user(*, user) -> str:
    """The brand a back-office user works for, when there is exactly one (else empty)."""
    scope = scope_for_user(user=user)
    if scope.all_access or len(scope.brand_ids) != 1:
        return ""
    return Brand.objects.filter(pk=next(iter(scope.brand_ids))).values_list("name", flat=True).first() or ""
