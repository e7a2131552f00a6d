"""The simulated Meituan open platform: signatures, the pull flow, status calls, sell status."""

import hashlib
import json
import time

import requests

from simulator.testing import meituan_call, meituan_sig
from tests.simulator.conftest import MT_APP_ID, MT_SECRET, MT_SHOP, control, fen, mt_call, mt_orders, mt_shop, mt_sig

# 宫保鸡丁(大份) 38 + box 2, 麻婆豆腐 x2 22 + box 1 each; shipping 5; 满60减12 (platform 4, merchant 8)
LINES = [{"app_food_code": "mt_gbjd", "sku_id": "1001001", "quantity": 1}, {"app_food_code": "mt_mpdf", "quantity": 2}]


def test_sig_follows_the_platforms_md_example():
    url = "http://host/api/v1/order/confirm"
    params = {"app_id": "1", "order_id": "99", "timestamp": "1700000000", "sig": "ignored", "empty": ""}

    expected = hashlib.md5(b"http://host/api/v1/order/confirm?app_id=1&order_id=99&timestamp=1700000000"
                           b"s3cret").hexdigest()

    assert mt_sig(url, params, "s3cret") == expected
    assert meituan_sig(url, params, "s3cret") == expected


def test_good_sig_is_accepted_and_bad_sig_or_stale_timestamp_refused(sim):
    mt_shop(sim)

    good = mt_call(sim, "order/getOrderDaySeq", {"app_poi_code": MT_SHOP})
    wrong_secret = mt_call(sim, "order/getOrderDaySeq", {"app_poi_code": MT_SHOP}, secret="other")
    tampered = mt_call(sim, "order/getOrderDaySeq", {"app_poi_code": MT_SHOP}, sig="0" * 32)
    stale = mt_call(sim, "order/getOrderDaySeq", {"app_poi_code": MT_SHOP}, timestamp=int(time.time()) - 601)
    unknown_app = mt_call(sim, "order/getOrderDaySeq", {"app_poi_code": MT_SHOP}, app_id="nobody")
    no_sig = control(sim, "GET", "health")  # the control API needs no signature

    assert (good.status_code, good.json()) == (200, {"data": {"day_seq": 0}})
    assert wrong_secret.json()["data"] == "ng" and wrong_secret.json()["error"]["code"] == 703
    assert tampered.json()["error"]["code"] == 703
    assert stale.json()["error"]["code"] == 704
    assert unknown_app.json()["error"]["code"] == 701
    assert no_sig == {"status": "ok"}


def test_form_body_params_are_signed_and_a_json_body_is_refused(sim):
    mt_shop(sim)
    order_id = mt_orders(sim)[0]["order_id"]
    url = f"{sim.base_url}/api/v1/order/confirm"
    system = {"app_id": MT_APP_ID, "timestamp": str(int(time.time()))}
    signed_without_body = {**system, "sig": mt_sig(url, system, MT_SECRET)}

    unsigned_body = requests.post(url, params=signed_without_body, data={"order_id": order_id}, timeout=5)
    as_json = requests.post(url, params={**system, "sig": mt_sig(url, {**system, "order_id": order_id}, MT_SECRET)},
                            json={"order_id": order_id}, timeout=5)

    assert unsigned_body.json()["error"]["code"] == 703
    assert as_json.json()["error"]["code"] == 700
    assert mt_call(sim, "order/viewstatus", {"order_id": order_id}).json() == {"data": {"status": 2}}


def test_pull_flow_day_seq_then_ids_then_detail_with_consistent_amounts(sim):
    mt_shop(sim)
    created = mt_orders(sim, count=2, lines=LINES, caution="不要香菜")
    today = time.strftime("%Y%m%d", time.gmtime(time.time() + 8 * 3600))

    day_seq = mt_call(sim, "order/getOrderDaySeq", {"app_poi_code": MT_SHOP}).json()["data"]["day_seq"]
    ids = [mt_call(sim, "order/getOrderIdByDaySeq",
                   {"app_poi_code": MT_SHOP, "date_time": today, "day_seq": n}).json()["data"]["order_id"]
           for n in range(1, day_seq + 1)]
    missing = mt_call(sim, "order/getOrderIdByDaySeq", {"app_poi_code": MT_SHOP, "date_time": today, "day_seq": 3})
    order = mt_call(sim, "order/getOrderDetail", {"order_id": ids[0]}).json()["data"]

    assert day_seq == 2
    assert ids == [o["order_id"] for o in created]
    assert missing.json()["error"]["code"] == 801
    assert order == created[0]
    assert (order["app_poi_code"], order["day_seq"], order["status"], order["pay_type"]) == (MT_SHOP, 1, 2, 2)
    assert order["wm_order_id_view"] == str(order["order_id"])
    assert (order["caution"], order["delivery_time"], order["refund_status"]) == ("不要香菜", 0, 0)
    detail = json.loads(order["detail"])
    assert detail == [
        {"app_food_code": "mt_gbjd", "food_name": "宫保鸡丁", "sku_id": "1001001", "quantity": 1, "price": 38.0,
         "box_num": 1, "box_price": 2.0, "unit": "份", "food_property": "", "spec": "大份"},
        {"app_food_code": "mt_mpdf", "food_name": "麻婆豆腐", "sku_id": "1001005", "quantity": 2, "price": 22.0,
         "box_num": 2, "box_price": 1.0, "unit": "份", "food_property": "", "spec": ""},
    ]
    extras = json.loads(order["extras"])
    assert extras == [{"act_detail_id": 900060, "reduce_fee": 12.0, "mt_charge": 4.0, "poi_charge": 8.0,
                       "remark": "满60减12", "type": 2}]
    assert (order["original_price"], order["package_bag_money"], order["shipping_fee"], order["total"]) == \
        (91.0, 0.0, 5.0, 79.0)  # 82 goods + 4 boxes + 5 shipping, 满60减12
    goods = sum(fen(d["price"]) * d["quantity"] for d in detail)
    boxes = sum(fen(d["box_price"]) * d["box_num"] for d in detail)
    reduce = sum(fen(e["reduce_fee"]) for e in extras)
    assert fen(order["original_price"]) == goods + boxes + fen(order["package_bag_money"]) + fen(order["shipping_fee"])
    assert fen(order["total"]) == fen(order["original_price"]) - reduce
    assert all(fen(e["reduce_fee"]) == fen(e["mt_charge"]) + fen(e["poi_charge"]) for e in extras)


def test_random_orders_add_up_as_platforms_md_says(sim):
    mt_shop(sim, package_bag_money=1.5, menu=[
        {"app_food_code": "mt_soup", "food_name": "酸辣汤", "sku_id": "2001", "price": 12, "box_price": 1.5,
         "box_num": 2},
        {"app_food_code": "mt_rice", "food_name": "米饭", "sku_id": "2002", "price": 2},
        {"app_food_code": "mt_gbjd", "food_name": "宫保鸡丁", "sku_id": "1001001", "price": 38, "box_price": 2},
    ])

    orders = mt_orders(sim, count=30)

    for order in orders:
        detail, extras = json.loads(order["detail"]), json.loads(order["extras"])
        goods = sum(fen(d["price"]) * d["quantity"] for d in detail)
        boxes = sum(fen(d["box_price"]) * d["box_num"] for d in detail)
        assert fen(order["package_bag_money"]) == 150
        assert fen(order["original_price"]) == goods + boxes + 150 + fen(order["shipping_fee"])
        assert fen(order["total"]) == fen(order["original_price"]) - sum(fen(e["reduce_fee"]) for e in extras)
        assert all(fen(e["reduce_fee"]) == fen(e["mt_charge"]) + fen(e["poi_charge"]) for e in extras)
        assert all(d["box_num"] == d["quantity"] * (2 if d["app_food_code"] == "mt_soup" else 1) for d in detail)
    assert [o["day_seq"] for o in orders] == list(range(1, 31))


def test_status_calls_move_the_order_and_illegal_ones_are_refused(sim):
    mt_shop(sim)
    first, second = (o["order_id"] for o in mt_orders(sim, count=2))

    def post(path, **params):
        return mt_call(sim, path, {"order_id": first, **params}, method="POST").json()

    def status(order_id=first):
        return mt_call(sim, "order/viewstatus", {"order_id": order_id}).json()["data"]["status"]

    early_arrival = post("order/arrived")
    early_ready = post("order/preparationMealComplete")
    trail = [status()]
    assert post("order/confirm") == {"data": "ok"}
    assert post("order/confirm") == {"data": "ok"}  # a retry after a timeout is answered ok again
    trail.append(status())
    assert post("order/preparationMealComplete") == {"data": "ok"}
    trail.append(status())
    missing_courier = post("order/delivering", courier_name="李师傅")
    assert post("order/delivering", courier_name="李师傅", courier_phone="13900001111") == {"data": "ok"}
    trail.append(status())
    assert post("order/arrived") == {"data": "ok"}
    trail.append(status())
    cancel_completed = post("order/cancel", reason_code=2001, reason="顾客要求")
    bad_code = mt_call(sim, "order/cancel", {"order_id": second, "reason_code": 1001, "reason": "x"},
                       method="POST").json()
    cancelled = mt_call(sim, "order/cancel", {"order_id": second, "reason_code": 2002, "reason": "商品已售完"},
                        method="POST").json()
    confirm_cancelled = mt_call(sim, "order/confirm", {"order_id": second}, method="POST").json()

    assert trail == [2, 4, 4, 6, 8]
    assert [a["error"]["code"] for a in (early_arrival, early_ready, missing_courier, cancel_completed)] == \
        [802, 802, 700, 802]
    assert bad_code["error"]["code"] == 700
    assert cancelled == {"data": "ok"}
    assert confirm_cancelled["error"]["code"] == 802
    assert status(second) == 9
    listed = {o["order_id"]: o for o in control(sim, "GET", f"meituan/orders?shop={MT_SHOP}")["orders"]}
    assert listed[first]["sim"]["courier_name"] == "李师傅" and listed[first]["sim"]["meal_ready"] is True
    assert (listed[second]["sim"]["cancel_reason_code"], listed[second]["sim"]["cancel_reason"]) == (2002, "商品已售完")


def test_refund_application_is_agreed_or_rejected(sim):
    mt_shop(sim)
    first, second = (o["order_id"] for o in mt_orders(sim, count=2))
    for order_id in (first, second):
        mt_call(sim, "order/confirm", {"order_id": order_id}, method="POST")
    before = mt_call(sim, "order/refund/agree", {"order_id": first, "reason": "同意"}, method="POST").json()
    control(sim, "POST", f"meituan/orders/{first}/refund_apply", {"reason": "少送了一份"}, status=200)
    control(sim, "POST", f"meituan/orders/{second}/refund_apply", {}, status=200)

    agreed = mt_call(sim, "order/refund/agree", {"order_id": first, "reason": "同意"}, method="POST").json()
    rejected = mt_call(sim, "order/refund/reject", {"order_id": second, "reason": "已送达"}, method="POST").json()
    one = mt_call(sim, "order/getOrderDetail", {"order_id": first}).json()["data"]
    two = mt_call(sim, "order/getOrderDetail", {"order_id": second}).json()["data"]

    assert before["error"]["code"] == 802
    assert agreed == rejected == {"data": "ok"}
    assert (one["refund_status"], one["refund_reason"], one["status"]) == (2, "少送了一份", 9)
    assert (two["refund_status"], two["status"]) == (3, 4)


def test_sell_status_is_recorded_and_unknown_food_refused(sim):
    mt_shop(sim)
    sold_out = json.dumps([{"app_food_code": "mt_gbjd", "skus": [{"sku_id": "1001001"}]}])

    answer = mt_call(sim, "food/sku/sellStatus",
                     {"app_poi_code": MT_SHOP, "food_data": sold_out, "sell_status": 1}, method="POST").json()
    unknown = mt_call(sim, "food/sku/sellStatus",
                      {"app_poi_code": MT_SHOP, "food_data": json.dumps([{"app_food_code": "nope", "skus": []}]),
                       "sell_status": 1}, method="POST").json()
    bad_status = mt_call(sim, "food/sku/sellStatus",
                         {"app_poi_code": MT_SHOP, "food_data": sold_out, "sell_status": 2}, method="POST").json()
    shop = control(sim, "GET", "meituan/shops")["shops"][0]
    generated = mt_orders(sim, count=20)

    assert answer == {"data": "ok"}
    assert (unknown["error"]["code"], bad_status["error"]["code"]) == (803, 700)
    assert {(m["sku_id"], m["sell_status"]) for m in shop["menu"]} == \
        {("1001001", 1), ("1001002", 0), ("1001003", 0), ("1001005", 0), ("1002001", 0)}
    assert shop["sell_status_calls"] == [{"sell_status": 1, "skus": [{"app_food_code": "mt_gbjd",
                                                                       "sku_id": "1001001"}]}]
    assert all(d["sku_id"] != "1001001" for o in generated for d in json.loads(o["detail"]))


def test_an_unknown_item_line_makes_an_order_with_that_item(sim):
    mt_shop(sim)

    order = mt_orders(sim, lines=[{"app_food_code": "mt_ghost", "sku_id": "999", "food_name": "神秘套餐",
                                   "price": 30, "quantity": 1}])[0]

    assert json.loads(order["detail"])[0] == {
        "app_food_code": "mt_ghost", "food_name": "神秘套餐", "sku_id": "999", "quantity": 1, "price": 30.0,
        "box_num": 1, "box_price": 0.0, "unit": "份", "food_property": "", "spec": ""}
    assert (order["original_price"], order["total"]) == (35.0, 31.0)  # shipping 5 included, 满25减4


def test_a_store_or_order_of_another_app_is_refused(sim):
    mt_shop(sim)
    mt_shop(sim, app_poi_code="mt-store-9", app_id="mt-app-9", secret="mt-secret-9")
    order_id = mt_orders(sim)[0]["order_id"]

    store = mt_call(sim, "order/getOrderDaySeq", {"app_poi_code": MT_SHOP}, app_id="mt-app-9",
                    secret="mt-secret-9").json()
    order = mt_call(sim, "order/getOrderDetail", {"order_id": order_id}, app_id="mt-app-9",
                    secret="mt-secret-9").json()
    via_helper = meituan_call(sim.base_url, "order/viewstatus", app_id=MT_APP_ID, secret=MT_SECRET,
                              params={"order_id": order_id})

    assert (store["error"]["code"], order["error"]["code"]) == (705, 705)
    assert via_helper == {"data": {"status": 2}}
