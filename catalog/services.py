"""Writes to the catalog."""

from django.db import transaction
from django.db.models import Q

from accounts.models import Store
from catalog.models import PlatformSkuMapping, Sku, StoreSku
from core.actors import Actor
from core.errors import NotFound
from core.outbox import outbox_enqueue

ITEM_AVAILABILITY_TOPIC = "platform.item_availability"


def store_sku_set_availability(*, store_id: int, sku_id: int, available: bool, actor: Actor) -> StoreSku:
    """Sold out (沽清) or back on sale at one store, propagated to every channel.

    The change and an outbox message (topic ``platform.item_availability``,
    payload ``{store_id, sku_ids, available}``) are written in one transaction;
    channels delivers it to each platform the store is bound to. Nothing is
    enqueued when the availability does not change. A SKU of another brand is
    "not found".
    """
    with transaction.atomic():
        store = Store.objects.filter(pk=store_id).only("id", "brand_id").first()
        if store is None or not Sku.objects.filter(pk=sku_id, brand_id=store.brand_id).exists():
            raise NotFound(code="sku_not_found")
        store_sku, created = StoreSku.objects.get_or_create(store_id=store_id, sku_id=sku_id,
                                                            defaults={"is_available": available})
        store_sku = StoreSku.objects.select_for_update().get(pk=store_sku.pk)
        if created or store_sku.is_available != available:
            if store_sku.is_available != available:
                store_sku.is_available = available
                store_sku.save(update_fields=["is_available", "updated_at"])
            outbox_enqueue(
                topic=ITEM_AVAILABILITY_TOPIC, key=f"availability:{store_id}:{sku_id}",
                payload={"store_id": store_id, "sku_ids": [sku_id], "available": available,
                         "actor_kind": str(actor.kind), "actor_id": actor.id},
                brand_id=store.brand_id,
            )
    return store_sku


def platform_codes_learn(*, brand_id: int, store_id: int, platform: str,
                         seen: list[tuple[int, str, str]]) -> int:
    """The platform's own item codes seen on an ingested order, for lines matched by
    our merchant code (``seen``: (sku id, platform sku id, platform food code)): each SKU
    with no mapping on that platform yet (for this store or the whole brand) gets one
    for the store, so sold-out and back-on-sale reach the platform for SKUs nobody
    mapped by hand. A mapping a person made is never changed. Returns how many were
    learnt. One query when there is nothing to learn."""
    wanted = {sku_id: (sku_code, food_code) for sku_id, sku_code, food_code in seen if sku_id and sku_code}
    if not wanted:
        return 0
    mapped = set(PlatformSkuMapping.objects.filter(brand_id=brand_id, platform=platform, sku_id__in=list(wanted))
                 .filter(Q(store_id=store_id) | Q(store__isnull=True)).values_list("sku_id", flat=True))
    taken = set(PlatformSkuMapping.objects.filter(
        brand_id=brand_id, platform=platform, store_id=store_id,
        platform_sku_id__in=[code for code, _food in wanted.values()]).values_list("platform_sku_id", flat=True))
    rows = [PlatformSkuMapping(brand_id=brand_id, store_id=store_id, platform=platform, sku_id=sku_id,
                               platform_sku_id=code[:64], platform_food_code=food[:64], learnt=True)
            for sku_id, (code, food) in sorted(wanted.items()) if sku_id not in mapped and code not in taken]
    if rows:
        # A concurrent ingest learning the same codes: the unique constraint keeps one.
        PlatformSkuMapping.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
