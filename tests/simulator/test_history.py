"""Orders the platforms already have at start (``--orders FILE``, simulator.history): each is an
order of its shop as if the platform had made it, with its id, status and day sequence number."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from simulator.__main__ import load_orders_file, with_push_base_url
from simulator.history import OrderHistoryError
from simulator.testing import running_simulator
from tests.simulator.conftest import (
    EL_APP_KEY,
    EL_SECRET,
    EL_SHOP,
    EL_TOKEN,
    MT_APP_ID,
    MT_SECRET,
    MT_SHOP,
    control,
    el_call,
    mt_call,
)

ROOT = Path(__file__).resolve().parents[2]
TODAY = int(time.time()) - 600
MT_SHOPS = ({"app_poi_code": MT_SHOP, "app_id": MT_APP_ID, "secret": MT_SECRET},)
EL_SHOPS = ({"shop_id": EL_SHOP, "app_key": EL_APP_KEY, "secret": EL_SECRET, "token": EL_TOKEN},)


def meituan_order(order_id, *, day_seq=None, status=2, **changes):
    spec = {"order_id": order_id, "shop": MT_SHOP, "status": status, "created_at": TODAY,
            "lines": [{"app_food_code": "mt_gbjd", "sku_id": "1001001", "quantity": 2}],
            "shipping_fee": 4, "promotions": [{"name": "满50减6", "platform": 2, "merchant": 4}],
            "recipient_name": "张女士", "recipient_phone": "18400000001", "recipient_address": "静安区江宁路1158号",
            "caution": "少辣", **changes}
    if day_seq is not None:
        spec["day_seq"] = day_seq
    return spec


def eleme_order(order_id, *, day_seq=None, status="unprocessed", **changes):
    spec = {"id": order_id, "shop": EL_SHOP, "status": status, "created_at": TODAY,
            "lines": [{"extend_code": "HC001", "name": "宫保鸡丁", "price": 38, "package_fee": 2, "quantity": 1}],
            "deliver_fee": 4, "consignee": "李先生", "phone": "18400000002", "address": "徐汇区天钥桥路580号",
            **changes}
    if day_seq is not None:
        spec["day_seq"] = day_seq
    return spec


def mt_data(sim, path, params, **kwargs):
    answer = mt_call(sim, path, params, **kwargs).json()
    assert "error" not in answer, answer
    return answer["data"]


def test_a_loaded_meituan_order_is_answered_moved_and_numbered_like_one_the_platform_made():
    orders = (meituan_order(27900000000012, day_seq=2, status=4, meal_ready=True),
              meituan_order(27900000000011, day_seq=1))
    with running_simulator(meituan_shops=MT_SHOPS, meituan_orders=orders) as sim:
        detail = mt_data(sim, "order/getOrderDetail", {"order_id": 27900000000012})
        confirmed = mt_data(sim, "order/confirm", {"order_id": 27900000000011}, method="POST")
        ready = mt_data(sim, "order/preparationMealComplete", {"order_id": 27900000000012}, method="POST")
        day = time.strftime("%Y%m%d", time.gmtime(TODAY + 8 * 3600))
        first = mt_data(sim, "order/getOrderIdByDaySeq", {"app_poi_code": MT_SHOP, "date_time": day, "day_seq": 1})
        [live] = control(sim, "POST", "meituan/orders", {"shop": MT_SHOP, "created_at": TODAY}, status=201)["orders"]
        pushed = [c for c in control(sim, "GET", "calls?direction=out")["calls"]]

    assert (detail["order_id"], detail["status"], detail["day_seq"], detail["app_poi_code"]) == (
        27900000000012, 4, 2, MT_SHOP)
    assert (detail["recipient_name"], detail["recipient_phone"], detail["caution"]) == ("张女士", "18400000001", "少辣")
    assert json.loads(detail["detail"])[0]["app_food_code"] == "mt_gbjd"
    # original_price: 2 x 38 + box 2 x 2 + shipping 4 (PLATFORMS.md); total: that - (2 + 4)
    assert (detail["original_price"], detail["shipping_fee"], detail["total"]) == (84.0, 4.0, 78.0)
    assert json.loads(detail["extras"]) == [{"act_detail_id": 700001, "reduce_fee": 6.0, "mt_charge": 2.0,
                                             "poi_charge": 4.0, "remark": "满50减6", "type": 2}]
    assert (confirmed, ready) == ("ok", "ok")
    assert first == {"order_id": 27900000000011}
    assert live["day_seq"] == 3  # the shop's next order of the day comes after the loaded ones
    assert pushed == []  # loading pushes nothing


def test_a_loaded_eleme_order_is_answered_and_confirmed():
    with running_simulator(eleme_shops=EL_SHOPS, eleme_orders=(eleme_order("3000000000000000007", day_seq=1),)) as sim:
        got = el_call(sim, "eleme.order.getOrder", {"orderId": "3000000000000000007"})
        confirmed = el_call(sim, "eleme.order.confirmOrderLite", {"orderId": "3000000000000000007"})
        after = el_call(sim, "eleme.order.getOrder", {"orderId": "3000000000000000007"})

    order = got["result"]
    assert (order["id"], order["status"], order["daySn"], order["consignee"]) == (
        "3000000000000000007", "unprocessed", 1, "李先生")
    assert order["groups"][0]["items"][0]["extendCode"] == "HC001"
    assert (order["originalPrice"], order["deliverFee"], order["totalPrice"]) == (44.0, 4.0, 44.0)
    assert (confirmed["error"], after["result"]["status"]) == (None, "valid")


def test_day_numbers_loaded_with_gaps_or_twice_are_renumbered_without_a_gap():
    orders = (meituan_order(1003, day_seq=40), meituan_order(1001, day_seq=7), meituan_order(1002, day_seq=7),
              meituan_order(1004))
    with running_simulator(meituan_shops=MT_SHOPS, meituan_orders=orders) as sim:
        seqs = {o["order_id"]: o["day_seq"] for o in control(sim, "GET", "meituan/orders")["orders"]}

    assert seqs == {1001: 1, 1002: 2, 1003: 3, 1004: 4}


def test_a_reset_loads_the_orders_again():
    with running_simulator(meituan_shops=MT_SHOPS, meituan_orders=(meituan_order(2001, day_seq=1),)) as sim:
        mt_data(sim, "order/confirm", {"order_id": 2001}, method="POST")
        control(sim, "POST", "reset", status=200)
        after = mt_data(sim, "order/getOrderDetail", {"order_id": 2001})

    assert after["status"] == 2


@pytest.mark.parametrize(("spec", "message"), [
    (meituan_order(5, shop="mt-nowhere"), "meituan order 5: no Meituan shop mt-nowhere"),
    (meituan_order(5, status=5), "meituan order 5: status must be one of [1, 2, 3, 4, 6, 8, 9]"),
    ({"order_id": 5, "shop": MT_SHOP, "status": 2, "created_at": TODAY}, "meituan order 5: missing 'lines'"),
])
def test_an_order_the_simulator_cannot_take_is_refused_with_its_id(spec, message):
    with pytest.raises(OrderHistoryError) as refused, running_simulator(meituan_shops=MT_SHOPS, meituan_orders=(spec,)):
        pass

    assert str(refused.value) == message


def test_the_orders_file_is_optional_and_checked(tmp_path):
    good = tmp_path / "orders.json"
    good.write_text(json.dumps({"meituan_orders": [meituan_order(1)], "eleme_orders": []}), encoding="utf-8")
    stray = tmp_path / "stray.json"
    stray.write_text(json.dumps({"meituan_shops": []}), encoding="utf-8")

    assert load_orders_file(str(tmp_path / "missing.json")) == {}
    assert load_orders_file(str(good)) == {"meituan_orders": (meituan_order(1),), "eleme_orders": ()}
    with pytest.raises(SystemExit, match="must hold a JSON object with meituan_orders and eleme_orders"):
        load_orders_file(str(stray))


def test_push_base_url_moves_every_configured_push_url_and_keeps_its_path():
    values = {"meituan_shops": ({"app_poi_code": "a", "push_url": "http://127.0.0.1:8000/channels/push/meituan"},
                                {"app_poi_code": "b"}),
              "eleme_shops": ({"shop_id": "c", "push_url": "http://127.0.0.1:8000/channels/push/eleme"},)}

    moved = with_push_base_url(values, "http://127.0.0.1:8230")

    assert [s.get("push_url") for s in moved["meituan_shops"]] == ["http://127.0.0.1:8230/channels/push/meituan", None]
    assert moved["eleme_shops"][0]["push_url"] == "http://127.0.0.1:8230/channels/push/eleme"
    with pytest.raises(SystemExit):
        with_push_base_url(values, "127.0.0.1:8230")


def test_python_m_simulator_loads_the_orders_file(tmp_path):
    config = tmp_path / "sim.json"
    config.write_text(json.dumps({"meituan_shops": list(MT_SHOPS), "eleme_shops": list(EL_SHOPS)}), encoding="utf-8")
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps({"meituan_orders": [meituan_order(4242, day_seq=1)],
                                  "eleme_orders": [eleme_order("4343", day_seq=1)]}), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"meituan_orders": [meituan_order(1, status=7)], "eleme_orders": []}), encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "simulator", "--port", "0", "--config", str(config),
                                "--orders", str(orders)], stdout=subprocess.PIPE, text=True, cwd=ROOT,
                               env={"PATH": ""})
    try:
        base_url = process.stdout.readline().split()[3]
        meituan = requests.get(f"{base_url}/_sim/meituan/orders/4242", timeout=5).json()
        eleme = requests.get(f"{base_url}/_sim/eleme/orders/4343", timeout=5).json()
    finally:
        process.terminate()
        returncode = process.wait(timeout=10)
        process.stdout.close()
    refused = subprocess.run([sys.executable, "-m", "simulator", "--port", "0", "--config", str(config),
                              "--orders", str(bad)], capture_output=True, text=True, cwd=ROOT, env={"PATH": ""},
                             timeout=30)

    assert (meituan["order_id"], meituan["status"], eleme["id"], eleme["status"]) == (4242, 2, "4343", "unprocessed")
    assert returncode == 0
    assert refused.returncode != 0
    assert f"simulator: bad order in {bad}: meituan order 1: status must be one of" in refused.stderr
