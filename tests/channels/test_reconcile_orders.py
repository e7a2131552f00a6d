"""The reconciliation job: open platform orders are fetched from the platform (over real
HTTP to the simulator) and moved forward when a push was lost; never backwards."""

from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.utils import timezone

from aftersales.models import AfterSalesRequest
from channels.models import PlatformOrderCheck
from channels.services import binding_pull, platform_orders_reconcile
from channels.services.reconcile import _claim
from core.actors import Actor
from core.outbox import outbox_relay
from core.scheduler import EmbeddedScheduler
from inventory.models import Stock
from orders.models import Order
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.sim_helpers import MT_LINE, eleme_shop, meituan_shop, sim_orders

POS = Actor(kind="pos", id="T1")


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


def _later(minutes=11):
    return timezone.now() + timedelta(minutes=minutes)


def _accepted_meituan_order(sim, shop):
    meituan_shop(sim, shop)
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE]})[0]
    assert binding_pull(binding_id=shop["meituan"].pk).created == 1
    order = Order.objects.get(channel="meituan", channel_order_id=str(made["order_id"]))
    order_transition(order_id=order.pk, action="accept", actor=POS)
    outbox_relay(limit=10)
    return order, str(made["order_id"])


def test_a_cancellation_whose_push_was_lost_is_applied(sim, shop):
    order, platform_id = _accepted_meituan_order(sim, shop)
    assert Stock.objects.get(store=shop["store"], sku=shop["chicken"]).on_hand == 8
    requests.post(f"{sim.base_url}/_sim/meituan/orders/{platform_id}/cancel", json={"by": "customer"}, timeout=5)

    result = platform_orders_reconcile(now=_later())

    assert (result.checked, result.changed, result.errors) == (1, 1, [])
    order.refresh_from_db()
    assert (order.status, order.cancel_reason_code) == ("cancelled", "platform_cancelled")
    assert Stock.objects.get(store=shop["store"], sku=shop["chicken"]).on_hand == 10
    assert PlatformOrderCheck.objects.get(order=order).last_error == ""


def test_an_order_the_platforms_riders_delivered_becomes_delivered(sim, shop):
    order, platform_id = _accepted_meituan_order(sim, shop)
    requests.post(f"{sim.base_url}/_sim/meituan/orders/{platform_id}/complete", json={}, timeout=5)

    platform_orders_reconcile(now=_later())

    assert Order.objects.get(pk=order.pk).status == "delivered"  # completing stays the after-sales job's


def test_young_orders_are_checked_every_30_s_and_older_ones_every_5_minutes(sim, shop):
    order, _platform_id = _accepted_meituan_order(sim, shop)
    placed = Order.objects.get(pk=order.pk).placed_at

    def checked_at(seconds):
        return platform_orders_reconcile(now=placed + timedelta(seconds=seconds)).checked

    # Due 30 s after the last check (or the placing), half a job interval (7.5 s) early counting as due.
    young = [checked_at(s) for s in (20, 23, 40, 45, 53)]
    # Past 60 minutes: every 300 s.
    older = [checked_at(s) for s in (3600, 3700, 3893, 3900)]

    assert young == [0, 1, 0, 0, 1]
    assert older == [1, 0, 1, 0]
    assert Order.objects.get(pk=order.pk).status == "accepted"  # nothing changed on the platform


def test_the_platform_never_moves_an_order_back(sim, shop):
    order, _platform_id = _accepted_meituan_order(sim, shop)
    for action in ("mark_ready", "dispatch"):
        order_transition(order_id=order.pk, action=action, actor=POS)  # not relayed: the platform still says 4

    result = platform_orders_reconcile(now=_later())

    assert (result.checked, result.changed) == (1, 0)
    assert Order.objects.get(pk=order.pk).status == "dispatched"


def test_a_lost_eleme_refund_application_is_recorded(sim, shop):
    eleme_shop(sim, shop)
    made = sim_orders(sim, "eleme", {"shop": shop["eleme"].shop_code, "lines": [{"extend_code": "ZS001"}]})[0]
    binding_pull(binding_id=shop["eleme"].pk)
    order = Order.objects.get(channel="eleme", channel_order_id=made["id"])
    order_transition(order_id=order.pk, action="accept", actor=POS)
    outbox_relay(limit=10)
    requests.post(f"{sim.base_url}/_sim/eleme/orders/{made['id']}/refund_apply", json={}, timeout=5)

    platform_orders_reconcile(now=_later())

    request = AfterSalesRequest.objects.get(order=order)
    assert (request.scope, request.amount, request.status) == ("order", Decimal("29.00"), "requested")
    assert Order.objects.get(pk=order.pk).needs_attention is True


def test_a_failing_platform_is_recorded_and_the_order_left_as_it_is(sim, shop):
    order, _platform_id = _accepted_meituan_order(sim, shop)
    requests.post(f"{sim.base_url}/_sim/faults", json={"path_prefix": "/api/v1/order/getOrderDetail",
                                                       "mode": "error500", "count": 1}, timeout=5)

    result = platform_orders_reconcile(now=_later())

    assert result.checked == 0
    assert result.errors == [f"{order.pk}: PlatformUnavailable: meituan order/getOrderDetail: HTTP 500"]
    assert PlatformOrderCheck.objects.get(order=order).last_error == \
        "PlatformUnavailable: meituan order/getOrderDetail: HTTP 500"
    assert Order.objects.get(pk=order.pk).status == "accepted"


def test_closed_orders_are_never_asked_about(sim, shop):
    order, _platform_id = _accepted_meituan_order(sim, shop)
    order_transition(order_id=order.pk, action="cancel", actor=Actor(kind="staff", id="1"), reason_code="other")

    assert platform_orders_reconcile(now=_later()).checked == 0


def test_an_order_is_claimed_by_one_run_only(shop):
    from tests.channels.samples import meituan_order
    from channels.services import platform_order_ingest

    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order()).order
    now = timezone.now()

    assert (_claim(order_id=order.pk, seen=None, now=now), _claim(order_id=order.pk, seen=None, now=now)) == (
        True, False)
    later = now + timedelta(minutes=6)
    assert (_claim(order_id=order.pk, seen=now, now=later), _claim(order_id=order.pk, seen=now, now=later)) == (
        True, False)


def test_the_job_is_in_the_beat_schedule_and_the_embedded_scheduler(db):
    job = settings.PERIODIC_JOBS["reconcile-platform-orders"]

    assert job == {"task": "channels.reconcile_platform_orders", "every": 15}
    assert settings.CELERY_BEAT_SCHEDULE["reconcile-platform-orders"] == {
        "task": "channels.reconcile_platform_orders", "schedule": 15.0}
    assert EmbeddedScheduler(jobs={"reconcile-platform-orders": job}, clock=lambda: 0.0).run_due() == [
        "reconcile-platform-orders"]


def test_never_checked_orders_come_before_rechecks_when_more_are_due_than_the_limit(shop):
    from channels.services import platform_order_ingest
    from channels.services.reconcile import platform_orders_due_for_check
    from tests.channels.samples import meituan_order

    orders = [platform_order_ingest(binding=shop["meituan"], payload=meituan_order(order_id=f"9100{i}")).order
              for i in range(3)]
    for minutes, order in zip((30, 20, 15), orders):
        Order.objects.filter(pk=order.pk).update(placed_at=timezone.now() - timedelta(minutes=minutes))
    now = _later()
    # The two oldest were checked long ago; the newest was never checked.
    for order in orders[:2]:
        PlatformOrderCheck.objects.create(order=order, checked_at=now - timedelta(minutes=30))

    due = platform_orders_due_for_check(now=now, limit=1)

    assert due == [(orders[2].pk, None)]
