"""Tenancy: one mechanism that scopes every queryset to the caller.

A tenant-owned model names the lookups from itself to its brand id and (when it
belongs to one store) to its store id, as class attributes:

    tenant_brand_lookup = "store__brand_id"
    tenant_store_lookup = "store_id"

``scope_queryset`` applies a ``TenantScope`` to any queryset of such a model.
accounts.selectors builds the scope for a user; the admin and API base classes
call ``scope_queryset`` in ``get_queryset``, so no view can forget it.
"""

from dataclasses import dataclass, field

from django.db.models import Model, Q, QuerySet


@dataclass(frozen=True)
class TenantScope:
    """What the caller may see. ``all_access`` is for platform operators only."""

    all_access: bool = False
    brand_ids: frozenset[int] = field(default_factory=frozenset)
    # Stores seen through a store-level membership (manager, clerk) or a POS terminal.
    store_ids: frozenset[int] = field(default_factory=frozenset)
    # Brands where the caller is a brand admin: every store of the brand.
    brand_wide_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_empty(self) -> bool:
        return not (self.all_access or self.brand_ids or self.store_ids)

    def sees_brand(self, brand_id: int) -> bool:
        return self.all_access or brand_id in self.brand_ids

    def sees_store(self, *, store_id: int, brand_id: int) -> bool:
        return self.all_access or brand_id in self.brand_wide_ids or store_id in self.store_ids


def is_tenant_owned(model: type[Model]) -> bool:
    return getattr(model, "tenant_brand_lookup", None) is not None


def scope_queryset(queryset: QuerySet, scope: TenantScope) -> QuerySet:
    """Narrow ``queryset`` to what ``scope`` may see (empty when it sees nothing)."""
    model = queryset.model
    if not is_tenant_owned(model):
        raise TypeError(f"{model.__name__} is not tenant-owned: declare tenant_brand_lookup")
    if scope.all_access:
        return queryset
    brand_lookup = model.tenant_brand_lookup
    store_lookup = getattr(model, "tenant_store_lookup", None)
    if store_lookup is None:
        # Brand-level data (catalog, promotions, customers): members of the brand see it.
        return queryset.filter(**{f"{brand_lookup}__in": scope.brand_ids})
    return queryset.filter(
        Q(**{f"{brand_lookup}__in": scope.brand_wide_ids}) | Q(**{f"{store_lookup}__in": scope.store_ids})
    )
