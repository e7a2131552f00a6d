from inventory.models import Stock


def stock_levels(*, store_id: int, sku_ids=None) -> dict[int, int]:
    """sku_id -> on hand for the tracked SKUs of a store (absent = untracked)."""
    queryset = Stock.objects.filter(store_id=store_id)
    if sku_ids is not None:
        queryset = queryset.filter(sku_id__in=sku_ids)
    return dict(queryset.values_list("sku_id", "on_hand"))
