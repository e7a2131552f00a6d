"""Platform pickup orders and booked times: parsed at the adapter edge, carried into the order."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from channels.adapters.eleme import ElemeAdapter
from channels.adapters.meituan import MeituanAdapter
from channels.adapters.base import PlatformPayloadError
from channels.services import binding_pull, platform_order_ingest
from core.actors import Actor
from orders.models import Order
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.samples import CTIME, eleme_order, meituan_order
from tests.channels.sim_helpers import MT_LINE, eleme_shop, meituan_shop, sim_orders

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


def test_meituan_pick_type_1_is_a_pickup_order_without_an_address():
    parsed = MeituanAdapter().parse_order(None, meituan_order(pick_type=1, delivery_time=CTIME + 5400))

    assert parsed.order_type == "pickup"
    assert parsed.address == {}
    assert parsed.expected_at == datetime(2026, 11, 22, 13, 30, tzinfo=SHANGHAI)


def test_meituan_pick_type_0_and_delivery_time_0_is_delivery_as_soon_as_possible():
    parsed = MeituanAdapter().parse_order(None, meituan_order(pick_type=0, delivery_time=0))
    pushed = MeituanAdapter().parse_order(None, {k: str(v) for k, v in meituan_order(delivery_time=0).items()})

    assert (parsed.order_type, parsed.expected_at) == ("delivery", None)
    assert (pushed.order_type, pushed.expected_at) == ("delivery", None)  # push forms carry "0"


def test_eleme_order_business_type_1_is_pickup_and_deliver_time_is_local_china_time():
    parsed = ElemeAdapter().parse_order(None, eleme_order(orderBusinessType=1, book=True,
                                                          deliverTime="2026-11-22T13:15:00"))

    assert parsed.order_type == "pickup"
    assert parsed.address == {}
    assert parsed.expected_at == datetime(2026, 11, 22, 13, 15, tzinfo=SHANGHAI)


def test_bad_pickup_flags_or_times_are_payload_errors():
    with pytest.raises(PlatformPayloadError):
        MeituanAdapter().parse_order(None, meituan_order(pick_type="x"))
    with pytest.raises(PlatformPayloadError):
        ElemeAdapter().parse_order(None, eleme_order(orderBusinessType="x"))
    with pytest.raises(PlatformPayloadError):
        ElemeAdapter().parse_order(None, eleme_order(deliverTime="tomorrow"))


def test_a_booked_pickup_order_keeps_the_booked_time_when_accepted(shop):
    booked = CTIME + 7200  # 14:00, two hours after it was placed
    order = platform_order_ingest(binding=shop["meituan"],
                                  payload=meituan_order(pick_type=1, delivery_time=booked)).order

    assert (order.order_type, order.status, order.address) == ("pickup", "paid", {})
    assert order.expected_at == datetime(2026, 11, 22, 14, 0, tzinfo=SHANGHAI)
    order = order_transition(order_id=order.pk, action="accept", actor=Actor(kind="pos", id="T1"),
                             now=datetime(2026, 11, 22, 12, 1, tzinfo=SHANGHAI), prep_minutes=15)
    assert Order.objects.get(pk=order.pk).expected_at == datetime(2026, 11, 22, 14, 0, tzinfo=SHANGHAI)


def test_a_platform_pickup_order_tells_the_platform_accept_and_ready_but_not_the_pick_up(shop):
    from core.models import OutboxMessage

    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(pick_type=1)).order
    pos = Actor(kind="pos", id="T1")
    for action in ("accept", "mark_ready", "pick_up"):
        order = order_transition(order_id=order.pk, action=action, actor=pos)

    assert order.status == "picked_up"
    assert list(OutboxMessage.objects.filter(key=order.order_no).order_by("id")
                .values_list("payload__action", flat=True)) == ["accept", "mark_ready"]


def test_an_asap_pickup_order_is_expected_when_its_preparation_ends(shop):
    order = platform_order_ingest(binding=shop["eleme"], payload=eleme_order(orderBusinessType=1)).order
    assert (order.order_type, order.expected_at) == ("pickup", None)

    order_transition(order_id=order.pk, action="accept", actor=Actor(kind="pos", id="T1"),
                     now=datetime(2026, 11, 22, 12, 31, tzinfo=SHANGHAI), prep_minutes=10)

    assert Order.objects.get(pk=order.pk).expected_at == datetime(2026, 11, 22, 12, 41, tzinfo=SHANGHAI)


def test_a_booked_delivery_order_keeps_the_platforms_time(shop):
    order = platform_order_ingest(binding=shop["eleme"],
                                  payload=eleme_order(deliverTime="2026-11-22T18:30:00", book=True)).order

    assert (order.order_type, order.expected_at) == ("delivery", datetime(2026, 11, 22, 18, 30, tzinfo=SHANGHAI))
    assert order.address["text"] == "上海市静安区南京西路1266号"


def test_pulled_simulator_pickup_and_booked_orders_over_http(sim, shop):
    meituan_shop(sim, shop)
    eleme_shop(sim, shop)
    booked = int(datetime.now(tz=SHANGHAI).timestamp()) + 3600
    mt = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE], "pickup": True,
                                     "delivery_time": booked})[0]
    mt_asap = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE]})[0]
    el = sim_orders(sim, "eleme", {"shop": shop["eleme"].shop_code, "lines": [{"extend_code": "ZS001"}],
                                   "pickup": True, "delivery_time": booked})[0]

    assert (mt["pick_type"], mt["delivery_time"], mt["shipping_fee"]) == (1, booked, 0)
    assert (el["orderBusinessType"], el["book"], el["deliverFee"]) == (1, True, 0)
    assert binding_pull(binding_id=shop["meituan"].pk).created == 2
    assert binding_pull(binding_id=shop["eleme"].pk).created == 1

    pickup = Order.objects.get(channel="meituan", channel_order_id=str(mt["order_id"]))
    asap = Order.objects.get(channel="meituan", channel_order_id=str(mt_asap["order_id"]))
    el_pickup = Order.objects.get(channel="eleme", channel_order_id=el["id"])
    expected = datetime.fromtimestamp(booked, tz=SHANGHAI)
    assert (pickup.order_type, pickup.expected_at, str(pickup.delivery_fee)) == ("pickup", expected, "0.00")
    assert (asap.order_type, asap.expected_at) == ("delivery", None)
    assert (el_pickup.order_type, el_pickup.expected_at) == ("pickup", expected)


def test_the_simulators_generator_makes_some_pickup_and_some_booked_orders(sim):
    body = {"app_poi_code": "mt-gen", "app_id": "gen-app", "secret": "gen-secret"}
    assert requests.post(f"{sim.base_url}/_sim/meituan/shops", json=body, timeout=5).status_code == 201

    orders = sim_orders(sim, "meituan", {"shop": "mt-gen", "count": 200})

    pickups = [o for o in orders if o["pick_type"] == 1]
    booked = [o for o in orders if o["delivery_time"]]
    assert 5 <= len(pickups) <= 60 and 10 <= len(booked) <= 80
    assert all(o["shipping_fee"] == 0 for o in pickups)
    assert all(o["delivery_time"] - o["ctime"] == 3600 for o in booked)
