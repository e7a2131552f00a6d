"""Store status at the simulated platforms, per PLATFORMS.md "Store status": Meituan poi/open,
poi/close, poi/mget; Ele.me eleme.shop.updateShop, setDeliveryTime, mgetShopStatus; a closed
shop takes no orders; the control API closes a shop as the platform itself would."""

import time

from tests.simulator.conftest import (
    EL_SHOP, MT_SHOP, control, el_call, el_orders, el_shop, mt_call, mt_orders,
    mt_shop,
)


def mt_view(sim, code=MT_SHOP) -> dict:
    return next(s for s in control(sim, "GET", "meituan/shops")["shops"] if s["app_poi_code"] == code)


def el_view(sim, shop_id=EL_SHOP) -> dict:
    return next(s for s in control(sim, "GET", "eleme/shops")["shops"] if str(s["shop_id"]) == str(shop_id))


def test_meituan_open_close_and_mget(sim):
    mt_shop(sim)
    mt_shop(sim, app_poi_code="mt-store-2")

    fresh = mt_call(sim, "poi/mget", {"app_poi_codes": f"{MT_SHOP},mt-store-2,nope"}).json()
    closed = mt_call(sim, "poi/close", {"app_poi_code": MT_SHOP}, method="POST").json()
    closed_again = mt_call(sim, "poi/close", {"app_poi_code": MT_SHOP}, method="POST").json()
    after_close = mt_call(sim, "poi/mget", {"app_poi_codes": f"{MT_SHOP},mt-store-2"}).json()
    opened = mt_call(sim, "poi/open", {"app_poi_code": MT_SHOP}, method="POST").json()

    assert fresh == {"data": [{"app_poi_code": MT_SHOP, "open_level": 1},
                              {"app_poi_code": "mt-store-2", "open_level": 1}]}
    assert (closed, closed_again, opened) == ({"data": "ok"}, {"data": "ok"}, {"data": "ok"})
    assert after_close == {"data": [{"app_poi_code": MT_SHOP, "open_level": 3},
                                    {"app_poi_code": "mt-store-2", "open_level": 1}]}
    view = mt_view(sim)
    assert (view["open_level"], view["status_calls"]) == (1, [{"action": "close"}, {"action": "close"},
                                                              {"action": "open"}])


def test_meituan_store_calls_refuse_bad_params_and_another_apps_shop(sim):
    mt_shop(sim)
    mt_shop(sim, app_poi_code="other-shop", app_id="other-app", secret="other-secret")

    missing = mt_call(sim, "poi/close", {}, method="POST").json()
    foreign = mt_call(sim, "poi/close", {"app_poi_code": "other-shop"}, method="POST").json()
    foreign_mget = mt_call(sim, "poi/mget", {"app_poi_codes": f"{MT_SHOP},other-shop"}).json()
    empty_mget = mt_call(sim, "poi/mget", {"app_poi_codes": ","}).json()

    assert (missing["data"], missing["error"]["code"]) == ("ng", 700)
    assert foreign["error"]["code"] == 705
    assert foreign_mget["error"]["code"] == 705
    assert empty_mget["error"]["code"] == 700
    assert mt_view(sim, "other-shop")["open_level"] == 1


def test_eleme_update_shop_delivery_time_and_status(sim):
    el_shop(sim)

    closed = el_call(sim, "eleme.shop.updateShop", {"shopId": EL_SHOP, "properties": {"isOpen": 0}})
    status_closed = el_call(sim, "eleme.shop.mgetShopStatus", {"shopIds": [EL_SHOP]})
    busy = el_call(sim, "eleme.shop.setDeliveryTime", {"shopId": EL_SHOP, "deliveryBasicMins": 15,
                                                        "deliveryAdjustMins": 20})
    opened = el_call(sim, "eleme.shop.updateShop", {"shopId": EL_SHOP, "properties": {"isOpen": 1}})
    status_open = el_call(sim, "eleme.shop.mgetShopStatus", {"shopIds": [EL_SHOP]})

    assert [answer["error"] for answer in (closed, busy, opened)] == [None, None, None]
    assert status_closed["result"] == {EL_SHOP: {"isOpen": 0}}
    assert status_open["result"] == {EL_SHOP: {"isOpen": 1}}
    view = el_view(sim)
    assert (view["isOpen"], view["deliveryBasicMins"], view["deliveryAdjustMins"]) == (1, 15, 20)
    assert view["status_calls"] == [
        {"action": "updateShop", "isOpen": 0},
        {"action": "setDeliveryTime", "deliveryBasicMins": 15, "deliveryAdjustMins": 20},
        {"action": "updateShop", "isOpen": 1}]


def test_eleme_store_calls_refuse_bad_params_and_uncovered_shops(sim):
    el_shop(sim)
    el_shop(sim, shop_id="el-other", app_key="other-key", secret="other-secret", token="other-token")

    cases = {
        "no properties": el_call(sim, "eleme.shop.updateShop", {"shopId": EL_SHOP}),
        "isOpen 2": el_call(sim, "eleme.shop.updateShop", {"shopId": EL_SHOP, "properties": {"isOpen": 2}}),
        "isOpen true": el_call(sim, "eleme.shop.updateShop", {"shopId": EL_SHOP, "properties": {"isOpen": True}}),
        "negative minutes": el_call(sim, "eleme.shop.setDeliveryTime", {
            "shopId": EL_SHOP, "deliveryBasicMins": 15, "deliveryAdjustMins": -5}),
        "minutes as text": el_call(sim, "eleme.shop.setDeliveryTime", {
            "shopId": EL_SHOP, "deliveryBasicMins": "15", "deliveryAdjustMins": 0}),
        "no shop ids": el_call(sim, "eleme.shop.mgetShopStatus", {"shopIds": []}),
        "another app's shop": el_call(sim, "eleme.shop.updateShop", {"shopId": "el-other",
                                                                     "properties": {"isOpen": 0}}),
        "another app's status": el_call(sim, "eleme.shop.mgetShopStatus", {"shopIds": [EL_SHOP, "el-other"]}),
    }

    assert {name: answer["error"]["code"] for name, answer in cases.items()} == {
        "no properties": "VALIDATION_FAILED", "isOpen 2": "VALIDATION_FAILED", "isOpen true": "VALIDATION_FAILED",
        "negative minutes": "VALIDATION_FAILED", "minutes as text": "VALIDATION_FAILED",
        "no shop ids": "VALIDATION_FAILED", "another app's shop": "PERMISSION_DENIED",
        "another app's status": "PERMISSION_DENIED"}
    assert (el_view(sim)["status_calls"], el_view(sim, "el-other")["isOpen"]) == ([], 1)


def test_a_closed_shop_takes_no_orders_until_it_opens_again(sim):
    mt_shop(sim)
    el_shop(sim)
    mt_call(sim, "poi/close", {"app_poi_code": MT_SHOP}, method="POST")
    el_call(sim, "eleme.shop.updateShop", {"shopId": EL_SHOP, "properties": {"isOpen": 0}})

    refused_mt = control(sim, "POST", "meituan/orders", {"shop": MT_SHOP, "count": 2}, status=409)
    refused_el = control(sim, "POST", "eleme/orders", {"shop": EL_SHOP, "count": 2}, status=409)
    assert (refused_mt["code"], refused_el["code"]) == ("SHOP_CLOSED", "SHOP_CLOSED")
    assert control(sim, "GET", "meituan/orders")["orders"] == []
    assert control(sim, "GET", "eleme/orders")["orders"] == []

    mt_call(sim, "poi/open", {"app_poi_code": MT_SHOP}, method="POST")
    el_call(sim, "eleme.shop.updateShop", {"shopId": EL_SHOP, "properties": {"isOpen": 1}})
    assert len(mt_orders(sim, count=2)) == 2
    assert len(el_orders(sim, count=2)) == 2


def test_the_order_rate_makes_no_orders_while_the_shop_is_closed(sim):
    mt_shop(sim)
    control(sim, "POST", f"meituan/shops/{MT_SHOP}/status", {"open": False}, status=200)
    control(sim, "POST", f"meituan/shops/{MT_SHOP}/rate", {"rate_per_minute": 6000}, status=200)
    time.sleep(0.5)
    assert control(sim, "GET", "meituan/orders")["orders"] == []

    control(sim, "POST", f"meituan/shops/{MT_SHOP}/status", {"open": True}, status=200)
    deadline = time.monotonic() + 5
    while not control(sim, "GET", "meituan/orders")["orders"] and time.monotonic() < deadline:
        time.sleep(0.05)
    control(sim, "POST", f"meituan/shops/{MT_SHOP}/rate", {"rate_per_minute": 0}, status=200)
    assert control(sim, "GET", "meituan/orders")["orders"] != []


def test_the_control_api_closes_a_shop_as_the_platform_would(sim):
    mt_shop(sim)
    el_shop(sim)

    mt_closed = control(sim, "POST", f"meituan/shops/{MT_SHOP}/status", {"open": False}, status=200)["shop"]
    el_closed = control(sim, "POST", f"eleme/shops/{EL_SHOP}/status", {"open": False, "adjust_mins": 30},
                        status=200)["shop"]
    bad = control(sim, "POST", f"meituan/shops/{MT_SHOP}/status", {"open": "no"}, status=400)
    unknown = control(sim, "POST", "eleme/shops/nope/status", {"open": True}, status=404)

    assert (mt_closed["open_level"], mt_closed["status_calls"]) == (3, [])
    assert (el_closed["isOpen"], el_closed["deliveryAdjustMins"], el_closed["status_calls"]) == (0, 30, [])
    assert (bad["code"], unknown["code"]) == ("BAD_REQUEST", "NOT_FOUND")
    assert mt_call(sim, "poi/mget", {"app_poi_codes": MT_SHOP}).json() == {
        "data": [{"app_poi_code": MT_SHOP, "open_level": 3}]}
    assert el_call(sim, "eleme.shop.mgetShopStatus", {"shopIds": [EL_SHOP]})["result"] == {EL_SHOP: {"isOpen": 0}}
