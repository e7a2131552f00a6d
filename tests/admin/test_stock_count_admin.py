"""A manager counts the stock in the admin: a ledger adjustment, and sold out / back on sale on
every channel when the count crosses zero."""

from catalog.models import StoreSku
from catalog.services import ITEM_AVAILABILITY_TOPIC
from core.models import OutboxMessage
from inventory.models import MovementReason, Stock, StockMovement
from inventory.services import stock_ledger_mismatches, stock_set
from tests.factories import SkuFactory, StoreSkuFactory

STOCK = "/admin/inventory/stock/"


def test_a_count_of_zero_is_an_adjustment_and_sells_the_sku_out(login, manager_a, store_a):
    sku = SkuFactory(brand=store_a.brand, code="HC001")
    StoreSkuFactory(store=store_a, sku=sku)
    stock = stock_set(store_id=store_a.pk, sku_id=sku.pk, on_hand=6)
    client = login(manager_a)
    page = client.get(f"{STOCK}{stock.pk}/change/")
    management = {key: value for key, value in page.context["inline_admin_formsets"][0].formset.management_form
                  .initial.items()}
    prefix = page.context["inline_admin_formsets"][0].formset.prefix
    data = {"on_hand": "0", "note": "鸡丁用完了",
            **{f"{prefix}-{key}": value for key, value in management.items()}}

    answer = client.post(f"{STOCK}{stock.pk}/change/", data)

    assert answer.status_code == 302, answer.context["adminform"].form.errors if answer.context else answer
    assert Stock.objects.get(pk=stock.pk).on_hand == 0
    last = StockMovement.objects.filter(stock=stock).latest("pk")
    assert (last.delta, last.reason, last.note) == (-6, MovementReason.ADJUSTMENT, "鸡丁用完了")
    assert StoreSku.objects.get(store=store_a, sku=sku).stock_out is True
    message = OutboxMessage.objects.get(topic=ITEM_AVAILABILITY_TOPIC)
    assert (message.payload["available"], message.payload["why"]) == (False, "stock")
    assert stock_ledger_mismatches() == []


def test_a_clerk_cannot_count(login, clerk_a, store_a):
    sku = SkuFactory(brand=store_a.brand)
    stock = stock_set(store_id=store_a.pk, sku_id=sku.pk, on_hand=6)

    answer = login(clerk_a).post(f"{STOCK}{stock.pk}/change/", {"on_hand": "0"})

    assert answer.status_code in (302, 403)
    assert Stock.objects.get(pk=stock.pk).on_hand == 6
