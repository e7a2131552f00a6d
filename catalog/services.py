"""Writes to the catalog."""

from django.db import transaction

from accounts.models import Store
from catalog.models import Sku, StoreSku
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
