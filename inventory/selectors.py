from django.db.models import OuterRef, Subquery

from inventory.models import Stock


def stock_levels(*, store_id: int, sku_ids=None) -> dict[int, int]:
    """sku_id -> on hand for the tracked SKUs of a store (absent = untracked)."""
    queryset = Stock.objects.filter(store_id=store_id)
    if sku_ids is not None:
        queryset = queryset.filter(sku_id__in=sku_ids)
    return dict(queryset.values_list("sku_id", "on_hand"))


def stock_on_hand_subquery(*, store_ref: str = "store_id", sku_ref: str = "sku_id") -> Subquery:
    """An expression for ``annotate()``: the on-hand stock of the (store, SKU) that
    the outer row names by ``store_ref`` and ``sku_ref``; NULL when untracked.
    Lets a caller read a row and its stock in one query."""
    return Subquery(Stock.objects.filter(store_id=OuterRef(store_ref), sku_id=OuterRef(sku_ref))
                    .values("on_hand")[:1])
