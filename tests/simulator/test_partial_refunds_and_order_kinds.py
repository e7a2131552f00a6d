"""The simulator's partial refund applications, pickup orders, booked and back-dated orders."""

import json
import time

from tests.simulator.conftest import control, el_call, el_orders, el_shop, mt_call, mt_orders, mt_shop


def test_meituan_partial_refund_pushes_part_with_money_and_food_and_agree_keeps_the_order(sim, receiver):
    mt_shop(sim, receiver)
    order = mt_orders(sim, push=False, lines=[{"app_food_code": "mt_gbjd", "sku_id": "1001001", "quantity": 2}])[0]
    mt_call(sim, "order/confirm", {"order_id": order["order_id"]}, method="POST")
    bad = control(sim, "POST", f"meituan/orders/{order['order_id']}/refund_apply",
                  {"lines": [{"app_food_code": "mt_gbjd", "count": 3}]})

    control(sim, "POST", f"meituan/orders/{order['order_id']}/refund_apply",
            {"reason": "少了一份", "lines": [{"app_food_code": "mt_gbjd", "count": 1}]}, status=200)
    push = receiver.next()
    agreed = mt_call(sim, "order/refund/agree", {"order_id": order["order_id"], "reason": "同意"}, method="POST")

    assert bad == {"code": "CONFLICT", "message": "count must be 1..2"}
    assert (push.form["notify_type"], push.form["money"], push.form["reason"]) == ("part", "38.0", "少了一份")
    assert json.loads(push.form["food"]) == [{"app_food_code": "mt_gbjd", "food_name": "宫保鸡丁", "sku_id": "1001001",
                                              "count": 1, "refund_price": 38.0}]
    assert agreed.json() == {"data": "ok"}
    detail = mt_call(sim, "order/getOrderDetail", {"order_id": order["order_id"]}).json()["data"]
    assert (detail["refund_status"], detail["status"]) == (2, 4)
    receiver.assert_no_more()


def test_eleme_partial_refund_pushes_refund_type_part_and_agree_keeps_the_order_valid(sim, receiver):
    el_shop(sim, receiver)
    order = el_orders(sim, push=False, lines=[{"extend_code": "HC001", "quantity": 2}])[0]
    el_call(sim, "eleme.order.confirmOrderLite", {"orderId": order["id"]})

    control(sim, "POST", f"eleme/orders/{order['id']}/refund_apply",
            {"lines": [{"extend_code": "HC001", "quantity": 1}], "amount": 30}, status=200)
    push = receiver.next()
    el_call(sim, "eleme.order.agreeRefundLite", {"orderId": order["id"]})

    message = json.loads(push.json["message"])
    assert (push.json["type"], message["refundType"], message["totalPrice"]) == (30, "part", 30)
    assert message["goodsList"] == [{"name": "宫保鸡丁(大份)", "quantity": 1, "price": 38, "skuId": 200000101,
                                     "extendCode": "HC001"}]
    got = el_call(sim, "eleme.order.getOrder", {"orderId": order["id"]})["result"]
    assert (got["refundStatus"], got["status"]) == ("successful", "valid")
    receiver.assert_no_more()


def test_pickup_booked_and_back_dated_orders(sim):
    mt_shop(sim)
    el_shop(sim)
    evening = int(time.time()) - 3600
    booked = int(time.time()) + 7200

    mt = mt_orders(sim, pickup=True, delivery_time=booked, created_at=evening,
                   lines=[{"app_food_code": "mt_mpdf", "quantity": 1}])[0]
    el = el_orders(sim, pickup=True, delivery_time=booked, lines=[{"extend_code": "HC005"}])[0]
    refused = control(sim, "POST", "meituan/orders", {"shop": "mt-store-1", "created_at": int(time.time()) + 600})

    assert (mt["pick_type"], mt["delivery_time"], mt["ctime"], mt["shipping_fee"]) == (1, booked, evening, 0)
    assert mt["total"] == 23.0  # 22 + box 1, no shipping
    assert (el["orderBusinessType"], el["book"], el["deliverFee"], el["totalPrice"]) == (1, True, 0, 23)
    assert refused == {"code": "BAD_REQUEST", "message": "created_at must be unix seconds, not in the future"}
