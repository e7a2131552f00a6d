"""Pulls make progress under faults, over real HTTP against the simulator: an order
fetched is kept whatever a later call of the same pull does, a day sequence that
failed is retried while the later ones go on, and with 30 % of the platform calls
answering 500 every order arrives within three pulls of being placed."""

import random
import threading
from collections import Counter
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from channels.models import StoreBinding
from channels.services import binding_pull
from inventory.services import stock_ledger_mismatches
from orders.models import Order
from simulator.testing import running_simulator
from tests.channels.sim_helpers import MT_LINE, eleme_shop, meituan_shop, sim_calls, sim_orders, wait_for
from tests.factories import StoreBindingFactory, StoreFactory


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


def _fault(sim, **spec):
    answer = requests.post(f"{sim.base_url}/_sim/faults", json=spec, timeout=5)
    assert answer.status_code == 201, answer.text


def _today():
    return timezone.localdate().strftime("%Y%m%d")


def _meituan_ids():
    return set(Order.objects.filter(channel="meituan").values_list("channel_order_id", flat=True))


def test_a_failure_at_order_7_of_10_keeps_the_others_and_the_next_pull_takes_7(sim, shop, settings):
    settings.CHANNELS_PULL_RETRY_DELAY_SECONDS = 0
    meituan_shop(sim, shop)
    made = [str(o["order_id"]) for o in sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code,
                                                                    "count": 10, "lines": [MT_LINE]})]
    # The 7th order's detail answers 500 on every attempt of this pull.
    _fault(sim, mode="error500", path_prefix="/api/v1/order/getOrderDetail", after=6,
           count=settings.CHANNELS_PULL_CALL_ATTEMPTS)

    first = binding_pull(binding_id=shop["meituan"].pk)
    kept = _meituan_ids()
    shop["meituan"].refresh_from_db()
    state_after_first = shop["meituan"].pull_state
    calls_before = len(sim_calls(sim, "/api/v1/order/getOrderIdByDaySeq", direction="in"))
    second = binding_pull(binding_id=shop["meituan"].pk)
    looked_up = [c["query"]["day_seq"]
                 for c in sim_calls(sim, "/api/v1/order/getOrderIdByDaySeq", direction="in")[calls_before:]]

    assert (first.pulled, first.created, first.errors) == (9, 9, ["meituan order/getOrderDetail: HTTP 500"])
    assert kept == set(made[:6] + made[7:])
    assert state_after_first == {_today(): 10, "missing": {_today(): [7]}, "attempts": {f"{_today()}/7": 1}}
    assert (second.pulled, second.created, second.errors) == (1, 1, [])
    assert looked_up == ["7"]  # the missing one only: 8 to 10 are not fetched again
    assert _meituan_ids() == set(made)
    shop["meituan"].refresh_from_db()
    assert (shop["meituan"].pull_state, shop["meituan"].last_error) == ({_today(): 10}, "")


def test_two_failures_in_a_row_end_the_walk_and_the_next_pull_goes_on_from_there(sim, shop, settings):
    settings.CHANNELS_PULL_RETRY_DELAY_SECONDS = 0
    meituan_shop(sim, shop)
    made = [str(o["order_id"]) for o in sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code,
                                                                    "count": 5, "lines": [MT_LINE]})]
    # The platform goes down after the second order: every call fails for a while.
    _fault(sim, mode="error500", path_prefix="/api/v1/order/getOrderIdByDaySeq", after=2,
           count=2 * settings.CHANNELS_PULL_CALL_ATTEMPTS)

    first = binding_pull(binding_id=shop["meituan"].pk)
    shop["meituan"].refresh_from_db()
    state_after_first = shop["meituan"].pull_state
    second = binding_pull(binding_id=shop["meituan"].pk)

    assert (first.created, len(first.errors)) == (2, 2)
    assert state_after_first == {_today(): 4, "missing": {_today(): [3, 4]},  # 5 not walked yet
                                 "attempts": {f"{_today()}/3": 1, f"{_today()}/4": 1}}
    assert (second.created, second.errors) == (3, [])
    assert _meituan_ids() == set(made)


def test_a_pull_holds_its_binding_by_a_lease_that_a_dead_pull_leaves_to_expire(sim, shop):
    meituan_shop(sim, shop)
    sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE]})
    StoreBinding.objects.filter(pk=shop["meituan"].pk).update(
        pull_lease_until=timezone.now() + timedelta(seconds=60))  # a pull is running

    while_held = binding_pull(binding_id=shop["meituan"].pk)
    StoreBinding.objects.filter(pk=shop["meituan"].pk).update(
        pull_lease_until=timezone.now() - timedelta(seconds=1))  # that pull died; its lease ran out
    after_expiry = binding_pull(binding_id=shop["meituan"].pk)

    assert (while_held.skipped, while_held.created) == (True, 0)
    assert (after_expiry.skipped, after_expiry.created) == (False, 1)
    assert StoreBinding.objects.get(pk=shop["meituan"].pk).pull_lease_until is None  # released at the end


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_each_order_is_committed_with_the_pull_state_before_the_next_call(sim, shop):
    meituan_shop(sim, shop)
    sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "count": 5, "lines": [MT_LINE]})
    # The 4th order's detail takes a second: meanwhile, what is committed is visible.
    _fault(sim, mode="slow", path_prefix="/api/v1/order/getOrderDetail", after=3, count=1, delay=1.0)
    results = []

    def pull():
        try:
            results.append(binding_pull(binding_id=shop["meituan"].pk))
        finally:
            connection.close()

    puller = threading.Thread(target=pull)
    puller.start()
    try:
        seen_mid_pull = wait_for(lambda: Order.objects.filter(channel="meituan").count() == 3, seconds=10)
        still_pulling = puller.is_alive()
        state_mid_pull = StoreBinding.objects.get(pk=shop["meituan"].pk).pull_state
    finally:
        puller.join(timeout=30)

    assert (seen_mid_pull, still_pulling) == (True, True)
    assert state_mid_pull == {_today(): 3}
    assert (results[0].created, results[0].errors) == (5, [])
    assert StoreBinding.objects.get(pk=shop["meituan"].pk).pull_state == {_today(): 5}


# --- 30 % of the platform calls answer 500 ------------------------------------------------------

PERIODS = 16  # pull periods with new orders, then two more to let the last ones arrive
SEED = 8


def _second_meituan_shop(sim, shop):
    store = StoreFactory(brand=shop["store"].brand, name="老街坊·静安店")
    binding = StoreBindingFactory(store=store, platform="meituan", shop_code="mt-poi-002", app_id="6002",
                                  secret="mt-secret-2", base_url=sim.base_url)
    requests.post(f"{sim.base_url}/_sim/meituan/shops", json={
        "app_poi_code": binding.shop_code, "app_id": binding.app_id, "secret": binding.secret,
        "package_bag_money": 1}, timeout=5).raise_for_status()
    return binding


def test_with_30_percent_of_calls_failing_every_order_arrives_within_three_pulls(sim, shop, settings, capsys):
    settings.CHANNELS_PULL_RETRY_DELAY_SECONDS = 0  # the retries' pause is not what is tested
    meituan_shop(sim, shop)
    eleme_shop(sim, shop)
    shops = [(shop["meituan"], "meituan", "order_id"), (_second_meituan_shop(sim, shop), "meituan", "order_id"),
             (shop["eleme"], "eleme", "id")]
    _fault(sim, mode="error500", path_prefix="/api/v1/", rate=0.3, seed=SEED)
    rng = random.Random(SEED)
    placed_in: dict[str, int] = {}
    arrived_in: dict[str, int] = {}

    for period in range(PERIODS + 2):
        if period < PERIODS:
            for binding, platform, key in shops:
                count = rng.randint(0, 3)
                if count:
                    made = sim_orders(sim, platform, {"shop": binding.shop_code, "count": count})
                    placed_in.update({str(o[key]): period for o in made})
        for binding, _platform, _key in shops:
            binding_pull(binding_id=binding.pk)  # one pull period of this binding
        for order_id in Order.objects.values_list("channel_order_id", flat=True):
            arrived_in.setdefault(order_id, period)

    pulls_needed = Counter(arrived_in[order_id] - placed + 1 for order_id, placed in placed_in.items()
                           if order_id in arrived_in)
    calls = sim_calls(sim, "/api/v1/", direction="in")
    failed = sum(1 for call in calls if call["fault"] == "error500")
    with capsys.disabled():
        print(f"\n30 % faults: {len(placed_in)} orders placed in {PERIODS} periods, {len(calls)} platform calls, "
              f"{failed} answered 500; pulls needed per order: {dict(sorted(pulls_needed.items()))}")

    assert set(arrived_in) == set(placed_in)  # every order arrived, no other
    assert max(pulls_needed) <= 3
    assert Order.objects.count() == len(placed_in) == len(set(Order.objects.values_list("channel_order_id")))
    assert stock_ledger_mismatches() == []
    assert 0.25 * len(calls) <= failed <= 0.35 * len(calls)  # the faults really were 30 %


def test_day_sequences_that_never_ingest_cannot_starve_new_orders_and_go_to_a_person(sim, shop, settings):
    """60 missing day sequences whose lookups always fail and 3 new orders: the new ones
    arrive in the first pull (the retries have their own budget), each missing one is
    tried at most CHANNELS_PULL_MISSING_MAX_ATTEMPTS pulls, then it is in the person's
    list exactly once and no pull asks for it again."""
    from channels.models import UnreadablePlatformOrder

    settings.CHANNELS_PULL_RETRY_DELAY_SECONDS = 0
    settings.CHANNELS_PULL_CALL_ATTEMPTS = 1
    settings.CHANNELS_PULL_MISSING_PER_PULL = 60
    settings.CHANNELS_PULL_MISSING_MAX_ATTEMPTS = 2
    meituan_shop(sim, shop)
    today = _today()
    earlier = (timezone.localdate() - timedelta(days=2)).strftime("%Y%m%d")  # clear of the midnight walk
    StoreBinding.objects.filter(pk=shop["meituan"].pk).update(
        pull_state={earlier: 200, "missing": {earlier: list(range(101, 161))}})
    made = [str(o["order_id"]) for o in sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code,
                                                                    "count": 3, "lines": [MT_LINE]})]
    lookups = "/api/v1/order/getOrderIdByDaySeq"

    results = []
    for _pull in range(3):
        _fault(sim, mode="error500", path_prefix=lookups, count=60)  # the 60 retries come first and fail
        before = len(sim_calls(sim, lookups, direction="in"))
        results.append(binding_pull(binding_id=shop["meituan"].pk))
        results[-1].calls = len(sim_calls(sim, lookups, direction="in")) - before

    assert _meituan_ids() == set(made)
    assert [(r.created, r.calls) for r in results] == [(3, 63), (0, 60), (0, 0)]
    # the third pull asked for no missing one: its 60 armed faults hit nothing
    state = StoreBinding.objects.get(pk=shop["meituan"].pk).pull_state
    assert state == {earlier: 200, today: 3}
    handed = UnreadablePlatformOrder.objects.filter(binding=shop["meituan"]).order_by("reference")
    assert handed.count() == 60
    assert sorted(handed.values_list("reference", flat=True)) == sorted(f"{earlier}/{seq}" for seq in range(101, 161))
    assert {(h.attempts, h.resolved_at) for h in handed} == {(2, None)}
    assert "500" in handed.first().last_error


def test_a_missing_day_sequence_older_than_a_week_goes_to_a_person_not_away(settings):
    """The pull state keeps a week of dates; a day sequence still missing when its date
    leaves it is handed over with the others the adapter gave up, not dropped."""
    from channels.adapters.base import PulledOrder
    from channels.adapters.meituan import MeituanAdapter

    dates = [f"202611{day:02d}" for day in range(20, 28)]  # 8 dates: the oldest leaves
    state = {**{date: 5 for date in dates}, "missing": {dates[0]: [2, 4]}, "attempts": {f"{dates[0]}/2": 3}}

    after = MeituanAdapter().pull_state_after(None, state=state, pulled=PulledOrder(key=(dates[-1], 6)), done=True)

    assert after == {**{date: 5 for date in dates[1:-1]}, dates[-1]: 6, "given_up": [
        {"reference": f"{dates[0]}/2", "attempts": 3, "error": "not ingested within a week"},
        {"reference": f"{dates[0]}/4", "attempts": 0, "error": "not ingested within a week"}]}
    settings.CHANNELS_PULL_MISSING_MAX_ATTEMPTS = 3
    retried = MeituanAdapter().pull_state_after(None, state={dates[-1]: 9, "attempts": {f"{dates[-1]}/4": 1}},
                                                pulled=PulledOrder(key=(dates[-1], 4), error="HTTP 500"), done=False)
    assert retried == {dates[-1]: 9, "missing": {dates[-1]: [4]}, "attempts": {f"{dates[-1]}/4": 2}}
    given_up = MeituanAdapter().pull_state_after(None, state=retried,
                                                 pulled=PulledOrder(key=(dates[-1], 4), error="HTTP 500"), done=False)
    assert given_up == {dates[-1]: 9, "given_up": [{"reference": f"{dates[-1]}/4", "attempts": 3,
                                                    "error": "HTTP 500"}]}
