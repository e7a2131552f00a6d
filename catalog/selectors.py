from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q, QuerySet

from catalog.models import PlatformSkuMapping, Sku, StoreSku


def store_sku_list(*, store_id: int) -> QuerySet[StoreSku]:
    """The menu of one store, with product and category in one query."""
    return (
        StoreSku.objects.filter(store_id=store_id, sku__is_active=True, sku__product__is_active=True)
        .select_related("sku__product__category")
        .order_by("sku__product__category__sort_order", "sku__product__sort_order", "sku_id")
    )


def store_skus_on_sale(*, store_id: int, sku_ids: list[int]) -> dict[int, bool]:
    """sku id -> whether every channel should sell it now at the store (``StoreSku.on_sale``);
    a SKU the store does not sell is absent. The rows are read FOR UPDATE in their own short
    transaction (it waits for a writer that is flipping them)."""
    rows = StoreSku.objects.filter(store_id=store_id, sku_id__in=sku_ids).order_by("sku_id")
    with transaction.atomic():
        return {row.sku_id: row.on_sale for row in rows.select_for_update().only("sku_id", "is_available",
                                                                                  "stock_out")}


def sku_price_for_store(*, store_sku: StoreSku) -> Decimal:
    return store_sku.effective_price


def sku_resolve_platform_code(
    *, brand_id: int, store_id: int, platform: str, merchant_code: str = "", platform_sku_id: str = ""
) -> Sku | None:
    """Find our SKU for a platform line: the merchant code first, then the mapping table."""
    return skus_resolve_platform_codes(brand_id=brand_id, store_id=store_id, platform=platform,
                                       lines=[(merchant_code, platform_sku_id)])[0]


def skus_resolve_platform_codes(*, brand_id: int, store_id: int, platform: str,
                                lines: list[tuple[str, str]]) -> list[Sku | None]:
    """``sku_resolve_platform_code`` for every line of an order at once, (merchant code, platform
    SKU id) each, in order: one query for the merchant codes, one more for the mappings of
    the lines those did not find (a store's own mapping wins over the brand's)."""
    codes = {code for code, _sku_id in lines if code}
    by_code = {sku.code: sku for sku in Sku.objects.filter(brand_id=brand_id, code__in=codes)} if codes else {}
    missing = {sku_id for code, sku_id in lines if sku_id and code not in by_code}
    by_platform_id: dict[str, Sku] = {}
    if missing:
        mappings = (
            PlatformSkuMapping.objects.filter(brand_id=brand_id, platform=platform, platform_sku_id__in=missing)
            .filter(Q(store_id=store_id) | Q(store__isnull=True))
            .select_related("sku")
            .order_by("platform_sku_id", F("store_id").asc(nulls_last=True), "id")
        )
        for mapping in mappings:  # store-specific first within each platform SKU id
            by_platform_id.setdefault(mapping.platform_sku_id, mapping.sku)
    return [by_code.get(code) if code and code in by_code else by_platform_id.get(sku_id) if sku_id else None
            for code, sku_id in lines]
