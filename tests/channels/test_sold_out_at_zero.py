"""Sold out at zero stock on every channel, on sale again after a restock; the manual flag wins.

Every way stock moves is covered: an own-channel order (the one-statement PostgreSQL path
and the ORM path), a batched placement, a platform order with a shortfall, a walk-in sale,
an adjustment; back: a cancel, a refund restock, part of an order given back, an adjustment.
The last tests go over real HTTP: the POS sells the last unit, the relay tells the Meituan
and Ele.me simulators, a recount puts it back on sale.
"""

import pytest
import requests
from rest_framework.test import APIClient

from catalog.models import PlatformSkuMapping, StoreSku
from catalog.services import ITEM_AVAILABILITY_TOPIC, store_sku_set_availability
from core.actors import Actor
from core.models import OutboxMessage, OutboxStatus
from core.outbox import outbox_relay
from inventory.models import MovementReason, Stock
from inventory.services import (
    stock_deduct,
    stock_give_back_part,
    stock_release,
    stock_restock,
    stock_set,
    stock_take_locked,
    stocks_lock,
)
from simulator.testing import running_simulator
from tests.channels.sim_helpers import eleme_shop, meituan_shop
from tests.factories import PlatformSkuMappingFactory, StoreSkuFactory, pos_terminal

PERSON = Actor(kind="staff", id="7")


def messages(shop):
    """(sku id, available, why) of the availability messages written, oldest first."""
    return [(m.payload["sku_ids"][0], m.payload["available"], m.payload["why"])
            for m in OutboxMessage.objects.filter(topic=ITEM_AVAILABILITY_TOPIC,
                                                  payload__store_id=shop["store"].pk).order_by("pk")]


def state(shop, sku):
    row = StoreSku.objects.get(store=shop["store"], sku=shop[sku])
    return row.is_available, row.stock_out, row.on_sale


def relay_claims_everything():
    """What a relay's claim does to the pending messages (attempts + 1) without delivering."""
    OutboxMessage.objects.filter(status=OutboxStatus.PENDING).update(attempts=1)


@pytest.fixture
def menu(shop):
    """Both SKUs on the store's own menu (chicken 10 in stock, rice 1)."""
    StoreSkuFactory(store=shop["store"], sku=shop["chicken"])
    StoreSkuFactory(store=shop["store"], sku=shop["rice"])
    return shop


def test_an_order_taking_the_last_unit_sells_the_sku_out_on_every_channel(menu):
    rice = menu["rice"].pk
    stock_deduct(store_id=menu["store"].pk, quantities={rice: 1, menu["chicken"].pk: 2}, reference="M1")

    assert state(menu, "rice") == (True, True, False)
    assert state(menu, "chicken") == (True, False, True)
    assert messages(menu) == [(rice, False, "stock")]
    message = OutboxMessage.objects.get(topic=ITEM_AVAILABILITY_TOPIC)
    assert (message.key, message.brand_id) == (f"availability:{menu['store'].pk}:{rice}", menu["store"].brand_id)


def test_a_cancel_giving_the_unit_back_puts_it_on_sale_again(menu):
    rice = menu["rice"].pk
    stock_deduct(store_id=menu["store"].pk, quantities={rice: 1}, reference="M1")
    relay_claims_everything()

    stock_release(store_id=menu["store"].pk, reference="M1")

    assert state(menu, "rice") == (True, False, True)
    assert messages(menu) == [(rice, False, "stock"), (rice, True, "stock")]


def test_orders_that_leave_stock_above_zero_write_nothing(menu):
    stock_deduct(store_id=menu["store"].pk, quantities={menu["chicken"].pk: 9}, reference="M1")
    stock_release(store_id=menu["store"].pk, reference="M1")

    assert messages(menu) == []
    assert state(menu, "chicken") == (True, False, True)


def test_a_platform_order_short_of_stock_sells_out(menu):
    rice = menu["rice"].pk
    shortfall = stock_deduct(store_id=menu["store"].pk, quantities={rice: 3}, reference="MT1", allow_shortfall=True)

    assert shortfall == {rice: 2}
    assert state(menu, "rice") == (True, True, False)
    assert messages(menu) == [(rice, False, "stock")]


def test_a_walk_in_sale_over_the_pos_api_sells_out(menu):
    terminal, token = pos_terminal(store=menu["store"], role="cashier", name="Counter")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    answer = client.post("/api/pos/v1/stock/sales", {"receipt_no": "R1", "lines": [{"sku": "ZS001", "qty": 1}]},
                         format="json")

    assert answer.status_code == 201
    assert state(menu, "rice") == (True, True, False)
    assert messages(menu) == [(menu["rice"].pk, False, "stock")]
    menu_answer = client.get("/api/pos/v1/menu").json()["skus"]
    assert [(row["sku"], row["available"], row["stock"]) for row in menu_answer] == [
        ("HC001", True, 10), ("ZS001", True, 0)]


def test_a_batched_placement_taking_the_last_unit_sells_out(menu):
    store, rice = menu["store"].pk, menu["rice"].pk
    from django.db import transaction

    with transaction.atomic():
        stocks = stocks_lock(keys=[(store, rice)])
        stock_take_locked(stocks=stocks, takes=[("B1", store, {rice: 1})])

    assert state(menu, "rice") == (True, True, False)
    assert messages(menu) == [(rice, False, "stock")]


def test_adjustments_to_zero_and_back(menu):
    chicken = menu["chicken"].pk
    stock_set(store_id=menu["store"].pk, sku_id=chicken, on_hand=0, note="spilt")
    relay_claims_everything()
    stock_set(store_id=menu["store"].pk, sku_id=chicken, on_hand=4, note="delivery")

    assert state(menu, "chicken") == (True, False, True)
    assert messages(menu) == [(chicken, False, "stock"), (chicken, True, "stock")]


def test_a_refund_restock_and_a_part_given_back_put_it_on_sale(menu):
    store, rice = menu["store"].pk, menu["rice"].pk
    stock_deduct(store_id=store, quantities={rice: 1}, reference="M1")
    relay_claims_everything()
    stock_restock(store_id=store, quantities={rice: 1}, reference="AS-1", reason=MovementReason.RETURN)
    assert state(menu, "rice") == (True, False, True)
    relay_claims_everything()

    stock_deduct(store_id=store, quantities={rice: 1}, reference="M2")
    relay_claims_everything()
    assert stock_give_back_part(store_id=store, reference="M2", quantities={rice: 1}) == {rice: 1}

    assert state(menu, "rice") == (True, False, True)
    assert [available for _sku, available, _why in messages(menu)] == [False, True, False, True]


def test_the_manual_flag_wins_until_a_person_clears_it(menu):
    store, rice = menu["store"].pk, menu["rice"].pk
    store_sku_set_availability(store_id=store, sku_id=rice, available=False, actor=PERSON)
    relay_claims_everything()

    stock_deduct(store_id=store, quantities={rice: 1}, reference="M1")  # to zero: already sold out, no message
    stock_release(store_id=store, reference="M1")  # back above zero: still sold out by hand, no message
    assert state(menu, "rice") == (False, False, False)
    assert messages(menu) == [(rice, False, "by_hand")]

    store_sku_set_availability(store_id=store, sku_id=rice, available=True, actor=PERSON)
    assert state(menu, "rice") == (True, False, True)
    assert messages(menu) == [(rice, False, "by_hand"), (rice, True, "by_hand")]


def test_clearing_the_manual_flag_at_zero_stock_keeps_it_sold_out(menu):
    store, rice = menu["store"].pk, menu["rice"].pk
    store_sku_set_availability(store_id=store, sku_id=rice, available=False, actor=PERSON)
    stock_deduct(store_id=store, quantities={rice: 1}, reference="M1")
    relay_claims_everything()

    store_sku_set_availability(store_id=store, sku_id=rice, available=True, actor=PERSON)

    assert state(menu, "rice") == (True, True, False)
    assert messages(menu) == [(rice, False, "by_hand")]  # the channels' state did not change


def test_stock_flipping_many_times_before_the_relay_claims_makes_one_message(menu):
    store, rice = menu["store"].pk, menu["rice"].pk
    for number in range(20):
        stock_deduct(store_id=store, quantities={rice: 1}, reference=f"F{number}")
        stock_release(store_id=store, reference=f"F{number}")

    assert messages(menu) == [(rice, False, "stock")]
    assert Stock.objects.get(store_id=store, sku_id=rice).on_hand == 1
    # Claimed (in flight): the next flip writes one more, which later flips join.
    relay_claims_everything()
    for number in range(20, 25):
        stock_deduct(store_id=store, quantities={rice: 1}, reference=f"F{number}")
        stock_release(store_id=store, reference=f"F{number}")
    assert messages(menu) == [(rice, False, "stock"), (rice, False, "stock")]


def test_a_sku_sold_only_on_the_platforms_gets_its_row_when_stock_reaches_zero(shop):
    rice = shop["rice"].pk
    assert not StoreSku.objects.filter(store=shop["store"], sku_id=rice).exists()

    stock_deduct(store_id=shop["store"].pk, quantities={rice: 1}, reference="MT1", allow_shortfall=True)

    assert state(shop, "rice") == (True, True, False)
    assert messages(shop) == [(rice, False, "stock")]


# --- over real HTTP ------------------------------------------------------------------------------


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


def platform_views(sim):
    meituan = requests.get(f"{sim.base_url}/_sim/meituan/shops", timeout=5).json()["shops"][0]
    eleme = requests.get(f"{sim.base_url}/_sim/eleme/shops", timeout=5).json()["shops"][0]
    return meituan["sell_status_calls"], eleme["stock_calls"]


def test_last_unit_sold_at_the_counter_reaches_both_platforms_and_a_recount_puts_it_back(sim, menu):
    meituan_shop(sim, menu)
    eleme_shop(sim, menu)
    # On Ele.me the simulator sells the chicken (spec 200000101), not the rice.
    PlatformSkuMapping.objects.filter(platform="eleme", sku=menu["rice"]).delete()
    PlatformSkuMappingFactory(brand=menu["store"].brand, platform="eleme", platform_food_code="elm_gbjd",
                              platform_sku_id="200000101", sku=menu["chicken"])
    stock_set(store_id=menu["store"].pk, sku_id=menu["chicken"].pk, on_hand=1)
    terminal, token = pos_terminal(store=menu["store"], role="cashier", name="Counter")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    sold = client.post("/api/pos/v1/stock/sales", {"receipt_no": "R9", "lines": [
        {"sku": "HC001", "qty": 1}, {"sku": "ZS001", "qty": 1}]}, format="json")
    assert sold.status_code == 201
    assert outbox_relay(limit=10) == {"delivered": 2, "failed": 0}

    meituan_calls, eleme_calls = platform_views(sim)
    # Both platforms know the chicken by its mapping. The rice is on neither menu: Meituan answers
    # 803 to our merchant code (skipped, not a dead letter); with no Ele.me spec id nothing is sent.
    assert meituan_calls == [{"sell_status": 1, "skus": [{"app_food_code": "mt_gbjd", "sku_id": "1001001"}]}]
    assert eleme_calls == [{"action": "batchClearStock", "specIds": ["200000101"]}]

    stock_set(store_id=menu["store"].pk, sku_id=menu["rice"].pk, on_hand=5, note="delivery")
    stock_set(store_id=menu["store"].pk, sku_id=menu["chicken"].pk, on_hand=3, note="delivery")
    assert outbox_relay(limit=10) == {"delivered": 2, "failed": 0}

    meituan_calls, eleme_calls = platform_views(sim)
    assert meituan_calls[-1] == {"sell_status": 0, "skus": [{"app_food_code": "mt_gbjd", "sku_id": "1001001"}]}
    assert eleme_calls == [{"action": "batchClearStock", "specIds": ["200000101"]},
                           {"action": "batchFillStock", "specIds": ["200000101"]}]
    assert OutboxMessage.objects.filter(status=OutboxStatus.DEAD).count() == 0
