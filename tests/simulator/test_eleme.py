"""The simulated Ele.me open platform: envelope signatures, pulls, status calls, stock."""

import hashlib
import time

import requests

from simulator.testing import eleme_call, eleme_signature
from tests.simulator.conftest import (
    EL_APP_KEY, EL_SECRET, EL_SHOP, EL_TOKEN, control, el_call, el_orders, el_shop, el_signature, fen,
)

# 宫保鸡丁(大份) x2 = 76 (package 2 each); deliver fee 4; 满60减12 (eleme 4, shop 8)
LINES = [{"sku_id": 200000101, "quantity": 2}]


def test_signature_matches_a_hand_built_string():
    params = {"orderIds": ["301", "302"], "shopId": "店1"}
    text = ('eleme.order.mgetOrders' 'tok' 'app_key="key"' 'orderIds=["301","302"]' 'shopId="店1"'
            'timestamp=1700000000' 'sec')

    expected = hashlib.md5(text.encode("utf-8")).hexdigest().upper()

    assert el_signature("eleme.order.mgetOrders", "tok", params, "key", 1700000000, "sec") == expected
    assert eleme_signature(action="eleme.order.mgetOrders", token="tok", params=params, app_key="key",
                           timestamp=1700000000, secret="sec") == expected


def test_good_signature_accepted_bad_one_stale_timestamp_and_foreign_token_refused(sim):
    el_shop(sim)
    el_shop(sim, shop_id="el-store-2", token="el-token-2")
    params = {"shopId": EL_SHOP}

    good = el_call(sim, "eleme.order.getUnprocessOrders", params)
    bad = el_call(sim, "eleme.order.getUnprocessOrders", params, secret="wrong")
    stale = el_call(sim, "eleme.order.getUnprocessOrders", params, timestamp=int(time.time()) - 601)
    other_shop_token = el_call(sim, "eleme.order.getUnprocessOrders", params, token="el-token-2")
    unknown_token = el_call(sim, "eleme.order.getUnprocessOrders", params, token="stolen")
    unknown_app = el_call(sim, "eleme.order.getUnprocessOrders", params, app_key="nobody")
    unknown_action = el_call(sim, "eleme.order.explode", params)
    not_json = requests.post(f"{sim.base_url}/api/v1/", data=b"{oops", timeout=5).json()

    assert (good["result"], good["error"]) == ([], None)
    assert bad == {"id": bad["id"], "result": None,
                   "error": {"code": "SIGNATURE_ERROR", "message": "signature does not match"}}
    assert [a["error"]["code"] for a in (stale, other_shop_token, unknown_token, unknown_app, unknown_action)] == \
        ["INVALID_TIMESTAMP", "PERMISSION_DENIED", "UNAUTHORIZED", "ACCESS_DENIED", "METHOD_NOT_ALLOWED"]
    assert (not_json["id"], not_json["result"], not_json["error"]["code"]) == (None, None, "VALIDATION_FAILED")


def test_unprocessed_ids_then_mget_give_consistent_orders(sim):
    el_shop(sim)
    created = el_orders(sim, count=2, lines=LINES, description="多放醋")

    ids = el_call(sim, "eleme.order.getUnprocessOrders", {"shopId": EL_SHOP})["result"]
    orders = el_call(sim, "eleme.order.mgetOrders", {"orderIds": ids + ["404"]})["result"]
    single = el_call(sim, "eleme.order.getOrder", {"orderId": ids[0]})["result"]

    assert ids == [o["id"] for o in created]
    assert list(orders) == ids
    order = orders[ids[0]]
    assert order == single == created[0]
    assert (order["shopId"], order["daySn"], order["status"], order["refundStatus"]) == \
        (EL_SHOP, 1, "unprocessed", "noRefund")
    assert (order["description"], order["deliverTime"], order["phoneList"][0][:1]) == ("多放醋", None, "1")
    assert order["groups"] == [{"name": "1号篮子", "type": "normal", "items": [
        {"id": "elm_gbjd", "skuId": 200000101, "name": "宫保鸡丁(大份)", "price": 38.0, "quantity": 2,
         "total": 76.0, "extendCode": "HC001"}]}]
    assert order["orderActivities"] == [{"id": 900060, "name": "满60减12", "amount": -12.0, "elemePart": -4.0,
                                         "restaurantPart": -8.0}]
    assert (order["originalPrice"], order["packageFee"], order["deliverFee"], order["totalPrice"]) == \
        (84.0, 4.0, 4.0, 72.0)
    lng, lat = order["deliveryGeo"].split(",")
    assert 121 < float(lng) < 122 and 31 < float(lat) < 32


def test_random_orders_are_internally_consistent(sim):
    el_shop(sim)

    orders = el_orders(sim, count=30)

    for order in orders:
        items = [item for group in order["groups"] for item in group["items"]]
        assert all(fen(i["total"]) == fen(i["price"]) * i["quantity"] for i in items)
        assert fen(order["originalPrice"]) == (sum(fen(i["total"]) for i in items) + fen(order["packageFee"])
                                               + fen(order["deliverFee"]))
        assert fen(order["totalPrice"]) == fen(order["originalPrice"]) + sum(
            fen(a["amount"]) for a in order["orderActivities"])
        assert all(fen(a["amount"]) == fen(a["elemePart"]) + fen(a["restaurantPart"]) < 0
                   for a in order["orderActivities"])
    assert [o["daySn"] for o in orders] == list(range(1, 31))


def test_status_calls_move_the_order_and_illegal_ones_are_refused(sim):
    el_shop(sim)
    first, second = (o["id"] for o in el_orders(sim, count=2))

    def call(action, order_id=first, **params):
        return el_call(sim, f"eleme.order.{action}", {"orderId": order_id, **params})

    def status(order_id=first):
        return el_call(sim, "eleme.order.getOrder", {"orderId": order_id})["result"]["status"]

    early = [call("setOrderPrepared"), call("receivedOrderLite")]
    assert call("confirmOrderLite")["error"] is None
    assert call("confirmOrderLite")["error"] is None  # repeated: still fine
    after_confirm = status()
    unprocessed = el_call(sim, "eleme.order.getUnprocessOrders", {"shopId": EL_SHOP})["result"]
    before_delivery = call("receivedOrderLite")
    assert call("setOrderPrepared")["error"] is None
    assert call("deliveryBySelfLite")["error"] is None
    assert call("receivedOrderLite")["error"] is None
    bad_type = call("cancelOrderLite", second, type="tired", remark="")
    assert call("cancelOrderLite", second, type="foodSoldOut", remark="宫保鸡丁卖完了")["error"] is None
    confirm_cancelled = call("confirmOrderLite", second)

    assert [e["error"]["code"] for e in early] == ["ORDER_STATUS_ERROR", "ORDER_STATUS_ERROR"]
    assert after_confirm == "valid"
    assert unprocessed == [second]
    assert before_delivery["error"]["code"] == "ORDER_STATUS_ERROR"
    assert (status(), status(second)) == ("settled", "invalid")
    assert bad_type["error"]["code"] == "VALIDATION_FAILED"
    assert confirm_cancelled["error"]["code"] == "ORDER_STATUS_ERROR"
    listed = {o["id"]: o for o in control(sim, "GET", f"eleme/orders?shop={EL_SHOP}")["orders"]}
    assert listed[first]["sim"]["prepared"] is listed[first]["sim"]["delivering"] is True
    assert (listed[second]["sim"]["cancel_type"], listed[second]["sim"]["cancel_remark"]) == \
        ("foodSoldOut", "宫保鸡丁卖完了")


def test_refund_agree_and_disagree(sim):
    el_shop(sim)
    first, second = (o["id"] for o in el_orders(sim, count=2))
    for order_id in (first, second):
        el_call(sim, "eleme.order.confirmOrderLite", {"orderId": order_id})
        control(sim, "POST", f"eleme/orders/{order_id}/refund_apply", {"reason": "太咸了"}, status=200)

    agree = el_call(sim, "eleme.order.agreeRefundLite", {"orderId": first})
    no_reason = el_call(sim, "eleme.order.disagreeRefundLite", {"orderId": second})
    disagree = el_call(sim, "eleme.order.disagreeRefundLite", {"orderId": second, "reason": "已按要求制作"})
    orders = el_call(sim, "eleme.order.mgetOrders", {"orderIds": [first, second]})["result"]

    assert (agree["error"], disagree["error"], no_reason["error"]["code"]) == (None, None, "VALIDATION_FAILED")
    assert (orders[first]["refundStatus"], orders[first]["status"]) == ("successful", "invalid")
    assert (orders[second]["refundStatus"], orders[second]["status"]) == ("rejected", "valid")


def test_batch_clear_and_fill_stock_are_recorded(sim):
    el_shop(sim)

    cleared = el_call(sim, "eleme.product.item.batchClearStock", {"specIds": [200000101, 200000103]})
    filled = el_call(sim, "eleme.product.item.batchFillStock", {"specIds": [200000103]})
    unknown = el_call(sim, "eleme.product.item.batchClearStock", {"specIds": [200000101, 42]})
    shop = control(sim, "GET", "eleme/shops")["shops"][0]
    generated = el_orders(sim, count=20)

    assert (cleared["error"], filled["error"]) == (None, None)
    assert unknown["error"] == {"code": "ITEM_NOT_FOUND", "message": "no such spec id(s): 42"}
    assert {m["sku_id"]: m["stock"] for m in shop["menu"]} == {
        200000101: "cleared", 200000103: "filled", 200000105: "filled", 200000401: "filled", 200000201: "filled",
        200000301: "filled"}
    assert shop["stock_calls"] == [{"action": "batchClearStock", "specIds": ["200000101", "200000103"]},
                                   {"action": "batchFillStock", "specIds": ["200000103"]}]
    assert all(i["skuId"] != 200000101 for o in generated for g in o["groups"] for i in g["items"])


def test_get_all_orders_pages_through_a_day(sim):
    el_shop(sim)
    created = el_orders(sim, count=5)
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))

    pages = [el_call(sim, "eleme.order.getAllOrders",
                     {"shopId": EL_SHOP, "pageNo": n, "pageSize": 2, "date": today})["result"] for n in (1, 2, 3)]
    other_day = el_call(sim, "eleme.order.getAllOrders",
                        {"shopId": EL_SHOP, "pageNo": 1, "pageSize": 2, "date": "2001-01-01"})["result"]
    bad_date = el_call(sim, "eleme.order.getAllOrders", {"shopId": EL_SHOP, "pageNo": 1, "pageSize": 2,
                                                         "date": "today"})

    assert [p["total"] for p in pages] == [5, 5, 5]
    assert [o["id"] for p in pages for o in p["list"]] == [o["id"] for o in created]
    assert other_day == {"total": 0, "list": []}
    assert bad_date["error"]["code"] == "VALIDATION_FAILED"


def test_unknown_item_line_and_the_stdlib_helper(sim):
    el_shop(sim)

    order = el_orders(sim, lines=[{"extend_code": "ZZ999", "name": "神秘套餐", "price": 30}])[0]
    via_helper = eleme_call(sim.base_url, "eleme.order.getOrder", {"orderId": order["id"]}, app_key=EL_APP_KEY,
                            secret=EL_SECRET, token=EL_TOKEN)

    assert order["groups"][0]["items"] == [{"id": "ZZ999", "skuId": "ZZ999", "name": "神秘套餐", "price": 30.0,
                                            "quantity": 1, "total": 30.0, "extendCode": "ZZ999"}]
    assert (order["originalPrice"], order["totalPrice"]) == (34.0, 30.0)  # deliver 4, 满25减4
    assert via_helper["result"] == order
