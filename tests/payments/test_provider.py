"""The adapter's pure parts: yuan <-> fen and notify verification (no network)."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.errors import InvalidInput
from payments.errors import NotifyBadSignature, NotifyMalformed, NotifyStaleTimestamp
from payments.provider import PAYMENT_SUCCEEDED, REFUND_SUCCEEDED, WxPayClient, fen_to_yuan, yuan_to_fen
from tests.payments.conftest import API_KEY, sign

NOW = datetime(2026, 11, 22, 4, 0, 0, tzinfo=UTC)
NOW_TS = int(NOW.timestamp())

PAYMENT_NOTIFY = json.dumps({
    "id": "EV-1", "create_time": "2026-11-22T12:00:00+08:00", "event_type": "TRANSACTION.SUCCESS",
    "resource": {"out_trade_no": "T1", "transaction_id": "4200000001", "trade_state": "SUCCESS",
                 "success_time": "2026-11-22T11:59:58+08:00", "amount": {"total": 2350, "payer_total": 2350}},
}, separators=(",", ":")).encode()


def client() -> WxPayClient:
    return WxPayClient(base_url="http://127.0.0.1:9", appid="wxapp", mchid="1900000042", api_key=API_KEY,
                       notify_url="http://127.0.0.1:9/notify")


@pytest.mark.parametrize(("yuan", "fen"), [
    (Decimal("0.01"), 1), (Decimal("0.10"), 10), (Decimal("23.50"), 2350), (Decimal("23.5"), 2350),
    (Decimal("99999.99"), 9999999), (Decimal("100"), 10000), (7, 700),
])
def test_yuan_to_fen_is_exact(yuan, fen):
    assert yuan_to_fen(yuan) == fen


@pytest.mark.parametrize(("fen", "yuan"), [(1, "0.01"), (2350, "23.50"), (9999999, "99999.99"), (10000, "100.00")])
def test_fen_to_yuan_is_exact(fen, yuan):
    assert str(fen_to_yuan(fen)) == yuan


def test_yuan_to_fen_refuses_floats_and_fractions_of_a_fen():
    with pytest.raises(TypeError):
        yuan_to_fen(23.5)
    with pytest.raises(InvalidInput) as caught:
        yuan_to_fen(Decimal("0.001"))
    assert caught.value.code == "invalid_amount"


def test_notify_with_a_good_signature_parses():
    event = client().notify_verify(headers=sign(body=PAYMENT_NOTIFY, timestamp=str(NOW_TS)), body=PAYMENT_NOTIFY,
                                   now=NOW)

    assert (event.kind, event.event_id, event.out_trade_no, event.transaction_id, event.amount_fen) == (
        PAYMENT_SUCCEEDED, "EV-1", "T1", "4200000001", 2350)
    assert event.paid_at == datetime(2026, 11, 22, 3, 59, 58, tzinfo=UTC)


def test_notify_headers_are_case_insensitive():
    headers = {k.lower(): v for k, v in sign(body=PAYMENT_NOTIFY, timestamp=str(NOW_TS)).items()}

    assert client().notify_verify(headers=headers, body=PAYMENT_NOTIFY, now=NOW).out_trade_no == "T1"


def test_notify_with_a_tampered_body_is_refused():
    headers = sign(body=PAYMENT_NOTIFY, timestamp=str(NOW_TS))
    tampered = PAYMENT_NOTIFY.replace(b'"total":2350', b'"total":1')

    with pytest.raises(NotifyBadSignature) as caught:
        client().notify_verify(headers=headers, body=tampered, now=NOW)
    assert (caught.value.code, caught.value.status_code) == ("bad_signature", 401)


def test_notify_signed_with_another_key_is_refused():
    headers = sign(body=PAYMENT_NOTIFY, timestamp=str(NOW_TS), key="someone-else")

    with pytest.raises(NotifyBadSignature):
        client().notify_verify(headers=headers, body=PAYMENT_NOTIFY, now=NOW)


def test_notify_300_seconds_old_passes_301_is_stale():
    ok = sign(body=PAYMENT_NOTIFY, timestamp=str(NOW_TS - 300))
    stale = sign(body=PAYMENT_NOTIFY, timestamp=str(NOW_TS - 301))

    assert client().notify_verify(headers=ok, body=PAYMENT_NOTIFY, now=NOW).event_id == "EV-1"
    with pytest.raises(NotifyStaleTimestamp) as caught:
        client().notify_verify(headers=stale, body=PAYMENT_NOTIFY, now=NOW)
    assert (caught.value.code, caught.value.status_code) == ("stale_timestamp", 400)
    assert caught.value.detail == {"timestamp": NOW_TS - 301, "skew_seconds": 301}


def test_notify_from_the_future_is_refused():
    ahead = sign(body=PAYMENT_NOTIFY, timestamp=str(NOW_TS + 301))
    slightly_ahead = sign(body=PAYMENT_NOTIFY, timestamp=str(NOW_TS + 300))

    assert client().notify_verify(headers=slightly_ahead, body=PAYMENT_NOTIFY, now=NOW).event_id == "EV-1"
    with pytest.raises(NotifyStaleTimestamp):
        client().notify_verify(headers=ahead, body=PAYMENT_NOTIFY, now=NOW)


@pytest.mark.parametrize("body", [
    b"{not json",
    b"[]",
    json.dumps({"id": "EV-2", "event_type": "TRANSACTION.SUCCESS", "resource": {"out_trade_no": "T1"}}).encode(),
    json.dumps({"id": "EV-3", "event_type": "SOMETHING.ELSE", "resource": {}}).encode(),
])
def test_malformed_notify_is_refused_after_the_signature_check(body):
    with pytest.raises(NotifyMalformed) as caught:
        client().notify_verify(headers=sign(body=body, timestamp=str(NOW_TS)), body=body, now=NOW)
    assert (caught.value.code, caught.value.status_code) == ("malformed_notify", 400)


def test_notify_without_signature_headers_is_malformed():
    with pytest.raises(NotifyMalformed):
        client().notify_verify(headers={"Content-Type": "application/json"}, body=PAYMENT_NOTIFY, now=NOW)
    with pytest.raises(NotifyMalformed):
        client().notify_verify(headers={**sign(body=PAYMENT_NOTIFY, timestamp="soon")}, body=PAYMENT_NOTIFY, now=NOW)


def test_refund_notify_parses():
    body = json.dumps({"id": "EV-9", "event_type": "REFUND.SUCCESS", "resource": {
        "out_trade_no": "T1", "out_refund_no": "R1", "refund_id": "5000001", "refund_status": "SUCCESS",
        "success_time": "2026-11-22T12:00:00+08:00"}}).encode()

    event = client().notify_verify(headers=sign(body=body, timestamp=str(NOW_TS)), body=body, now=NOW)

    assert (event.kind, event.out_refund_no, event.refund_id) == (REFUND_SUCCEEDED, "R1", "5000001")
    assert event.refund_succeeded_at == NOW


def test_jsapi_params_are_signed_over_appid_timestamp_nonce_package():
    params = client().jsapi_params(prepay_id="wx123")
    expected = sign(body=params["package"].encode(), timestamp=params["appId"] + "\n" + params["timeStamp"],
                    nonce=params["nonceStr"])["Wechatpay-Signature"]

    assert sorted(params) == ["appId", "nonceStr", "package", "paySign", "signType", "timeStamp"]
    assert (params["appId"], params["package"], params["signType"]) == ("wxapp", "prepay_id=wx123", "HMAC-SHA256")
    assert params["paySign"] == expected
