"""StoreSku.stock_out for SKUs whose tracked stock is already zero, and one availability
message each (written to the outbox, delivered by the relay's next sweep), so SKUs that
reached zero before sold-out-at-zero existed stop selling on the platforms too."""

from django.db import migrations
from django.db.models import Exists, OuterRef


def backfill(apps, schema_editor):
    StoreSku = apps.get_model("catalog", "StoreSku")
    Stock = apps.get_model("inventory", "Stock")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    at_zero = Stock.objects.filter(store_id=OuterRef("store_id"), sku_id=OuterRef("sku_id"), on_hand__lte=0)
    rows = list(StoreSku.objects.filter(Exists(at_zero), stock_out=False)
                .values_list("pk", "store_id", "sku_id", "is_available", "store__brand_id"))
    StoreSku.objects.filter(pk__in=[pk for pk, *_rest in rows]).update(stock_out=True)
    OutboxMessage.objects.bulk_create([
        OutboxMessage(topic="platform.item_availability", key=f"availability:{store_id}:{sku_id}",
                      payload={"store_id": store_id, "sku_ids": [sku_id], "available": False, "why": "stock"},
                      brand_id=brand_id)
        for _pk, store_id, sku_id, available, brand_id in rows if available
    ])


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0002_part_release_and_write_off"),
        ("catalog", "0003_storesku_stock_out"),
        ("core", "0003_outbox_partial_indexes"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
