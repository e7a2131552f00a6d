"""Store state over real HTTP: the POS pauses / makes busy / reopens the store and both
simulated platforms hear it through the outbox; the hours job closes it at the boundary; the
reconcile job finds a shop the platform closed on its own and opens it again; a platform that
refuses makes a dead letter; a closed shop takes no orders at the simulator."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from django.utils import timezone

from accounts.store_state import STORE_STATE_TOPIC, store_hours_sync
from channels.services import store_states_reconcile
from core.models import OutboxMessage, OutboxStatus
from core.outbox import outbox_relay
from simulator.testing import running_simulator
from tests.channels.sim_helpers import eleme_shop, meituan_shop
from tests.factories import pos_terminal
from tests.pos.conftest import token_client

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


@pytest.fixture
def bound(sim, shop):
    meituan_shop(sim, shop)
    eleme_shop(sim, shop)
    _terminal, token = pos_terminal(store=shop["store"], role="cashier", name="Counter")
    return {**shop, "pos": token_client(token)}


def views(sim, shop):
    meituan = next(s for s in requests.get(f"{sim.base_url}/_sim/meituan/shops", timeout=5).json()["shops"]
                   if s["app_poi_code"] == shop["meituan"].shop_code)
    eleme = next(s for s in requests.get(f"{sim.base_url}/_sim/eleme/shops", timeout=5).json()["shops"]
                 if str(s["shop_id"]) == str(shop["eleme"].shop_code))
    return meituan, eleme


def test_pause_busy_and_reopen_from_the_pos_reach_both_platforms_in_order(sim, bound):
    store = bound["store"]
    store.default_prep_minutes = 15
    store.save()
    pos = bound["pos"]

    assert pos.patch("/api/pos/v1/store", {"mode": "paused"}, format="json").status_code == 200
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    meituan, eleme = views(sim, bound)
    assert (meituan["open_level"], eleme["isOpen"]) == (3, 0)

    assert pos.patch("/api/pos/v1/store", {"mode": "busy", "busy_minutes": 20}, format="json").status_code == 200
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    meituan, eleme = views(sim, bound)
    assert (meituan["open_level"], eleme["isOpen"], eleme["deliveryAdjustMins"]) == (1, 1, 20)

    assert pos.patch("/api/pos/v1/store", {"mode": "open"}, format="json").status_code == 200
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    meituan, eleme = views(sim, bound)
    assert (meituan["open_level"], eleme["isOpen"], eleme["deliveryAdjustMins"]) == (1, 1, 0)
    assert [c["action"] for c in meituan["status_calls"]] == ["close", "open", "open"]
    assert [(c["action"], c.get("isOpen"), c.get("deliveryAdjustMins")) for c in eleme["status_calls"]] == [
        ("updateShop", 0, None), ("setDeliveryTime", None, 20), ("updateShop", 1, None),
        ("setDeliveryTime", None, 0), ("updateShop", 1, None)]


def test_a_closed_shop_takes_no_orders_at_the_simulator(sim, bound):
    bound["pos"].patch("/api/pos/v1/store", {"mode": "paused"}, format="json")
    outbox_relay(limit=10)

    refused = requests.post(f"{sim.base_url}/_sim/meituan/orders",
                            json={"shop": bound["meituan"].shop_code, "count": 1}, timeout=5)

    assert refused.status_code == 409
    assert refused.json()["code"] == "SHOP_CLOSED"


def test_the_hours_job_closes_the_store_on_the_platforms_at_closing_time(sim, bound, monkeypatch):
    store = bound["store"]
    store.business_hours = [{"weekdays": [1, 2, 3, 4, 5, 6, 7], "open": "10:00", "close": "22:00"}]
    store.channels_open = True
    store.save()
    real_now = timezone.now()

    assert store_hours_sync(now=datetime(2026, 12, 7, 21, 59, tzinfo=SHANGHAI)) == []
    assert store_hours_sync(now=datetime(2026, 12, 7, 22, 0, tzinfo=SHANGHAI)) == [store.pk]
    # The handler tells what is true when it runs: at 22:00:30 the store is closed.
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 7, 22, 0, 30, tzinfo=SHANGHAI))
    assert outbox_relay(limit=10, now=real_now + timedelta(seconds=1)) == {"delivered": 1, "failed": 0}

    meituan, eleme = views(sim, bound)
    assert (meituan["open_level"], eleme["isOpen"]) == (3, 0)


def test_reconcile_finds_a_shop_the_platform_closed_and_opens_it_again(sim, bound):
    assert store_states_reconcile().checked == 0  # never told: nothing to compare with
    assert store_hours_sync() == [bound["store"].pk]  # the hours job tells both platforms: open
    assert store_states_reconcile().checked == 0  # on its way: not judged yet
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    requests.post(f"{sim.base_url}/_sim/meituan/shops/{bound['meituan'].shop_code}/status", json={"open": False},
                  timeout=5).raise_for_status()

    result = store_states_reconcile()

    assert result.checked == 2
    assert result.errors == []
    assert result.drifted == [{"binding": bound["meituan"].pk, "store": bound["store"].pk, "platform": "meituan",
                               "platform_open": False, "open": True}]
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    meituan, eleme = views(sim, bound)
    assert (meituan["open_level"], eleme["isOpen"]) == (1, 1)
    assert store_states_reconcile().drifted == []


def test_a_platform_that_refuses_the_store_call_makes_a_dead_letter(sim, bound):
    bound["eleme"].shop_code = "999999"  # not a shop the Ele.me token covers
    bound["eleme"].save()

    bound["pos"].patch("/api/pos/v1/store", {"mode": "paused"}, format="json")
    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}

    message = OutboxMessage.objects.get(topic=STORE_STATE_TOPIC)
    assert message.status == OutboxStatus.DEAD
    assert "eleme.shop" in message.last_error
