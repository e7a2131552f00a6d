"""Inbound faults by chance (``rate`` with a ``seed``), after some calls (``after``) and
without a limit (``count`` 0), over real HTTP."""

import pytest

from tests.simulator.conftest import MT_SHOP, control, mt_call, mt_shop

DAY_SEQ = "/api/v1/order/getOrderDaySeq"


def _statuses(sim, calls):
    return [mt_call(sim, "order/getOrderDaySeq", {"app_poi_code": MT_SHOP}).status_code for _ in range(calls)]


def _arm(sim, **spec):
    return control(sim, "POST", "faults", {"path_prefix": DAY_SEQ, "mode": "error500", **spec}, status=201)["fault"]


def test_a_rate_fails_about_that_share_of_calls_and_the_same_seed_the_same_ones(sim):
    mt_shop(sim)
    armed = _arm(sim, rate=0.3, seed=7)

    first = _statuses(sim, 300)
    listed = control(sim, "GET", "faults")["faults"]
    logged = [c["fault"] for c in control(sim, "GET", f"calls?path_prefix={DAY_SEQ}")["calls"]]
    control(sim, "POST", "reset", status=200)
    mt_shop(sim)
    _arm(sim, rate=0.3, seed=7)
    again = _statuses(sim, 300)
    control(sim, "POST", "reset", status=200)
    mt_shop(sim)
    _arm(sim, rate=0.3, seed=8)
    other_seed = _statuses(sim, 300)

    assert (armed["count"], armed["rate"], armed["seed"]) == (0, 0.3, 7)  # no limit with a rate
    assert set(first) == {200, 500}
    assert 60 <= first.count(500) <= 120  # 30 % of 300, give or take
    assert again == first
    assert other_seed != first
    assert [(f["seen"], f["fired"]) for f in listed] == [(300, first.count(500))]
    assert logged == ["error500" if status == 500 else "" for status in first]


def test_after_lets_the_first_calls_through(sim):
    mt_shop(sim)
    _arm(sim, after=2, count=1)

    assert _statuses(sim, 5) == [200, 200, 500, 200, 200]
    assert control(sim, "GET", "faults")["faults"] == []


def test_count_zero_fails_every_call_until_a_reset(sim):
    mt_shop(sim)
    _arm(sim, count=0)

    assert _statuses(sim, 4) == [500, 500, 500, 500]
    control(sim, "POST", "reset", status=200)
    mt_shop(sim)
    assert _statuses(sim, 1) == [200]


@pytest.mark.parametrize("spec", [
    {"mode": "error500", "rate": 0},
    {"mode": "error500", "rate": 1.5},
    {"mode": "error500", "rate": True},
    {"mode": "error500", "rate": 0.3, "seed": "7"},
    {"mode": "error500", "after": -1},
    {"mode": "duplicate", "rate": 0.5},
    {"mode": "shuffle", "count": 0},
])
def test_a_fault_that_cannot_be_armed_is_refused(sim, spec):
    answer = control(sim, "POST", "faults", {"path_prefix": "/", **spec}, status=400)

    assert answer["code"] == "BAD_REQUEST"
    assert control(sim, "GET", "faults")["faults"] == []
