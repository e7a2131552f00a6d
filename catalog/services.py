"""Writes to the catalog."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Store
from catalog.models import PlatformSkuMapping, Sku, StoreSku
from core.actors import Actor
from core.errors import NotFound
from core.outbox import outbox_enqueue_latest

ITEM_AVAILABILITY_TOPIC = "platform.item_availability"


def _availability_payload(*, store_id: int, sku_id: int, on_sale: bool, why: str, actor: Actor | None) -> dict:
    payload = {"store_id": store_id, "sku_ids": [sku_id], "available": on_sale, "why": why}
    if actor is not None:
        payload.update({"actor_kind": str(actor.kind), "actor_id": actor.id})
    return payload


def store_sku_set_availability(*, store_id: int, sku_id: int, available: bool, actor: Actor) -> StoreSku:
    """Sold out by hand (沽清) or back on sale at one store, propagated to every channel.

    The flag a person sets (``is_available``) wins over stock: a SKU sold out by hand
    stays sold out after a restock until a person turns it back on; turned back on,
    it is on sale again unless its stock is zero (``stock_out``).

    The change and an outbox message (topic ``platform.item_availability``, payload
    ``{store_id, sku_ids, available, why}``, key ``availability:<store>:<sku>``) are
    written in one transaction; channels delivers what is true when it runs (see
    ``core.outbox.outbox_enqueue_latest``). Nothing is enqueued when what the
    channels are told does not change. A SKU of another brand is "not found".
    """
    with transaction.atomic():
        store = Store.objects.filter(pk=store_id).only("id", "brand_id").first()
        if store is None or not Sku.objects.filter(pk=sku_id, brand_id=store.brand_id).exists():
            raise NotFound(code="sku_not_found")
        store_sku, created = StoreSku.objects.get_or_create(store_id=store_id, sku_id=sku_id,
                                                            defaults={"is_available": available})
        store_sku = StoreSku.objects.select_for_update().get(pk=store_sku.pk)
        was_on_sale = store_sku.on_sale
        if store_sku.is_available != available:
            store_sku.is_available = available
            store_sku.save(update_fields=["is_available", "updated_at"])
        if created or store_sku.on_sale != was_on_sale:
            outbox_enqueue_latest(
                topic=ITEM_AVAILABILITY_TOPIC, key=availability_key(store_id, sku_id),
                payload=_availability_payload(store_id=store_id, sku_id=sku_id, on_sale=store_sku.on_sale,
                                              why="by_hand", actor=actor),
                brand_id=store.brand_id,
            )
    return store_sku


def availability_key(store_id: int, sku_id: int) -> str:
    return f"availability:{store_id}:{sku_id}"


def store_skus_stock_changed(*, store_id: int, out: list[int], back: list[int]) -> list[int]:
    """Inventory saw tracked stock reach zero (``out``) or come back above zero
    (``back``) at a store: record it (``StoreSku.stock_out``; the row is made when
    stock reaches zero for a SKU the store had none of) and, for each SKU whose on-sale state changes for the channels,
    one coalesced availability message (a SKU sold out by hand changes nothing).

    Called inside inventory's transaction with the stock rows locked; locks the
    StoreSku rows in sku order (after the stock rows, as every writer does). Returns
    the SKU ids whose channel state changed. A few queries, only on a flip."""
    wanted = {sku_id: True for sku_id in out} | {sku_id: False for sku_id in back}
    if not wanted:
        return []
    rows = {row.sku_id: row for row in StoreSku.objects.select_for_update()
            .filter(store_id=store_id, sku_id__in=list(wanted)).order_by("sku_id")}
    missing = sorted(sku_id for sku_id in out if sku_id not in rows)
    if missing:
        # Tracked stock but no row (a store selling the SKU on the platforms only): the row
        # carries the sold-out state; a later "back" finds it.
        StoreSku.objects.bulk_create([StoreSku(store_id=store_id, sku_id=sku_id) for sku_id in missing],
                                     ignore_conflicts=True)
        rows.update({row.sku_id: row for row in StoreSku.objects.select_for_update()
                     .filter(store_id=store_id, sku_id__in=missing).order_by("sku_id")})
    now = timezone.now()
    flipped = []
    for stock_out in (True, False):
        ids = [row.pk for sku_id, row in rows.items() if wanted[sku_id] is stock_out and row.stock_out is not stock_out]
        if ids:
            StoreSku.objects.filter(pk__in=ids).update(stock_out=stock_out, updated_at=now)
        flipped += [sku_id for sku_id, row in rows.items()
                    if wanted[sku_id] is stock_out and row.stock_out is not stock_out and row.is_available]
    if flipped:
        brand_id = Store.objects.filter(pk=store_id).values_list("brand_id", flat=True).first()
        for sku_id in sorted(flipped):
            outbox_enqueue_latest(
                topic=ITEM_AVAILABILITY_TOPIC, key=availability_key(store_id, sku_id),
                payload=_availability_payload(store_id=store_id, sku_id=sku_id, on_sale=not wanted[sku_id],
                                              why="stock", actor=None),
                brand_id=brand_id,
            )
    return sorted(flipped)


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
    if mapped >= set(wanted):
        return 0  # every one is mapped already (the usual case)
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
