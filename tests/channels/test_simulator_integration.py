"""Over real HTTP against the project's simulator: pulling, status sync, pushes."""

import time

import pytest
import requests
from django.utils import timezone

from channels.services import binding_pull
from core.actors import Actor
from core.models import OutboxMessage, OutboxStatus
from core.outbox import outbox_relay
from orders.models import Order
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.sim_helpers import (
    MT_LINE,
    eleme_shop,
    meituan_shop,
    relay_settled,
    sim_calls,
    sim_orders,
    wait_for,
)
from tests.factories import PlatformSkuMappingFactory


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server












def test_meituan_pull_ingests_every_new_day_seq_once(sim, shop):
    meituan_shop(sim, shop)
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "count": 2, "lines": [MT_LINE]})

    first = binding_pull(binding_id=shop["meituan"].pk)
    again = binding_pull(binding_id=shop["meituan"].pk)

    assert (first.pulled, first.created, first.errors) == (2, 2, [])
    assert (again.pulled, again.created) == (0, 0)
    orders = Order.objects.filter(channel="meituan").order_by("channel_day_seq")
    assert [o.channel_order_id for o in orders] == [str(o["order_id"]) for o in made]
    assert all(o.lines.get().sku_id == shop["chicken"].pk for o in orders)
    shop["meituan"].refresh_from_db()
    assert shop["meituan"].pull_state == {timezone.localdate().strftime("%Y%m%d"): 2}
    assert shop["meituan"].last_error == ""


def test_eleme_pull_ingests_unprocessed_orders_and_reconciles_cancellations(sim, shop):
    eleme_shop(sim, shop)
    made = sim_orders(sim, "eleme", {"shop": shop["eleme"].shop_code, "count": 1,
                                      "lines": [{"extend_code": "ZS001", "quantity": 1}]})
    order_id = made[0]["id"]

    first = binding_pull(binding_id=shop["eleme"].pk)
    order = Order.objects.get(channel="eleme", channel_order_id=str(order_id))
    assert (first.created, order.status, order.lines.get().sku_id) == (1, "paid", shop["rice"].pk)

    requests.post(f"{sim.base_url}/_sim/eleme/orders/{order_id}/cancel", json={}, timeout=5)
    shop["eleme"].pull_state = {}  # reconciliation due now
    shop["eleme"].save()
    binding_pull(binding_id=shop["eleme"].pk)

    order.refresh_from_db()
    assert order.status == "cancelled"


def test_a_pull_against_a_failing_platform_records_the_error_and_keeps_the_cursor(sim, shop, settings):
    meituan_shop(sim, shop)
    sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "count": 1, "lines": [MT_LINE]})
    requests.post(f"{sim.base_url}/_sim/faults", json={"mode": "error500", "path_prefix": "/api/v1/order/",
                                                       "count": settings.CHANNELS_PULL_CALL_ATTEMPTS}, timeout=5)

    failed = binding_pull(binding_id=shop["meituan"].pk)
    recovered = binding_pull(binding_id=shop["meituan"].pk)

    assert failed.created == 0 and failed.errors != []
    assert recovered.created == 1


def test_status_changes_reach_the_simulator_through_the_outbox(sim, shop):
    meituan_shop(sim, shop)
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE]})
    binding_pull(binding_id=shop["meituan"].pk)
    order = Order.objects.get(channel="meituan")
    pos = Actor(kind="pos", id="T1")

    order_transition(order_id=order.pk, action="accept", actor=pos)
    order_transition(order_id=order.pk, action="mark_ready", actor=pos)
    order_transition(order_id=order.pk, action="dispatch", actor=pos, courier_name="小李", courier_phone="13700000000")
    order_transition(order_id=order.pk, action="deliver", actor=pos)
    result = outbox_relay(limit=50)

    assert result == {"delivered": 4, "failed": 0}
    paths = [c["path"] for c in sim_calls(sim, "/api/v1/order/") if c["method"] == "POST"]
    assert paths == ["/api/v1/order/confirm", "/api/v1/order/preparationMealComplete", "/api/v1/order/delivering",
                     "/api/v1/order/arrived"]
    state = requests.get(f"{sim.base_url}/_sim/meituan/orders/{made[0]['order_id']}", timeout=5).json()
    assert state["status"] == 8
    assert (state["sim"]["courier_name"], state["sim"]["meal_ready"]) == ("小李", True)


def test_a_reject_reaches_eleme_with_the_cancel_type(sim, shop):
    eleme_shop(sim, shop)
    made = sim_orders(sim, "eleme", {"shop": shop["eleme"].shop_code, "lines": [{"extend_code": "ZS001"}]})
    binding_pull(binding_id=shop["eleme"].pk)
    order = Order.objects.get(channel="eleme")

    order_transition(order_id=order.pk, action="reject", actor=Actor(kind="pos", id="T1"), reason_code="sold_out",
                     reason="卖完了")
    outbox_relay(limit=10)

    state = requests.get(f"{sim.base_url}/_sim/eleme/orders/{made[0]['id']}", timeout=5).json()
    assert state["status"] == "invalid"
    assert state["sim"]["cancel_type"] == "foodSoldOut"


def test_a_platform_outage_is_retried_and_a_refusal_dead_lettered(sim, shop):
    meituan_shop(sim, shop)
    sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE]})
    binding_pull(binding_id=shop["meituan"].pk)
    order = Order.objects.get(channel="meituan")
    requests.post(f"{sim.base_url}/_sim/faults", json={"mode": "error500", "path_prefix": "/api/v1/order/confirm",
                                                       "count": 1}, timeout=5)
    order_transition(order_id=order.pk, action="accept", actor=Actor(kind="pos", id="T1"))

    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}

    # delivering before the platform knows a rider left (our own rider): the platform refuses (802)
    order_transition(order_id=order.pk, action="cancel", actor=Actor(kind="staff", id="1"), reason_code="other")
    requests.post(f"{sim.base_url}/_sim/meituan/orders/{order.channel_order_id}/complete", json={}, timeout=5)
    outbox_relay(limit=10)
    refused = OutboxMessage.objects.get(payload__action="cancel")
    assert refused.status == OutboxStatus.DEAD
    assert "802" in refused.last_error or "status" in refused.last_error


def test_sold_out_reaches_both_platforms(sim, shop):
    from catalog.services import store_sku_set_availability

    meituan_shop(sim, shop)
    eleme_shop(sim, shop)
    PlatformSkuMappingFactory(brand=shop["store"].brand, platform="eleme", platform_food_code="elm_gbjd",
                              platform_sku_id="200000101", sku=shop["chicken"])

    store_sku_set_availability(store_id=shop["store"].pk, sku_id=shop["chicken"].pk, available=False,
                               actor=Actor(kind="pos", id="T1"))
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}

    meituan = requests.get(f"{sim.base_url}/_sim/meituan/shops", timeout=5).json()["shops"][0]
    assert meituan["sell_status_calls"] == [{"sell_status": 1, "skus": [{"app_food_code": "mt_gbjd",
                                                                         "sku_id": "1001001"}]}]
    eleme = requests.get(f"{sim.base_url}/_sim/eleme/shops", timeout=5).json()["shops"][0]
    assert eleme["stock_calls"] == [{"action": "batchClearStock", "specIds": ["200000101"]}]


# --- pushes to our live server ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_meituan_pushes_create_and_cancel_an_order_once(sim, shop, live_server):
    meituan_shop(sim, shop, push_url=f"{live_server.url}/channels/push/meituan")
    requests.post(f"{sim.base_url}/_sim/faults", json={"mode": "duplicate",
                                                       "path_prefix": "/channels/push/meituan/create_order"},
                  timeout=5)
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE], "push": True})
    order_id = str(made[0]["order_id"])

    assert wait_for(lambda: Order.objects.filter(channel_order_id=order_id).exists())
    requests.post(f"{sim.base_url}/_sim/meituan/orders/{order_id}/cancel", json={}, timeout=5)
    assert wait_for(lambda: Order.objects.get(channel_order_id=order_id).status == "cancelled")

    assert Order.objects.filter(channel="meituan", channel_order_id=order_id).count() == 1
    pushes = [c for c in sim_calls(sim, "/channels/push/meituan") if c["direction"] == "out"]
    assert {c.get("status") for c in pushes} == {200}


@pytest.mark.django_db(transaction=True)
def test_eleme_push_of_a_new_order_and_a_refund_application(sim, shop, live_server):
    eleme_shop(sim, shop, push_url=f"{live_server.url}/channels/push/eleme")
    made = sim_orders(sim, "eleme", {"shop": shop["eleme"].shop_code, "lines": [{"extend_code": "ZS001"}],
                                      "push": True})
    order_id = made[0]["id"]
    assert wait_for(lambda: Order.objects.filter(channel_order_id=order_id).exists())
    order = Order.objects.get(channel_order_id=order_id)
    order_transition(order_id=order.pk, action="accept", actor=Actor(kind="pos", id="T1"))
    # The relay the push's commit started (sold out: the order took the last rice) may hold the
    # accept message; the platform takes a refund application only once the order is confirmed.
    assert relay_settled()

    applied = requests.post(f"{sim.base_url}/_sim/eleme/orders/{order_id}/refund_apply", json={"reason": "少送了"},
                            timeout=5)
    assert applied.status_code == 200, applied.text

    assert wait_for(lambda: Order.objects.get(pk=order.pk).needs_attention)
    order.refresh_from_db()
    assert "refund requested" in order.attention_reason


def test_a_push_with_a_bad_signature_is_refused_in_the_platforms_shape(client, shop):
    answer = client.post("/channels/push/meituan/cancel_order",
                         {"app_id": "6001", "timestamp": str(int(time.time())), "sig": "0" * 32,
                          "order_id": "1", "reason_code": "1001", "reason": "x"})

    assert answer.status_code == 401
    assert answer.json() == {"data": "ng", "error": {"code": 703, "msg": "bad signature"}}
    non_ascii = client.post("/channels/push/meituan/cancel_order",
                            {"app_id": "6001", "timestamp": str(int(time.time())), "sig": "签名",
                             "order_id": "1", "reason_code": "1001", "reason": "x"})
    assert (non_ascii.status_code, non_ascii.json()["error"]["code"]) == (401, 703)
    eleme = client.post("/channels/push/eleme", {"requestId": "r", "type": 14, "appId": "el-key", "message": "{}",
                                                 "shopId": 160001, "timestamp": int(time.time()),
                                                 "signature": "签名", "userId": 0},
                        content_type="application/json")
    assert eleme.status_code == 401

    stale = client.post("/channels/push/eleme", {"requestId": "r", "type": 14, "appId": "el-key", "message": "{}",
                                                 "shopId": 160001, "timestamp": 1, "signature": "X", "userId": 0},
                        content_type="application/json")
    assert stale.status_code == 400
    assert stale.json() == {"message": "stale timestamp"}
