"""Reads of the channels app."""

from django.db.models import Q, QuerySet

from catalog.models import PlatformSkuMapping, Sku
from channels.models import StoreBinding
from orders.models import Order


def binding_for_store(*, store_id: int, platform: str) -> StoreBinding | None:
    return StoreBinding.objects.select_related("store").filter(store_id=store_id, platform=platform).first()


def binding_for_shop(*, platform: str, shop_code: str) -> StoreBinding | None:
    return StoreBinding.objects.select_related("store").filter(platform=platform, shop_code=shop_code).first()


def bindings_for_push(*, platform: str, app_id: str, shop_code: str = "") -> QuerySet[StoreBinding]:
    """The enabled bindings a push of ``app_id`` may be verified with: the one of
    ``shop_code`` when the push names a shop, else every binding of the app id (one
    platform app may serve several of our shops). Never another shop's binding."""
    bindings = StoreBinding.objects.select_related("store").filter(platform=platform, app_id=app_id, enabled=True)
    if shop_code:
        bindings = bindings.filter(shop_code=shop_code)
    return bindings.order_by("pk")


def order_by_channel_id(*, platform: str, channel_order_id: str) -> Order | None:
    return Order.objects.filter(channel=platform, channel_order_id=str(channel_order_id)).first()


def platform_items_for_skus(*, binding: StoreBinding, sku_ids: list[int]) -> list[dict]:
    """How each SKU is known on the binding's platform: the merchant code plus the
    platform's own food code / sku id from the mapping table (store-specific first)."""
    store = binding.store
    skus = {sku.pk: sku for sku in Sku.objects.filter(pk__in=sku_ids, brand_id=store.brand_id)}
    mappings: dict[int, PlatformSkuMapping] = {}
    for mapping in (PlatformSkuMapping.objects.filter(brand_id=store.brand_id, platform=binding.platform,
                                                      sku_id__in=list(skus))
                    .filter(Q(store_id=store.pk) | Q(store__isnull=True)).order_by("pk")):
        if mapping.sku_id not in mappings or (mapping.store_id and not mappings[mapping.sku_id].store_id):
            mappings[mapping.sku_id] = mapping
    items = []
    for sku_id in sku_ids:
        sku = skus.get(sku_id)
        if sku is None:
            continue
        mapping = mappings.get(sku_id)
        items.append({
            "sku_id": sku_id, "merchant_code": sku.code,
            "platform_food_code": mapping.platform_food_code if mapping else "",
            "platform_sku_id": mapping.platform_sku_id if mapping else "",
        })
    return items
