"""A platform cancel with no push reaches the POS feed within 60 s: the reconciliation job
checks young open orders every CHANNELS_RECONCILE_YOUNG_EVERY_SECONDS. The job's runs are
driven explicitly, at the times the settings give them, against the simulator over HTTP."""

import math
from datetime import timedelta

import pytest
import requests
from django.conf import settings
from rest_framework.test import APIClient

from channels.services import binding_pull, platform_orders_reconcile
from core.actors import Actor
from core.outbox import outbox_relay
from inventory.models import Stock
from orders.models import Order
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.sim_helpers import MT_LINE, eleme_shop, meituan_shop, sim_calls, sim_orders
from tests.factories import pos_terminal

EVENTS = "/api/pos/v1/events"
POS = Actor(kind="pos", id="T1")


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


def _pos_client(store):
    _terminal, token = pos_terminal(store=store)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def _pos_events(pos):
    """The POS's unacknowledged events as (type, order_no), acknowledging them."""
    events = pos.get(EVENTS).json()["events"]
    if events:
        pos.post(f"{EVENTS}/ack", {"ids": [e["id"] for e in events]}, format="json")
    return [(e["type"], e["order"]["order_no"]) for e in events]


def _job_every():
    return float(settings.PERIODIC_JOBS["reconcile-platform-orders"]["every"])


@pytest.mark.parametrize("phase", [0.0, 7.0, 14.9])
def test_a_meituan_customer_cancel_without_a_push_reaches_the_pos_within_60_s(sim, shop, phase):
    meituan_shop(sim, shop)  # no push URL: the platform pushes nothing
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE]})[0]
    assert binding_pull(binding_id=shop["meituan"].pk).created == 1
    order = Order.objects.get(channel="meituan", channel_order_id=str(made["order_id"]))
    order_transition(order_id=order.pk, action="accept", actor=POS)
    outbox_relay(limit=10)
    pos = _pos_client(shop["store"])
    assert _pos_events(pos) == [("order.created", order.order_no)]
    every, young_every = _job_every(), settings.CHANNELS_RECONCILE_YOUNG_EVERY_SECONDS
    # A run of the job checks the order; the customer cancels right after it.
    checked_at = order.placed_at + timedelta(seconds=young_every)
    assert platform_orders_reconcile(now=checked_at).checked == 1
    requests.post(f"{sim.base_url}/_sim/meituan/orders/{made['order_id']}/cancel", json={"by": "customer"},
                  timeout=5).raise_for_status()

    # The job's runs in the next 60 s, every `every` seconds, at some phase to the check.
    seen_after, events = None, []
    for run in range(math.floor((60 - phase) / every) + 1):
        after = phase + run * every
        if after == 0:
            continue
        platform_orders_reconcile(now=checked_at + timedelta(seconds=after))
        events = _pos_events(pos)
        if events:
            seen_after = after
            break

    # The first run at least (young_every - every / 2) after the check sees the cancel.
    expected = phase + math.ceil((young_every - every / 2 - phase) / every) * every
    assert seen_after == expected
    assert seen_after <= 60
    assert events == [("order.cancelled", order.order_no)]
    order.refresh_from_db()
    assert (order.status, order.cancel_reason_code) == ("cancelled", "platform_cancelled")
    assert Stock.objects.get(store=shop["store"], sku=shop["chicken"]).on_hand == 10
    assert sim_calls(sim, "/", direction="out") == []  # no push was made


def test_young_eleme_orders_of_a_binding_are_checked_in_one_call(sim, shop):
    eleme_shop(sim, shop)
    made = sim_orders(sim, "eleme", {"shop": shop["eleme"].shop_code, "count": 2,
                                      "lines": [{"extend_code": "HC001", "quantity": 1}]})
    assert binding_pull(binding_id=shop["eleme"].pk).created == 2
    orders = {o.channel_order_id: o for o in Order.objects.filter(channel="eleme")}
    pos = _pos_client(shop["store"])
    _pos_events(pos)
    requests.post(f"{sim.base_url}/_sim/eleme/orders/{made[0]['id']}/cancel", json={"by": "customer"},
                  timeout=5).raise_for_status()
    placed = max(o.placed_at for o in orders.values())

    result = platform_orders_reconcile(
        now=placed + timedelta(seconds=settings.CHANNELS_RECONCILE_YOUNG_EVERY_SECONDS))

    assert (result.checked, result.changed, result.errors) == (2, 1, [])
    assert _pos_events(pos) == [("order.cancelled", orders[made[0]["id"]].order_no)]
    # One mgetOrders for the pull, one for the check of both orders; no getOrder per order.
    asked = [c["body"]["params"]["orderIds"] for c in sim_calls(sim, "/api/v1/eleme.order.mgetOrders", "in")]
    assert asked == [[o["id"] for o in made]] * 2
    assert [c for c in sim_calls(sim, "/api/v1/eleme.order.getOrder", "in")
            if c["route"] == "/api/v1/eleme.order.getOrder"] == []
