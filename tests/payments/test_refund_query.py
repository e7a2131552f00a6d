"""Refunds that do not end by their notify, against the simulator over real HTTP: a
lost notify found by the refund query, ABNORMAL, CLOSED and started again, a refund
the provider never received, a request it refuses, and the backoff of the query."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from payments.errors import PaymentProviderError, PaymentProviderRejected, RefundNotAllowed
from payments.models import PaymentRefund, PaymentTransaction
from payments.selectors import refunds_due_for_check, refunds_to_escalate, refunds_to_retry
from payments.services import (
    RefundResult,
    payment_notify_record,
    payment_start,
    refund_notify_record,
    refund_out_no,
    refund_reconcile,
    refund_retry,
    refund_start,
)

ORDER = "O202611220009"
REFUNDS = "/v3/refund/domestic/refunds"


def paid(brand, sim_control, receiver, *, amount="23.50") -> PaymentTransaction:
    started = payment_start(order_ref=ORDER, brand_id=brand.id, amount=Decimal(amount), description="取餐单 A12")
    sim_control.pay(started["out_trade_no"])
    notify = receiver.next()
    payment_notify_record(provider="wxpay", headers=notify.headers, body=notify.body)
    return PaymentTransaction.objects.get()


def plan(sim, **spec) -> None:
    response = requests.post(f"{sim.base_url}/_sim/wxpay/refund_plan", json=spec, timeout=5)
    assert response.status_code == 201, response.text


def settle(sim, out_refund_no: str, **spec) -> requests.Response:
    return requests.post(f"{sim.base_url}/_sim/wxpay/refunds/{out_refund_no}/settle", json=spec, timeout=5)


def sim_refund_status(sim, out_refund_no: str) -> str:
    refunds = requests.get(f"{sim.base_url}/_sim/wxpay/transactions", timeout=5).json()["refunds"]
    return next(r["status"] for r in refunds if r["out_refund_no"] == out_refund_no)


def wait_for_sim_status(sim, out_refund_no: str, status: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sim_refund_status(sim, out_refund_no) == status:
            return True
        time.sleep(0.02)
    return False


def test_a_lost_refund_notify_is_found_by_the_query_and_the_late_notify_changes_nothing(
        brand, wxpay, sim, sim_control, receiver):
    payment = paid(brand, sim_control, receiver)
    refund = refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("23.50"), reason="整单退款")
    late_notify = receiver.next()  # held back: as if lost, it arrives after the query

    result = refund_reconcile(out_refund_no=refund.out_refund_no)
    late = refund_notify_record(provider="wxpay", headers=late_notify.headers, body=late_notify.body)

    refund.refresh_from_db()
    assert result == RefundResult(out_refund_no=refund.out_refund_no, refund_ref="RF-1", order_ref=ORDER,
                                  amount=Decimal("23.50"), refund_id=refund.refund_id, status="succeeded",
                                  succeeded_at=refund.succeeded_at, first_time=True)
    assert late == RefundResult(**{**result.__dict__, "first_time": False})
    assert (refund.status, refund.provider_status, refund.checks) == ("succeeded", "SUCCESS", 1)
    assert refund.notify_payload["source"] == "query"  # the late notify did not overwrite it
    payment.refresh_from_db()
    assert payment.status == "refunded"
    assert refund_reconcile(out_refund_no=refund.out_refund_no) == RefundResult(**{**result.__dict__,
                                                                                   "first_time": False})
    assert len(sim_control.calls(f"{REFUNDS}/")) == 1  # an ended refund is not asked about again


def test_an_abnormal_refund_is_recorded_from_the_query_and_succeeds_once_handled_at_the_provider(
        brand, wxpay, sim, sim_control, receiver):
    payment = paid(brand, sim_control, receiver)
    plan(sim, status="ABNORMAL", notify=False)
    refund = refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("23.50"), reason="整单退款")
    assert wait_for_sim_status(sim, refund.out_refund_no, "ABNORMAL")

    abnormal = refund_reconcile(out_refund_no=refund.out_refund_no)
    again = refund_reconcile(out_refund_no=refund.out_refund_no)
    handled = settle(sim, refund.out_refund_no, status="SUCCESS", notify=False)
    succeeded = refund_reconcile(out_refund_no=refund.out_refund_no)

    assert (abnormal.status, abnormal.first_time) == ("abnormal", True)
    assert again is None  # still abnormal at the provider: nothing changed
    assert handled.status_code == 200
    assert (succeeded.status, succeeded.first_time) == ("succeeded", True)
    refund.refresh_from_db()
    assert (refund.status, refund.provider_status, refund.checks) == ("succeeded", "SUCCESS", 3)
    payment.refresh_from_db()
    assert payment.status == "refunded"
    receiver.assert_no_more()


def test_a_closed_refund_fails_by_its_notify_and_is_started_again_with_a_new_refund_number(
        brand, wxpay, sim, sim_control, receiver):
    payment = paid(brand, sim_control, receiver)
    plan(sim, status="CLOSED")
    first = refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("23.50"), reason="整单退款")
    closed = refund_notify_record(provider="wxpay", **_captured(receiver.next()))

    retry = refund_retry(out_refund_no=first.out_refund_no)
    same = refund_retry(out_refund_no=first.out_refund_no)
    done = refund_notify_record(provider="wxpay", **_captured(receiver.next()))

    assert (closed.status, closed.first_time) == ("failed", True)
    first.refresh_from_db()
    assert (first.status, first.provider_status) == ("failed", "CLOSED")
    assert same.pk == retry.pk
    assert (retry.refund_ref, retry.attempt, retry.retry_of_id, retry.amount) == ("RF-1#2", 2, first.pk,
                                                                                 Decimal("23.50"))
    assert retry.out_refund_no == refund_out_no(order_ref=ORDER, refund_ref="RF-1#2") != first.out_refund_no
    assert (done.out_refund_no, done.status) == (retry.out_refund_no, "succeeded")
    payment.refresh_from_db()
    assert payment.status == "refunded"
    calls = sim_control.calls(REFUNDS)
    assert [(c["body"]["out_refund_no"], c["body"]["amount"]["refund"]) for c in calls] == [
        (first.out_refund_no, 2350), (retry.out_refund_no, 2350)]
    with pytest.raises(RefundNotAllowed):
        refund_retry(out_refund_no=retry.out_refund_no)  # it succeeded: nothing to start again


def test_an_abnormal_notify_then_a_closed_one_after_handling_by_hand(brand, wxpay, sim, sim_control, receiver):
    paid(brand, sim_control, receiver)
    plan(sim, status="ABNORMAL")
    refund = refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("23.50"), reason="整单退款")
    abnormal = refund_notify_record(provider="wxpay", **_captured(receiver.next()))
    settle(sim, refund.out_refund_no, status="CLOSED")
    closed = refund_notify_record(provider="wxpay", **_captured(receiver.next()))

    assert (abnormal.status, closed.status, closed.first_time) == ("abnormal", "failed", True)
    assert settle(sim, refund.out_refund_no, status="SUCCESS").status_code == 409  # closed is final


def test_a_refund_the_provider_never_received_is_sent_again_with_the_same_number(
        brand, wxpay, sim, sim_control, receiver):
    paid(brand, sim_control, receiver)
    sim_control.fault(path_prefix=REFUNDS, mode="error500", count=3)  # the call and its two retries
    with pytest.raises(PaymentProviderError):
        refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("23.50"), reason="整单退款")
    refund = PaymentRefund.objects.get()
    assert (refund.status, refund.refund_id) == ("processing", "")

    unknown = refund_reconcile(out_refund_no=refund.out_refund_no)
    done = refund_notify_record(provider="wxpay", **_captured(receiver.next()))

    assert unknown is None  # sent again, still processing there
    refund.refresh_from_db()
    assert refund.refund_id != "" and refund.provider_status == "SUCCESS"
    assert (done.status, done.first_time) == ("succeeded", True)
    queries = sim_control.calls(f"{REFUNDS}/")
    assert [c["status"] for c in queries] == [404]
    sends = [c for c in sim_control.calls(REFUNDS) if c["method"] == "POST"]
    assert [c["status"] for c in sends] == [500, 500, 500, 200]
    assert {c["body"]["out_refund_no"] for c in sends} == {refund.out_refund_no}


def test_a_refund_request_the_provider_refuses_fails_at_once_and_is_not_retried_by_the_machine(
        brand, wxpay, sim, sim_control, receiver):
    paid(brand, sim_control, receiver)
    requests.post(f"{sim.base_url}/_sim/reset", timeout=5)  # the provider no longer knows the payment

    with pytest.raises(PaymentProviderRejected):
        refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("23.50"), reason="整单退款")

    refund = PaymentRefund.objects.get()
    assert (refund.status, refund.provider_status) == ("failed", "REJECTED")
    assert refunds_to_retry(max_attempts=3, limit=10) == []
    assert refunds_to_escalate(max_attempts=3, stuck_before=timezone.now(), limit=10) == [refund]


def test_an_open_refund_is_asked_about_with_backoff_up_to_an_hour(brand, wxpay, sim, sim_control, receiver):
    paid(brand, sim_control, receiver)
    plan(sim, status="PROCESSING")
    refund = refund_start(order_ref=ORDER, refund_ref="RF-1", amount=Decimal("23.50"), reason="整单退款")
    created = refund.created_at
    assert refunds_due_for_check(limit=10, now=created + timedelta(seconds=119)) == []
    assert refunds_due_for_check(limit=10, now=created + timedelta(seconds=121)) == [refund]

    waits = []
    now = created + timedelta(seconds=121)
    for _ in range(7):
        assert refund_reconcile(out_refund_no=refund.out_refund_no, now=now) is None
        refund.refresh_from_db()
        waits.append(int((refund.next_check_at - now).total_seconds()))
        now = refund.next_check_at

    assert waits == [240, 480, 960, 1920, 3600, 3600, 3600]
    assert (refund.status, refund.provider_status, refund.checks) == ("processing", "PROCESSING", 7)
    assert refunds_to_escalate(max_attempts=3, stuck_before=created - timedelta(seconds=1), limit=10) == []
    assert refunds_to_escalate(max_attempts=3, stuck_before=created, limit=10) == [refund]


def test_the_refund_plan_and_settle_control_calls_refuse_bad_input(sim):
    bad_plans = [{"status": "DONE"}, {"status": "CLOSED", "notify": "no"}, {"status": "CLOSED", "count": 0}]
    for spec in bad_plans:
        response = requests.post(f"{sim.base_url}/_sim/wxpay/refund_plan", json=spec, timeout=5)
        assert (response.status_code, response.json()["code"]) == (400, "BAD_REQUEST")
    unknown = settle(sim, "R0000000000000000000000000000001", status="SUCCESS")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    assert settle(sim, "R0000000000000000000000000000001", status="PROCESSING").status_code == 400


def _captured(notify) -> dict:
    return {"headers": notify.headers, "body": notify.body}
