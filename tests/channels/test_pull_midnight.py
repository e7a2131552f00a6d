"""Meituan pull across midnight: yesterday's last orders are finished in a grace window.

The clock is controlled: our side pulls with ``now`` = 00:01 (or 00:31) of today, and
the simulator's orders of the evening before are back-dated with ``created_at``.
"""

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from channels.services import binding_pull
from orders.models import Order
from simulator.testing import running_simulator
from tests.channels.sim_helpers import MT_LINE, meituan_shop, sim_calls, sim_orders


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


def _local(day, hour, minute, second=0):
    return timezone.make_aware(datetime.combine(day, time(hour, minute, second)))


def _days():
    today = timezone.localdate()
    yesterday = today - timedelta(days=1)
    return today, yesterday, today.strftime("%Y%m%d"), yesterday.strftime("%Y%m%d")


def test_a_pull_just_after_midnight_finishes_yesterday_then_pulls_today(sim, shop, settings):
    settings.CHANNELS_MEITUAN_MIDNIGHT_GRACE_MINUTES = 30
    today, yesterday, today_key, yesterday_key = _days()
    meituan_shop(sim, shop)
    code = shop["meituan"].shop_code
    pulled_before = sim_orders(sim, "meituan", {"shop": code, "lines": [MT_LINE],
                                                "created_at": int(_local(yesterday, 23, 50).timestamp())})[0]
    late = sim_orders(sim, "meituan", {"shop": code, "lines": [MT_LINE],
                                       "created_at": int(_local(yesterday, 23, 59).timestamp())})[0]
    fresh = sim_orders(sim, "meituan", {"shop": code, "lines": [MT_LINE]})[0]
    assert (pulled_before["day_seq"], late["day_seq"], fresh["day_seq"]) == (1, 2, 1)
    shop["meituan"].pull_state = {yesterday_key: 1}  # the 23:55 pull had the 23:50 order
    shop["meituan"].save()

    result = binding_pull(binding_id=shop["meituan"].pk, now=_local(today, 0, 1))

    assert (result.pulled, result.created, result.errors) == (2, 2, [])
    assert sorted(Order.objects.filter(channel="meituan").values_list("channel_order_id", flat=True)) == sorted(
        [str(late["order_id"]), str(fresh["order_id"])])
    shop["meituan"].refresh_from_db()
    assert shop["meituan"].pull_state == {yesterday_key: 2, today_key: 1}
    walked = [(c["query"]["date_time"], c["query"]["day_seq"])
              for c in sim_calls(sim, "/api/v1/order/getOrderIdByDaySeq", direction="in")]
    # Yesterday ends after 3 day numbers in a row without an order (a gap does not end it).
    assert walked == [(yesterday_key, "2"), (yesterday_key, "3"), (yesterday_key, "4"), (yesterday_key, "5"),
                      (today_key, "1")]

    again = binding_pull(binding_id=shop["meituan"].pk, now=_local(today, 0, 2))
    assert (again.pulled, again.errors) == (0, [])


def test_after_the_grace_window_yesterday_is_left_alone(sim, shop, settings):
    settings.CHANNELS_MEITUAN_MIDNIGHT_GRACE_MINUTES = 30
    today, yesterday, today_key, yesterday_key = _days()
    meituan_shop(sim, shop)
    sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE],
                                "created_at": int(_local(yesterday, 23, 59).timestamp())})
    shop["meituan"].pull_state = {yesterday_key: 0}
    shop["meituan"].save()

    result = binding_pull(binding_id=shop["meituan"].pk, now=_local(today, 0, 30))

    assert (result.pulled, result.errors) == (0, [])
    assert sim_calls(sim, "/api/v1/order/getOrderIdByDaySeq", direction="in") == []
    shop["meituan"].refresh_from_db()
    assert shop["meituan"].pull_state == {yesterday_key: 0}


def test_a_day_the_binding_never_pulled_is_not_walked(sim, shop):
    today, yesterday, _today_key, _yesterday_key = _days()
    meituan_shop(sim, shop)
    sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE],
                                "created_at": int(_local(yesterday, 23, 59).timestamp())})

    result = binding_pull(binding_id=shop["meituan"].pk, now=_local(today, 0, 1))

    assert (result.pulled, result.errors) == (0, [])
    assert sim_calls(sim, "/api/v1/order/getOrderIdByDaySeq", direction="in") == []


def test_a_failing_walk_of_yesterday_does_not_hold_up_today(sim, shop, settings):
    import requests

    settings.CHANNELS_MEITUAN_MIDNIGHT_GRACE_MINUTES = 30
    today, yesterday, today_key, yesterday_key = _days()
    meituan_shop(sim, shop)
    code = shop["meituan"].shop_code
    late = sim_orders(sim, "meituan", {"shop": code, "lines": [MT_LINE],
                                       "created_at": int(_local(yesterday, 23, 59).timestamp())})[0]
    fresh = sim_orders(sim, "meituan", {"shop": code, "lines": [MT_LINE]})[0]
    shop["meituan"].pull_state = {yesterday_key: 0}
    shop["meituan"].save()
    # Yesterday's first day-sequence lookup fails on every attempt; then the platform is back.
    assert requests.post(f"{sim.base_url}/_sim/faults", json={
        "path_prefix": "/api/v1/order/getOrderIdByDaySeq", "mode": "error500",
        "count": settings.CHANNELS_PULL_CALL_ATTEMPTS}, timeout=5).status_code == 201

    first = binding_pull(binding_id=shop["meituan"].pk, now=_local(today, 0, 1))
    assert sorted(Order.objects.filter(channel="meituan").values_list("channel_order_id", flat=True)) == [
        str(fresh["order_id"])]
    assert first.created == 1
    shop["meituan"].refresh_from_db()
    assert shop["meituan"].pull_state == {yesterday_key: 1, today_key: 1, "missing": {yesterday_key: [1]},
                                          "attempts": {f"{yesterday_key}/1": 1}}
    second = binding_pull(binding_id=shop["meituan"].pk, now=_local(today, 0, 2))

    assert second.created == 1
    assert sorted(Order.objects.filter(channel="meituan").values_list("channel_order_id", flat=True)) == sorted(
        [str(late["order_id"]), str(fresh["order_id"])])
    shop["meituan"].refresh_from_db()
    assert shop["meituan"].pull_state == {yesterday_key: 1, today_key: 1}
