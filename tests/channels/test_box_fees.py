"""Platform amounts add up as PLATFORMS.md says: box fees per line, one bag fee,
delivery and discounts give the platform's total, with no false ``amount_mismatch``.

Meituan: original_price = sum(price * quantity) + sum(box_price * box_num) +
package_bag_money + shipping_fee; total = original_price - sum(reduce_fee).
Ele.me: originalPrice = sum(item total) + packageFee + deliverFee; totalPrice =
originalPrice + sum(orderActivities amount).
"""

import json
from decimal import Decimal

import pytest
import requests

from channels.services import binding_pull, platform_order_ingest
from orders.models import Order, OrderEvent
from simulator.testing import running_simulator
from tests.channels.samples import eleme_order, meituan_order
from tests.channels.sim_helpers import eleme_shop, meituan_shop

# 2 x 宫保鸡丁 28.00, 2 boxes a portion at 0.50 (box_num 4: 2.00); 1 x 扬州炒饭 24.00, one
# box at 1.00; bag 1.00; shipping 5.00; 满80减15 (platform 5.00, merchant 10.00).
# original 56 + 24 + 2 + 1 + 1 + 5 = 89.00; total 74.00.
BOXED_DETAIL = [
    {"app_food_code": "HC001", "food_name": "宫保鸡丁", "sku_id": "1001001", "quantity": 2, "price": 28.0,
     "box_num": 4, "box_price": 0.5, "unit": "份", "food_property": "", "spec": "大份"},
    {"app_food_code": "ZS001", "food_name": "扬州炒饭", "sku_id": "1002001", "quantity": 1, "price": 24.0,
     "box_num": 1, "box_price": 1.0, "unit": "份", "food_property": "", "spec": ""},
]
BOXED_EXTRAS = [{"act_detail_id": 880, "reduce_fee": 15, "mt_charge": 5, "poi_charge": 10, "remark": "满80减15",
                 "type": 2}]


def _boxed_meituan_order(**overrides):
    return meituan_order(**{"detail": json.dumps(BOXED_DETAIL, ensure_ascii=False),
                            "extras": json.dumps(BOXED_EXTRAS, ensure_ascii=False),
                            "package_bag_money": 1, "shipping_fee": 5, "original_price": 89, "total": 74,
                            **overrides})


def _flags(order):
    return list(OrderEvent.objects.filter(order=order, action="flag").values_list("reason_code", "data"))


def test_a_meituan_order_with_box_fees_and_a_bag_fee_keeps_the_platform_total(shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=_boxed_meituan_order()).order

    assert (order.subtotal, order.discount_total, order.delivery_fee, order.packaging_fee) == (
        Decimal("80.00"), Decimal("15.00"), Decimal("5.00"), Decimal("4.00"))
    assert (order.total, order.paid_amount) == (Decimal("74.00"), Decimal("74.00"))
    # Each line keeps its boxes (box_price * box_num); the bag rides on the first line.
    assert [(ln.sku_code, ln.quantity, ln.packaging_fee) for ln in order.lines.order_by("pk")] == [
        ("HC001", 2, Decimal("3.00")), ("ZS001", 1, Decimal("1.00"))]
    assert (order.needs_attention, _flags(order)) == (False, [])


def test_a_meituan_order_whose_total_really_differs_is_flagged(shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=_boxed_meituan_order(total=70)).order

    assert order.total == Decimal("74.00")  # our own sum, the platform's figure in the flag
    assert order.needs_attention is True
    assert order.attention_reason == "platform total 70.00 differs from 74.00"
    assert _flags(order) == [("amount_mismatch", {"kind": "amount_mismatch", "platform_total": "70.00",
                                                  "computed_total": "74.00"})]


def test_box_fees_count_boxes_not_portions(shop):
    # The same order with the line's boxes counted per portion (box_num 2) adds up to 1.00
    # less: a platform saying 74.00 then really differs.
    detail = [dict(BOXED_DETAIL[0], box_num=2), BOXED_DETAIL[1]]
    payload = _boxed_meituan_order(detail=json.dumps(detail, ensure_ascii=False))

    order = platform_order_ingest(binding=shop["meituan"], payload=payload).order

    assert order.packaging_fee == Decimal("3.00")
    assert _flags(order)[0][1]["computed_total"] == "73.00"


def test_an_eleme_order_with_package_and_delivery_fees_and_activities_keeps_the_platform_total(shop):
    # 1 x 扬州炒饭 24.00 + 2 x 宫保鸡丁 28.00 = 80.00; packageFee 3.50; deliverFee 4.00:
    # original 87.50; 满80减15 (Ele.me 5, shop 10) and 新客立减 3 (Ele.me): total 69.50.
    payload = eleme_order(
        groups=[{"name": "1号篮子", "type": "normal", "items": [
            {"id": 700001, "skuId": 800001, "name": "扬州炒饭", "price": 24.0, "quantity": 1, "total": 24.0,
             "extendCode": "ZS001"},
            {"id": 700002, "skuId": 800002, "name": "宫保鸡丁", "price": 28.0, "quantity": 2, "total": 56.0,
             "extendCode": "HC001"}]}],
        packageFee=3.5, deliverFee=4, originalPrice=87.5, totalPrice=69.5,
        orderActivities=[{"id": 9001, "name": "满80减15", "amount": -15, "elemePart": -5, "restaurantPart": -10},
                         {"id": 9002, "name": "新客立减", "amount": -3, "elemePart": -3, "restaurantPart": 0}])

    order = platform_order_ingest(binding=shop["eleme"], payload=payload).order

    assert (order.subtotal, order.discount_total, order.delivery_fee, order.packaging_fee, order.total) == (
        Decimal("80.00"), Decimal("18.00"), Decimal("4.00"), Decimal("3.50"), Decimal("69.50"))
    assert (order.merchant_discount, order.platform_discount) == (Decimal("10.00"), Decimal("8.00"))
    assert (order.needs_attention, _flags(order)) == (False, [])


def test_an_eleme_order_whose_total_really_differs_is_flagged(shop):
    order = platform_order_ingest(binding=shop["eleme"], payload=eleme_order(totalPrice=44.1)).order

    assert [kind for kind, _data in _flags(order)] == ["amount_mismatch", "stock_shortfall"]
    assert _flags(order)[0][1] == {"kind": "amount_mismatch", "platform_total": "44.10", "computed_total": "45.10"}


# --- every order the simulator generates adds up -------------------------------------------------

MT_MENU = [
    {"app_food_code": "HC001", "food_name": "宫保鸡丁", "sku_id": "1001001", "price": 38, "box_price": 2},
    {"app_food_code": "mt_soup", "food_name": "酸辣汤", "sku_id": "2001", "price": 12.5, "box_price": 1.5,
     "box_num": 2},
    {"app_food_code": "mt_rice", "food_name": "米饭", "sku_id": "2002", "price": 2},
    {"app_food_code": "mt_tea", "food_name": "柠檬茶", "sku_id": "2003", "price": 9.9, "box_price": 0.5,
     "box_num": 3},
]


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


def _pull_everything(binding):
    created = 0
    while (result := binding_pull(binding_id=binding.pk)).pulled:
        assert result.errors == []
        created += result.created
    return created


def test_every_simulator_generated_order_is_ingested_without_an_amount_mismatch(sim, shop):
    meituan_shop(sim, shop)
    eleme_shop(sim, shop)
    code = shop["meituan"].shop_code
    requests.post(f"{sim.base_url}/_sim/meituan/shops", json={
        "app_poi_code": code, "app_id": shop["meituan"].app_id, "secret": shop["meituan"].secret,
        "package_bag_money": 1.5, "shipping_fee": 4.5, "menu": MT_MENU}, timeout=5).raise_for_status()
    made = {}
    for platform, shop_code, key in (("meituan", code, "order_id"), ("eleme", shop["eleme"].shop_code, "id")):
        answer = requests.post(f"{sim.base_url}/_sim/{platform}/orders", json={"shop": shop_code, "count": 120},
                               timeout=10)
        made.update({str(o[key]): Decimal(str(o["total"] if platform == "meituan" else o["totalPrice"]))
                     for o in answer.json()["orders"]})

    created = _pull_everything(shop["meituan"]) + _pull_everything(shop["eleme"])

    assert created == len(made) == 240
    totals = dict(Order.objects.values_list("channel_order_id", "total"))
    assert totals == made
    assert not OrderEvent.objects.filter(action="flag", reason_code="amount_mismatch").exists()
