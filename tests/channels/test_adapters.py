"""The adapters against PLATFORMS.md: signatures, Decimal money, parsing."""

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from channels.adapters import ADAPTERS, adapter_for
from channels.adapters.base import PlatformPayloadError, RefundState, money
from channels.adapters.eleme import ElemeAdapter, push_sign
from channels.adapters.eleme import sign as eleme_sign
from channels.adapters.meituan import MeituanAdapter
from channels.adapters.meituan import sign as meituan_sign
from tests.channels.samples import ELEME_SHOP, MEITUAN_SHOP, eleme_order, meituan_order

SHANGHAI = ZoneInfo("Asia/Shanghai")
BINDING = SimpleNamespace(shop_code=MEITUAN_SHOP, app_id="6001", secret="mt-secret", token="el-token",
                          base_url="http://host")


def test_meituan_sig_is_the_documented_md5_example():
    secret = "s3cr3t"
    expected = hashlib.md5(
        ("http://host/api/v1/order/confirm?app_id=1&order_id=99&timestamp=1700000000" + secret).encode()
    ).hexdigest()

    sig = meituan_sign("http://host/api/v1/order/confirm", {"timestamp": 1700000000, "order_id": 99, "app_id": 1},
                       secret)

    assert sig == expected
    assert sig == sig.lower()


def test_meituan_sig_skips_empty_values_and_sig_and_keeps_values_raw():
    params = {"app_id": "1", "timestamp": "1700000000", "reason": "太忙 了&", "caution": "", "sig": "old",
              "courier_phone": None}

    sig = meituan_sign("http://host/api/v1/order/cancel", params, "k")

    assert sig == hashlib.md5(
        "http://host/api/v1/order/cancel?app_id=1&reason=太忙 了&&timestamp=1700000000k".encode()
    ).hexdigest()


def test_eleme_signature_is_uppercase_md5_of_action_token_sorted_json_pairs_and_secret():
    params = {"orderId": "3025112212000001", "remark": "售罄", "type": "foodSoldOut"}

    signature = eleme_sign(action="eleme.order.cancelOrderLite", token="tok", params=params, app_key="ak",
                           timestamp=1700000000, secret="sec")

    text = ('eleme.order.cancelOrderLitetok'
            'app_key="ak"orderId="3025112212000001"remark="售罄"timestamp=1700000000type="foodSoldOut"sec')
    assert signature == hashlib.md5(text.encode()).hexdigest().upper()


def test_eleme_envelope_carries_metas_and_a_matching_signature():
    envelope = ElemeAdapter().envelope(BINDING, "eleme.order.getOrder", {"orderId": "1"}, timestamp=1700000000,
                                       request_id="req-1")

    assert envelope["nop"] == "1.0.0"
    assert envelope["id"] == "req-1"
    assert envelope["token"] == "el-token"
    assert envelope["metas"] == {"app_key": "6001", "timestamp": 1700000000}
    assert envelope["signature"] == hashlib.md5(
        b'eleme.order.getOrderel-tokenapp_key="6001"orderId="1"timestamp=1700000000mt-secret'
    ).hexdigest().upper()


def test_eleme_push_signature_covers_the_seven_fields_sorted():
    fields = {"requestId": "r1", "type": 10, "appId": "ak", "message": '{"id":"1"}', "shopId": 160001,
              "timestamp": 1700000000, "userId": 0, "signature": "ignored"}

    signature = push_sign(fields, "sec")

    text = 'appId=akmessage={"id":"1"}requestId=r1shopId=160001timestamp=1700000000type=10userId=0sec'
    assert signature == hashlib.md5(text.encode()).hexdigest().upper()


@pytest.mark.parametrize(("raw", "expected"), [
    (19.9, Decimal("19.90")), (0.1 + 0.2, Decimal("0.30")), ("23.5", Decimal("23.50")), (5, Decimal("5.00")),
    (None, Decimal("0.00")), (-8.5, Decimal("-8.50")),
])
def test_money_converts_through_str_to_two_places(raw, expected):
    assert money(raw) == expected
    assert str(money(raw)) == str(expected)


def test_money_refuses_what_is_not_an_amount():
    with pytest.raises(PlatformPayloadError):
        money("abc")
    with pytest.raises(PlatformPayloadError):
        money(True)


def test_parse_meituan_order():
    parsed = MeituanAdapter().parse_order(BINDING, meituan_order())

    assert parsed.order_id == "27900000000001"
    assert parsed.view_no == "27900000000001"
    assert parsed.shop_code == MEITUAN_SHOP
    assert parsed.day_seq == 7
    assert parsed.status_code == 2
    assert parsed.placed_at == datetime(2026, 11, 22, 12, 0, tzinfo=SHANGHAI)
    assert parsed.expected_at is None
    assert parsed.contact_name == "王先生"
    assert parsed.contact_phone == "13812345678"
    assert parsed.address == {"text": "上海市徐汇区漕溪北路398号5楼", "latitude": "31.18", "longitude": "121.43"}
    assert parsed.note == "少辣"
    assert [(ln.merchant_code, ln.platform_sku_id, ln.name, ln.unit_price, ln.quantity, ln.packaging_fee, ln.spec)
            for ln in parsed.lines] == [
        ("HC001", "1001001", "宫保鸡丁", Decimal("28.00"), 2, Decimal("2.00"), "大份"),
        ("RICE-X", "1009999", "米饭", Decimal("2.50"), 1, Decimal("0.00"), ""),
    ]
    assert [(d.reference, d.name, d.amount, d.merchant_part, d.platform_part) for d in parsed.discounts] == [
        ("501", "满50减10", Decimal("10.00"), Decimal("6.00"), Decimal("4.00")),
    ]
    assert parsed.delivery_fee == Decimal("5.00")
    assert parsed.packaging_fee == Decimal("0.00")  # no bag fee; the boxes are on the lines
    assert parsed.total == Decimal("55.50")
    assert parsed.refund_state == RefundState.NONE
    assert parsed.cancelled is False


def test_parse_meituan_push_form_values_and_refund_and_cancel_states():
    form = {k: str(v) for k, v in meituan_order(status=9, refund_status=2, refund_reason="餐洒了").items()}

    parsed = MeituanAdapter().parse_order(BINDING, form)

    assert parsed.order_id == "27900000000001"
    assert parsed.total == Decimal("55.50")
    assert parsed.lines[0].unit_price == Decimal("28.00")
    assert parsed.cancelled is True
    assert parsed.refund_state == RefundState.AGREED
    assert parsed.refund_reason == "餐洒了"


def test_parse_eleme_order():
    parsed = ElemeAdapter().parse_order(BINDING, eleme_order())

    assert parsed.order_id == "3025112212000001"
    assert parsed.shop_code == ELEME_SHOP
    assert parsed.day_seq == 12
    assert parsed.status_code == "unprocessed"
    assert parsed.placed_at == datetime(2026, 11, 22, 12, 30, 5, tzinfo=SHANGHAI)
    assert parsed.contact_phone == "13900001111"
    assert parsed.address == {"text": "上海市静安区南京西路1266号", "latitude": "31.23", "longitude": "121.45"}
    assert parsed.note == "不要香菜"
    assert [(ln.merchant_code, ln.platform_sku_id, ln.platform_food_code, ln.unit_price, ln.quantity)
            for ln in parsed.lines] == [("ZS001", "800001", "700001", Decimal("24.00"), 2)]
    assert [(d.amount, d.merchant_part, d.platform_part) for d in parsed.discounts] == [
        (Decimal("8.50"), Decimal("5.00"), Decimal("3.50")),
    ]
    assert (parsed.delivery_fee, parsed.packaging_fee, parsed.total) == (
        Decimal("4.00"), Decimal("1.60"), Decimal("45.10"))
    assert parsed.refund_state == RefundState.NONE


def test_parse_eleme_invalid_and_refund_successful():
    parsed = ElemeAdapter().parse_order(BINDING, eleme_order(status="invalid", refundStatus="successful"))

    assert parsed.cancelled is True
    assert parsed.refund_state == RefundState.AGREED


def test_parse_refuses_a_payload_without_an_id():
    with pytest.raises(PlatformPayloadError):
        MeituanAdapter().parse_order(BINDING, {"detail": json.dumps([])})
    with pytest.raises(PlatformPayloadError):
        ElemeAdapter().parse_order(BINDING, {"groups": []})


def test_registry_has_one_adapter_per_platform():
    assert sorted(ADAPTERS) == ["eleme", "meituan"]
    assert isinstance(adapter_for("meituan"), MeituanAdapter)
    with pytest.raises(LookupError):
        adapter_for("douyin")
