"""payments.services against the simulator over real HTTP: start, notify, replay,
lost notify, refunds, provider faults."""

import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import requests
from django.db import connection, transaction
from django.utils import timezone

from payments.errors import (
    NotifyBadSignature,
    NotifyMalformed,
    PaymentAlreadySucceeded,
    PaymentMismatch,
    PaymentProviderError,
    PaymentProviderTimeout,
    RefundExceedsPaid,
    RefundNotAllowed,
    RefundRefReused,
)
from payments.models import PaymentRefund, PaymentTransaction
from payments.provider import provider_client
from payments.selectors import payments_pending_for_reconcile
from payments.services import (
    PaymentResult,
    RefundResult,
    payment_close,
    payment_notify_record,
    payment_reconcile,
    payment_start,
    provider_notify_record,
    refund_notify_record,
    refund_out_no,
    refund_start,
)
from tests.channels.sim_helpers import wait_for
from tests.payments.conftest import APPID, MCHID, sign

CREATE = "/v3/pay/transactions/jsapi"
ORDER = "O202611220001"


def start(brand, *, amount="23.50", order_ref=ORDER) -> dict:
    return payment_start(order_ref=order_ref, brand_id=brand.id, amount=Decimal(amount), description="取餐单 A12")


def paid_via_notify(brand, sim_control, receiver, *, amount="23.50") -> tuple[dict, PaymentResult]:
    started = start(brand, amount=amount)
    sim_control.pay(started["out_trade_no"])
    notify = receiver.next()
    return started, payment_notify_record(provider="wxpay", headers=notify.headers, body=notify.body)


def test_start_creates_the_payment_and_returns_mini_program_params(brand, wxpay, sim_control, receiver):
    started = start(brand)

    payment = PaymentTransaction.objects.get()
    assert started["out_trade_no"] == payment.out_trade_no
    assert (started["provider"], started["amount"]) == ("wxpay", "23.50")
    assert started["params"]["package"] == f"prepay_id={payment.prepay_id}"
    assert (started["params"]["appId"], started["params"]["signType"]) == (APPID, "HMAC-SHA256")
    assert (payment.order_ref, payment.brand_id, payment.status) == (ORDER, brand.id, "created")
    assert (payment.amount, payment.amount_fen) == (Decimal("23.50"), 2350)
    [call] = sim_control.calls(CREATE)
    assert call["body"] == {"appid": APPID, "mchid": MCHID, "description": "取餐单 A12",
                            "out_trade_no": payment.out_trade_no, "notify_url": receiver.url,
                            "amount": {"total": 2350, "currency": "CNY"}}


@pytest.mark.parametrize(("amount", "fen"), [("0.01", 1), ("23.50", 2350), ("99999.99", 9999999)])
def test_amount_reaches_the_provider_as_exact_fen(brand, wxpay, sim_control, amount, fen):
    start(brand, amount=amount)

    [call] = sim_control.calls(CREATE)
    assert call["body"]["amount"] == {"total": fen, "currency": "CNY"}
    assert PaymentTransaction.objects.get().amount == Decimal(amount)


def test_start_again_reuses_the_payment_without_calling_the_provider(brand, wxpay, sim_control):
    first = start(brand)
    second = start(brand)

    assert second["out_trade_no"] == first["out_trade_no"]
    assert second["params"]["package"] == first["params"]["package"]
    assert PaymentTransaction.objects.count() == 1
    assert len(sim_control.calls(CREATE)) == 1


def test_start_with_another_amount_for_the_same_order_is_refused(brand, wxpay):
    start(brand)

    with pytest.raises(PaymentMismatch):
        start(brand, amount="23.51")


def test_notify_marks_the_payment_succeeded(brand, wxpay, sim_control, receiver):
    started = start(brand)
    paid = sim_control.pay(started["out_trade_no"])
    notify = receiver.next()

    result = payment_notify_record(provider="wxpay", headers=notify.headers, body=notify.body)

    payment = PaymentTransaction.objects.get()
    success_time = datetime.fromisoformat(notify.json["resource"]["success_time"])
    assert result == PaymentResult(out_trade_no=started["out_trade_no"], order_ref=ORDER, provider="wxpay",
                                   brand_id=brand.id, amount=Decimal("23.50"),
                                   transaction_id=paid["transaction_id"], paid_at=success_time, first_time=True)
    assert (payment.status, payment.transaction_id, payment.paid_at) == (
        "succeeded", paid["transaction_id"], success_time)
    assert payment.notify_payload == notify.json


def test_replayed_notify_returns_first_time_false_and_changes_nothing(brand, wxpay, sim_control, receiver):
    started = start(brand)
    sim_control.pay(started["out_trade_no"], times=2)
    first_delivery, replay = receiver.next(), receiver.next()
    first = payment_notify_record(provider="wxpay", headers=first_delivery.headers, body=first_delivery.body)
    before = PaymentTransaction.objects.values().get()

    again = payment_notify_record(provider="wxpay", headers=replay.headers, body=replay.body)

    assert first.first_time is True
    assert again == PaymentResult(**{**first.__dict__, "first_time": False})
    assert PaymentTransaction.objects.values().get() == before


def test_notify_for_the_paid_order_then_start_is_refused(brand, wxpay, sim_control, receiver):
    paid_via_notify(brand, sim_control, receiver)

    with pytest.raises(PaymentAlreadySucceeded):
        start(brand)


def test_bad_signature_from_the_provider_is_refused_and_the_retry_is_accepted(brand, wxpay, sim_control, receiver):
    client = provider_client("wxpay")

    def verify(notify) -> int:  # what our endpoint does: 401 on a bad signature
        try:
            client.notify_verify(headers=notify.headers, body=notify.body, now=timezone.now())
        except NotifyBadSignature:
            return 401
        return 200

    receiver.responder = verify
    sim_control.fault(path_prefix="/api/v1/payments/notify/wxpay", mode="bad_signature")
    started = start(brand)
    sim_control.pay(started["out_trade_no"])
    bad, good = receiver.next(), receiver.next()

    with pytest.raises(NotifyBadSignature):
        payment_notify_record(provider="wxpay", headers=bad.headers, body=bad.body)
    assert PaymentTransaction.objects.get().status == "created"
    assert payment_notify_record(provider="wxpay", headers=good.headers, body=good.body).first_time is True
    # The simulator logs an outbound call once it has read our answer: wait for the second.
    deadline = time.monotonic() + 5
    while len(sim_control.calls(direction="out")) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [c["status"] for c in sim_control.calls(direction="out")] == [401, 200]


def test_tampered_notify_body_changes_nothing(brand, wxpay, sim_control, receiver):
    started = start(brand)
    sim_control.pay(started["out_trade_no"])
    notify = receiver.next()
    tampered = notify.body.replace(b'"total":2350', b'"total":1')

    with pytest.raises(NotifyBadSignature):
        payment_notify_record(provider="wxpay", headers=notify.headers, body=tampered)
    assert PaymentTransaction.objects.get().status == "created"


def test_notify_with_another_amount_is_refused(brand, wxpay):
    started = start(brand)
    body = (b'{"id":"EV-X","event_type":"TRANSACTION.SUCCESS","resource":{"out_trade_no":"'
            + started["out_trade_no"].encode()
            + b'","transaction_id":"4200009","trade_state":"SUCCESS","success_time":"2026-11-22T12:00:00+08:00",'
              b'"amount":{"total":1,"payer_total":1}}}')
    headers = sign(body=body, timestamp=str(int(timezone.now().timestamp())))

    with pytest.raises(PaymentMismatch):
        payment_notify_record(provider="wxpay", headers=headers, body=body)
    assert PaymentTransaction.objects.get().status == "created"


def test_lost_notify_is_found_by_reconciliation(brand, wxpay, sim_control, receiver):
    started = start(brand)
    unpaid = payment_reconcile(out_trade_no=started["out_trade_no"])
    later = timezone.now() + timedelta(seconds=61)
    pending = payments_pending_for_reconcile(older_than_seconds=60, limit=10, now=later)
    paid = sim_control.pay(started["out_trade_no"], notify=False)

    result = payment_reconcile(out_trade_no=started["out_trade_no"])
    again = payment_reconcile(out_trade_no=started["out_trade_no"])

    assert unpaid is None
    assert [p.out_trade_no for p in pending] == [started["out_trade_no"]]
    assert (result.first_time, result.transaction_id, result.amount) == (True, paid["transaction_id"],
                                                                          Decimal("23.50"))
    assert again == PaymentResult(**{**result.__dict__, "first_time": False})
    assert PaymentTransaction.objects.get().status == "succeeded"
    assert payments_pending_for_reconcile(older_than_seconds=60, limit=10, now=later) == []
    assert len(sim_control.calls("/v3/pay/transactions/out-trade-no/")) == 2  # the third call asked nobody
    receiver.assert_no_more()


def test_pending_selector_respects_age_and_limit(brand, wxpay):
    for n in range(3):
        start(brand, order_ref=f"O-{n}")
    now = timezone.now()

    assert payments_pending_for_reconcile(older_than_seconds=60, limit=10, now=now) == []
    assert [p.order_ref for p in payments_pending_for_reconcile(older_than_seconds=60, limit=2,
                                                                now=now + timedelta(seconds=61))] == ["O-0", "O-1"]


def test_notify_after_close_still_wins(brand, wxpay, sim_control, receiver):
    started = start(brand)
    closed = payment_close(order_ref=ORDER)
    sim_control.pay(started["out_trade_no"])
    notify = receiver.next()

    result = payment_notify_record(provider="wxpay", headers=notify.headers, body=notify.body)

    assert closed is True
    assert result.first_time is True
    assert PaymentTransaction.objects.get().status == "succeeded"


def test_refund_flow_partial_then_full(brand, wxpay, sim_control, receiver):
    paid_via_notify(brand, sim_control, receiver)

    refund = refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("10.00"), reason="少送一杯")
    notify = receiver.next()
    recorded = refund_notify_record(provider="wxpay", headers=notify.headers, body=notify.body)
    replay = refund_notify_record(provider="wxpay", headers=notify.headers, body=notify.body)

    assert (refund.status, refund.amount, refund.amount_fen) == ("processing", Decimal("10.00"), 1000)
    assert refund.out_refund_no == refund_out_no(order_ref=ORDER, refund_ref="RF-1")
    assert refund.refund_id == notify.json["resource"]["refund_id"]
    assert recorded == RefundResult(
        out_refund_no=refund.out_refund_no, refund_ref="RF-1", order_ref=ORDER, amount=Decimal("10.00"),
        refund_id=refund.refund_id, status="succeeded",
        succeeded_at=datetime.fromisoformat(notify.json["resource"]["success_time"]), first_time=True)
    assert replay == RefundResult(**{**recorded.__dict__, "first_time": False})
    assert PaymentTransaction.objects.get().status == "succeeded"

    rest = refund_start(order_ref=ORDER, refund_ref="RF-2", amount=Decimal("13.50"), reason="整单退款")
    rest_notify = receiver.next()
    result = provider_notify_record(provider="wxpay", headers=rest_notify.headers, body=rest_notify.body)

    assert isinstance(result, RefundResult)
    assert (result.out_refund_no, result.first_time) == (rest.out_refund_no, True)
    assert PaymentTransaction.objects.get().status == "refunded"
    [call] = sim_control.calls("/v3/refund/domestic/refunds")[1:]
    assert call["body"] == {"out_trade_no": PaymentTransaction.objects.get().out_trade_no,
                            "out_refund_no": rest.out_refund_no, "reason": "整单退款", "notify_url": receiver.url,
                            "amount": {"refund": 1350, "total": 2350, "currency": "CNY"}}


def _waiting_for_a_lock() -> int:
    """Sessions of this test database waiting for a row lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_refund_notify_that_ends_the_last_refund_commits_it_with_the_payment_refunded(
        brand, wxpay, sim_control, receiver):
    paid_via_notify(brand, sim_control, receiver)
    refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("23.50"), reason="整单退款")
    notify = receiver.next()
    payment_locked, release, results = threading.Event(), threading.Event(), []

    def hold_the_payment():  # another transaction on the payment (a refund starting, say)
        try:
            with transaction.atomic():
                PaymentTransaction.objects.select_for_update().get()
                payment_locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def record_the_notify():
        try:
            results.append(refund_notify_record(provider="wxpay", headers=notify.headers, body=notify.body))
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_payment)
    holder.start()
    assert payment_locked.wait(timeout=10)
    recorder = threading.Thread(target=record_the_notify)
    recorder.start()
    try:
        assert wait_for(lambda: _waiting_for_a_lock() == 1)  # the notify waits for the payment row
        while_waiting = (PaymentRefund.objects.get().status, PaymentTransaction.objects.get().status)
    finally:
        release.set()
        holder.join(timeout=30)
        recorder.join(timeout=30)

    # Never the refund ended and its payment not: both or neither (a failure in
    # between would leave the payment "succeeded" for good, a replay changes nothing).
    assert while_waiting == ("processing", "succeeded")
    assert [(r.status, r.first_time) for r in results] == [("succeeded", True)]
    assert (PaymentRefund.objects.get().status, PaymentTransaction.objects.get().status) == (
        "succeeded", "refunded")


def test_refund_start_is_idempotent_per_refund_ref(brand, wxpay, sim_control, receiver):
    paid_via_notify(brand, sim_control, receiver)

    first = refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("5.00"), reason="r")
    again = refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("5.00"), reason="r")

    assert again.pk == first.pk
    assert PaymentRefund.objects.count() == 1
    assert len(sim_control.calls("/v3/refund/domestic/refunds")) == 1
    with pytest.raises(RefundRefReused):
        refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("6.00"), reason="r")


def test_refund_beyond_what_was_paid_or_before_payment_is_refused(brand, wxpay, sim_control, receiver):
    start(brand)
    with pytest.raises(RefundNotAllowed):
        refund_start(order_ref=ORDER, refund_ref="RF-0", amount=Decimal("1.00"), reason="r")
    payment = PaymentTransaction.objects.get()
    sim_control.pay(payment.out_trade_no)
    notify = receiver.next()
    payment_notify_record(provider="wxpay", headers=notify.headers, body=notify.body)
    refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("20.00"), reason="r")

    with pytest.raises(RefundExceedsPaid) as caught:
        refund_start(order_ref=ORDER, refund_ref="RF-2", amount=Decimal("3.51"), reason="r")
    assert caught.value.detail == {"refundable": "3.50"}
    assert PaymentRefund.objects.count() == 1


def test_payment_notify_record_refuses_a_refund_notify(brand, wxpay, sim_control, receiver):
    paid_via_notify(brand, sim_control, receiver)
    refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("1.00"), reason="r")
    notify = receiver.next()

    with pytest.raises(NotifyMalformed):
        payment_notify_record(provider="wxpay", headers=notify.headers, body=notify.body)


def test_provider_500_then_success_is_retried(brand, wxpay, sim_control):
    sim_control.fault(path_prefix=CREATE, mode="error500", count=2)

    started = start(brand)

    assert started["params"]["package"] == f"prepay_id={PaymentTransaction.objects.get().prepay_id}"
    assert [c["status"] for c in sim_control.calls(CREATE)] == [500, 500, 200]


def test_provider_500_past_the_retries_raises_and_leaves_the_payment_created(brand, wxpay, sim_control):
    sim_control.fault(path_prefix=CREATE, mode="error500", count=3)

    with pytest.raises(PaymentProviderError) as caught:
        start(brand)

    assert (caught.value.code, caught.value.status_code) == ("payment_provider_error", 502)
    payment = PaymentTransaction.objects.get()
    assert (payment.status, payment.prepay_id) == ("created", "")
    assert start(brand)["out_trade_no"] == payment.out_trade_no  # a later attempt succeeds


def test_slow_provider_times_out_and_leaves_the_payment_created(brand, settings, wxpay, sim, sim_control):
    settings.PAYMENT_PROVIDERS["wxpay"]["timeout"] = 0.5
    sim_control.fault(path_prefix=CREATE, mode="slow", delay=1.5)

    with pytest.raises(PaymentProviderTimeout) as caught:
        start(brand)

    assert (caught.value.code, caught.value.status_code) == ("payment_provider_timeout", 504)
    payment = PaymentTransaction.objects.get()
    assert (payment.status, payment.prepay_id) == ("created", "")
    retried = start(brand)  # the slow request may also take effect at the provider: still one transaction
    [held] = requests.get(f"{sim.base_url}/_sim/wxpay/transactions", timeout=5).json()["transactions"]
    assert held["out_trade_no"] == retried["out_trade_no"] == payment.out_trade_no
    assert retried["params"]["package"] == f"prepay_id={held['prepay_id']}"
