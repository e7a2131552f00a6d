"""The ``oms`` fulfilment route over real HTTP: a paid voucher order gets its codes
from the simulator's OMS through the outbox, the OMS reports redemptions to our
signed callback, the POS redeems codes. Signatures are computed here from
docs/fulfilment.md, independently of the adapter and the simulator."""

import hashlib
import hmac
import json
import re
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import OutboxMessage, OutboxStatus
from core.outbox import outbox_relay
from orders.fulfilment import FULFILMENT_ROUTING, fulfilment_route_for, fulfilment_routes_check
from orders.fulfilment.oms import VOID_ABSENT_ATTEMPTS, VOUCHER_ISSUE_TOPIC, VOUCHER_VOID_TOPIC, voucher_issue_deliver
from orders.fulfilment.oms_client import IssueItem, oms_client
from orders.models import Order, OrderEvent, StoreFeedEvent, VoucherCode
from orders.services import LineInput
from orders.services.vouchers import (
    IssuedCode,
    VoucherCodesMismatch,
    voucher_codes_record_issued,
)
from simulator.testing import running_simulator
from tests.channels.sim_helpers import wait_for
from tests.factories import CustomerFactory, StoreFactory, pos_terminal
from tests.http_receiver import running_receiver
from tests.order_helpers import make_order, walk
from tests.orders.conftest import client_for
from tests.pos.conftest import token_client

OMS_KEY, OMS_SECRET = "test-oms-app", "test-oms-secret"
CALLBACK_PATH = "/api/v1/fulfilment/oms/callback"
ISSUE = "/oms/v1/vouchers/issue"
CODE_RE = re.compile(r"^EV\d{10}$")


def sign(body: bytes, *, timestamp: str | None = None, nonce: str = "n0nce", secret: str = OMS_SECRET) -> dict:
    timestamp = timestamp or str(int(time.time()))
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    return {"X-Oms-App-Key": OMS_KEY, "X-Oms-Timestamp": timestamp, "X-Oms-Nonce": nonce,
            "X-Oms-Signature": hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()}


@pytest.fixture
def receiver():
    """Stands in for our callback endpoint; the tests replay what it captured."""
    with running_receiver(ok_body=b'{"code": "SUCCESS"}', fail_body=b'{"code": "FAIL"}') as callback_receiver:
        callback_receiver.url = f"{callback_receiver.base_url}{CALLBACK_PATH}"
        yield callback_receiver


@pytest.fixture
def sim():
    with running_simulator(oms_app_key=OMS_KEY, oms_app_secret=OMS_SECRET, notify_backoff=(0.05, 0.1),
                           notify_max_attempts=20, notify_timeout=2.0) as server:
        yield server
    assert [t.name for t in threading.enumerate() if t.name in ("simulator", "sim-push")] == []


@pytest.fixture
def oms(settings, sim, receiver):
    settings.OMS = {"base_url": sim.base_url, "app_key": OMS_KEY, "app_secret": OMS_SECRET,
                    "callback_url": receiver.url, "timeout": 2.0}
    return settings.OMS


@pytest.fixture
def store(db):
    return StoreFactory()


def voucher_order(store, **kwargs):
    return make_order(store=store, order_type="voucher", lines=[
        LineInput(name="50元代金券", sku_code="V50", unit_price=Decimal("45.00"), quantity=2),
        LineInput(name="100元代金券", sku_code="V100", unit_price=Decimal("88.00"), quantity=1),
    ], **kwargs)


def reread(order) -> Order:
    return Order.objects.get(pk=order.pk)


def sim_calls(sim, prefix, direction="in"):
    return requests.get(f"{sim.base_url}/_sim/calls", params={"path_prefix": prefix, "direction": direction},
                        timeout=5).json()["calls"]


def sim_vouchers(sim, order_no):
    return requests.get(f"{sim.base_url}/_sim/oms/vouchers", params={"order_no": order_no}, timeout=5).json()[
        "vouchers"]


def sim_fault(sim, **spec):
    assert requests.post(f"{sim.base_url}/_sim/faults", json=spec, timeout=5).status_code == 201


def sim_redeem(sim, code, store_ref="mall-7"):
    response = requests.post(f"{sim.base_url}/_sim/oms/redeem", json={"code": code, "store_ref": store_ref},
                             timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def due_now(message):
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def issued_order(store):
    order = voucher_order(store)
    walk(order, "pay")
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    return reread(order)


def codes_of(order) -> list[str]:
    return list(VoucherCode.objects.filter(order=order).order_by("line_no", "id").values_list("code", flat=True))


def post_callback(captured=None, *, body: bytes | None = None, headers: dict | None = None):
    """Our callback endpoint, given what the simulator POSTed (or a hand-made request)."""
    body = captured.body if captured is not None else body
    headers = {k: v for k, v in (captured.headers if captured is not None else headers).items()
               if k.lower().startswith("x-oms-")}
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return APIClient().generic("POST", CALLBACK_PATH, data=body, content_type="application/json", **meta)


# --- routing ------------------------------------------------------------------------------


def test_routing_is_declared_by_order_type_and_every_route_is_registered():
    assert FULFILMENT_ROUTING == {"delivery": "pos", "pickup": "pos", "dine_in": "pos", "voucher": "oms"}
    assert fulfilment_routes_check() == []
    assert (fulfilment_route_for("pickup").name, fulfilment_route_for("voucher").name) == ("pos", "oms")


# --- issue -------------------------------------------------------------------------------


def test_payment_writes_the_issue_message_in_the_same_transaction(store, oms):
    order = voucher_order(store)

    walk(order, "pay")

    message = OutboxMessage.objects.get()
    assert (message.topic, message.key, message.brand_id, message.status) == (
        VOUCHER_ISSUE_TOPIC, order.order_no, store.brand_id, OutboxStatus.PENDING)
    assert message.payload == {"order_no": order.order_no, "store_id": store.pk}
    assert StoreFeedEvent.objects.filter(order=order).count() == 0


def test_paid_voucher_order_gets_one_code_per_unit_from_the_oms_and_is_issued(store, oms, sim, receiver):
    order = voucher_order(store)
    walk(order, "pay")

    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}

    order = reread(order)
    assert order.status == "issued"
    rows = list(VoucherCode.objects.filter(order=order).order_by("line_no", "id")
                .values_list("line_no", "sku_code", "state", "redeemed_at"))
    assert rows == [(1, "V50", "issued", None), (1, "V50", "issued", None), (2, "V100", "issued", None)]
    codes = codes_of(order)
    assert all(CODE_RE.match(code) for code in codes) and len(set(codes)) == 3
    assert sorted(v["code"] for v in sim_vouchers(sim, order.order_no)) == sorted(codes)
    [call] = sim_calls(sim, ISSUE)
    assert call["body"] == {
        "order_no": order.order_no, "store_ref": str(store.pk), "callback_url": receiver.url,
        "items": [{"line_no": 1, "sku": "V50", "name": "50元代金券", "qty": 2, "face_value_fen": 4500},
                  {"line_no": 2, "sku": "V100", "name": "100元代金券", "qty": 1, "face_value_fen": 8800}],
    }
    sent = call["headers"]
    assert sent["x-oms-app-key"] == OMS_KEY
    assert sent["x-oms-signature"] == sign(json.dumps(call["body"], ensure_ascii=False, separators=(",", ":"))
                                           .encode(), timestamp=sent["x-oms-timestamp"],
                                           nonce=sent["x-oms-nonce"])["X-Oms-Signature"]
    issue = OrderEvent.objects.get(order=order, action="issue")
    assert (issue.from_status, issue.to_status, issue.actor_kind, issue.actor_id) == ("paid", "issued", "system", "oms")
    assert OutboxMessage.objects.get().status == OutboxStatus.DELIVERED
    assert StoreFeedEvent.objects.filter(order=order).count() == 0


def test_an_oms_500_is_retried_by_the_outbox_then_the_codes_land_once(store, oms, sim):
    sim_fault(sim, mode="error500", path_prefix=ISSUE, count=1)
    order = voucher_order(store)
    walk(order, "pay")
    message = OutboxMessage.objects.get()

    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}
    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)
    assert message.last_error == ('OmsError: The voucher system is unavailable. '
                                  '{"http_status": 500, "path": "/oms/v1/vouchers/issue"}')
    assert (reread(order).status, VoucherCode.objects.count()) == ("paid", 0)
    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 0}  # backing off: not due yet

    due_now(message)
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}

    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (OutboxStatus.DELIVERED, 2, "")
    assert (reread(order).status, VoucherCode.objects.filter(order=order).count()) == ("issued", 3)
    assert [c["fault"] for c in sim_calls(sim, ISSUE)] == ["error500", ""]


def test_an_oms_refusal_is_a_dead_letter_at_once(store, oms, sim, settings):
    settings.OMS = {**settings.OMS, "app_secret": "not-the-secret"}
    order = voucher_order(store)
    walk(order, "pay")

    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}

    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts) == (OutboxStatus.DEAD, 1)
    assert '"http_status": 401' in message.last_error and '"oms_code": "BAD_SIGNATURE"' in message.last_error
    assert reread(order).status == "paid"


def test_the_issue_handler_run_twice_issues_the_codes_once(store, oms, sim):
    order = voucher_order(store)
    walk(order, "pay")
    message = OutboxMessage.objects.get()
    voucher_issue_deliver(message)
    codes = codes_of(order)

    voucher_issue_deliver(message)  # a repeated delivery: the order is no longer waiting for codes

    assert codes_of(order) == codes
    assert OrderEvent.objects.filter(order=order, action="issue").count() == 1
    assert len(sim_calls(sim, ISSUE)) == 1


def test_asking_the_oms_twice_gives_the_same_codes_and_recording_them_twice_changes_nothing(store, oms, sim):
    order = voucher_order(store)
    walk(order, "pay")
    items = [IssueItem(line_no=1, sku="V50", name="50元代金券", qty=2, face_value=Decimal("45.00")),
             IssueItem(line_no=2, sku="V100", name="100元代金券", qty=1, face_value=Decimal("88.00"))]
    first = oms_client().issue(order_no=order.order_no, store_ref=str(store.pk), items=items)
    second = oms_client().issue(order_no=order.order_no, store_ref=str(store.pk), items=items)
    codes = [IssuedCode(code=v.code, line_no=v.line_no, sku_code=v.sku) for v in first]

    voucher_codes_record_issued(order_no=order.order_no, codes=codes, actor=oms_actor())
    again = voucher_codes_record_issued(order_no=order.order_no, codes=codes, actor=oms_actor())

    assert second == first
    assert again.status == "issued"
    assert codes_of(order) == [v.code for v in first]
    assert OrderEvent.objects.filter(order=order, action="issue").count() == 1
    with pytest.raises(VoucherCodesMismatch):
        voucher_codes_record_issued(order_no=order.order_no, actor=oms_actor(),
                                    codes=[IssuedCode(code="EV0000000000", line_no=1)])


def test_an_order_cancelled_before_the_relay_asks_the_oms_for_no_codes(store, oms, sim):
    order = voucher_order(store)
    walk(order, "pay", "cancel")

    # The issue message is skipped (not paid any more); the void finds nothing at the OMS.
    assert outbox_relay(limit=10) == {"delivered": 2, "failed": 0}

    assert (reread(order).status, VoucherCode.objects.count(), sim_calls(sim, ISSUE)) == ("cancelled", 0, [])
    assert [call["status"] for call in sim_calls(sim, "/oms/v1/vouchers/void")] == [404]


def test_codes_whose_issue_answer_was_lost_are_voided_at_the_oms_when_the_order_is_cancelled(store, oms, sim):
    from orders.fulfilment.oms_client import IssueItem, oms_client

    order = voucher_order(store)
    walk(order, "pay")
    # The OMS issued the codes but its answer never reached us (a timeout after the fact).
    lost = oms_client().issue(order_no=order.order_no, store_ref=str(store.pk), items=[
        IssueItem(line_no=1, sku="V50", name="50元代金券", qty=2, face_value=Decimal("45.00")),
        IssueItem(line_no=2, sku="V100", name="100元代金券", qty=1, face_value=Decimal("88.00")),
    ])
    walk(order, "cancel")

    assert outbox_relay(limit=10) == {"delivered": 2, "failed": 0}

    assert reread(order).status == "cancelled" and VoucherCode.objects.count() == 0
    assert [sim_voucher(sim, voucher.code)["state"] for voucher in lost] == ["void", "void", "void"]


def test_a_void_behind_a_dead_issue_message_waits_for_codes_the_oms_issues_late(store, oms, sim):
    """The issue call's last attempt timed out (dead letter) but the OMS was still
    issuing: the void first finds no order there, is retried, and voids the codes
    once they exist."""
    order = voucher_order(store)
    walk(order, "pay")
    OutboxMessage.objects.filter(topic=VOUCHER_ISSUE_TOPIC, key=order.order_no).update(
        status=OutboxStatus.DEAD, attempts=8, last_error="ReadTimeout")
    walk(order, "cancel")

    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}
    void = OutboxMessage.objects.get(topic=VOUCHER_VOID_TOPIC, key=order.order_no)
    assert (void.status, void.attempts, "its issue message is dead" in void.last_error) == ("pending", 1, True)
    late = oms_client().issue(order_no=order.order_no, store_ref=str(store.pk), items=[
        IssueItem(line_no=1, sku="V50", name="50元代金券", qty=2, face_value=Decimal("45.00")),
        IssueItem(line_no=2, sku="V100", name="100元代金券", qty=1, face_value=Decimal("88.00")),
    ])
    due_now(void)

    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    assert [sim_voucher(sim, voucher.code)["state"] for voucher in late] == ["void", "void", "void"]


def test_a_void_behind_a_dead_issue_message_stops_asking_after_a_few_attempts(store, oms, sim):
    order = voucher_order(store)
    walk(order, "pay")
    OutboxMessage.objects.filter(topic=VOUCHER_ISSUE_TOPIC, key=order.order_no).update(
        status=OutboxStatus.DEAD, attempts=8)
    walk(order, "cancel")
    void = OutboxMessage.objects.get(topic=VOUCHER_VOID_TOPIC, key=order.order_no)
    OutboxMessage.objects.filter(pk=void.pk).update(attempts=VOID_ABSENT_ATTEMPTS - 1)

    # This is attempt VOID_ABSENT_ATTEMPTS: the OMS still knows no such order, so nothing was issued.
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    assert [call["status"] for call in sim_calls(sim, "/oms/v1/vouchers/void")] == [404]


def test_codes_issued_after_a_cancel_flag_the_order_for_a_person(store):
    order = voucher_order(store)
    walk(order, "pay", "cancel")

    voucher_codes_record_issued(order_no=order.order_no, actor=oms_actor(),
                                codes=[IssuedCode(code="EV0000000001", line_no=1)])

    order = reread(order)
    assert (order.status, order.needs_attention, VoucherCode.objects.count()) == ("cancelled", True, 0)
    flag = OrderEvent.objects.get(order=order, action="flag")
    assert (flag.reason_code, flag.data) == ("vouchers_after_cancel",
                                             {"kind": "vouchers_after_cancel", "codes": ["EV0000000001"]})


# --- redemption reported by the OMS ----------------------------------------------------------


def test_the_oms_reports_redemptions_and_the_last_one_redeems_the_order(store, oms, sim, receiver):
    order = issued_order(store)
    first, second, third = codes_of(order)

    answers, reports = [], []
    for code in (first, second, third):
        report = sim_redeem(sim, code)
        reports.append(report)
        captured = receiver.next()
        assert captured.json == {"event": "voucher.redeemed", "event_id": report["event_id"], "code": code,
                                 "order_no": order.order_no, "store_ref": "mall-7",
                                 "redeemed_at": report["redeemed_at"]}
        response = post_callback(captured)
        assert response.status_code == 200
        answers.append(response.json())

    assert answers == [
        {"code": "SUCCESS", "order_no": order.order_no, "status": "issued", "codes_left": 2},
        {"code": "SUCCESS", "order_no": order.order_no, "status": "issued", "codes_left": 1},
        {"code": "SUCCESS", "order_no": order.order_no, "status": "redeemed", "codes_left": 0},
    ]
    assert reread(order).status == "redeemed"
    voucher = VoucherCode.objects.get(code=first)
    assert (voucher.state, voucher.redeemed_by_kind, voucher.redeemed_by_id, voucher.redeemed_store_ref) == (
        "redeemed", "system", "oms", "mall-7")
    assert voucher.redeemed_at == datetime.fromisoformat(reports[0]["redeemed_at"])
    redeem = OrderEvent.objects.get(order=order, action="redeem")
    assert (redeem.from_status, redeem.to_status, redeem.actor_kind, redeem.actor_id) == (
        "issued", "redeemed", "system", "oms")


def test_a_replayed_oms_report_answers_the_same_and_changes_nothing(store, oms, sim, receiver):
    order = issued_order(store)
    code = codes_of(order)[2]
    sim_fault(sim, mode="duplicate", path_prefix=CALLBACK_PATH)
    sim_redeem(sim, code)
    delivery, replay = receiver.next(), receiver.next()
    first = post_callback(delivery)
    before = VoucherCode.objects.values().get(code=code)

    again = post_callback(replay)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json() == {"code": "SUCCESS", "order_no": order.order_no, "status": "issued",
                                            "codes_left": 2}
    assert VoucherCode.objects.values().get(code=code) == before


def test_a_callback_with_a_bad_signature_is_401_and_changes_nothing(store, oms, sim, receiver):
    order = issued_order(store)
    code = codes_of(order)[0]
    body = json.dumps({"event": "voucher.redeemed", "event_id": "e1", "code": code, "order_no": order.order_no,
                       "store_ref": "x", "redeemed_at": "2026-12-01T12:00:00+08:00"}).encode()

    forged = post_callback(body=body, headers=sign(body, secret="guessed"))
    stale = post_callback(body=body, headers=sign(body, timestamp=str(int(time.time()) - 301)))

    assert (forged.status_code, forged.json()["error"]["code"]) == (401, "bad_signature")
    assert forged.json()["error"]["message"] == "The callback signature is not valid."
    assert (stale.status_code, stale.json()["error"]["code"]) == (400, "stale_timestamp")
    assert VoucherCode.objects.get(code=code).state == "issued"


def test_the_simulators_bad_signature_fault_is_refused_and_its_retry_accepted(store, oms, sim, receiver):
    client = oms_client()

    def verify(captured) -> int:  # what our endpoint does first, without the database
        try:
            client.callback_verify(headers=captured.headers, body=captured.body, now=timezone.now())
        except Exception:  # noqa: BLE001
            return 401
        return 200

    order = issued_order(store)
    code = codes_of(order)[0]
    receiver.responder = verify
    sim_fault(sim, mode="bad_signature", path_prefix=CALLBACK_PATH)
    sim_redeem(sim, code)
    bad, good = receiver.next(), receiver.next()

    assert post_callback(bad).status_code == 401
    assert post_callback(good).status_code == 200
    assert VoucherCode.objects.get(code=code).state == "redeemed"


def test_a_code_the_oms_reported_redeemed_is_409_at_the_pos(store, oms, sim, receiver):
    order = issued_order(store)
    code = codes_of(order)[0]
    sim_redeem(sim, code)
    post_callback(receiver.next())

    response = token_client(pos_terminal(store=store)[1]).post("/api/pos/v1/vouchers/redeem", {"code": code},
                                                              format="json")

    assert response.status_code == 409
    detail = response.json()["error"]["detail"]
    assert (response.json()["error"]["code"], detail["status"], detail["redeemed_by"]) == (
        "voucher_already_redeemed", "issued", "system")


def test_a_report_for_a_code_of_another_order_is_404(store, oms, sim):
    order = issued_order(store)
    body = json.dumps({"event": "voucher.redeemed", "event_id": "e1", "code": codes_of(order)[0],
                       "order_no": "261201999990001", "redeemed_at": "2026-12-01T12:00:00+08:00"}).encode()

    response = post_callback(body=body, headers=sign(body))

    assert (response.status_code, response.json()["error"]["code"]) == (404, "voucher_not_found")


def test_a_voided_code_used_at_an_oms_shop_is_acknowledged_and_flagged_once(store, oms, sim):
    order = issued_order(store)
    walk(order, "refund")
    code = codes_of(order)[0]
    body = json.dumps({"event": "voucher.redeemed", "event_id": "e9", "code": code, "order_no": order.order_no,
                       "store_ref": "mall-7", "redeemed_at": "2026-12-01T12:00:00+08:00"}).encode()

    other = codes_of(order)[1]
    other_body = body.replace(code.encode(), other.encode()).replace(b'"e9"', b'"e10"')

    first = post_callback(body=body, headers=sign(body))
    second = post_callback(body=other_body, headers=sign(other_body, nonce="n0nce3"))
    again = post_callback(body=body, headers=sign(body, nonce="n0nce2"))

    assert (first.status_code, second.status_code, again.status_code) == (200, 200, 200)
    assert first.json() == {"code": "SUCCESS", "order_no": order.order_no, "status": "refunded", "codes_left": 0}
    flagged = reread(order)
    assert (flagged.needs_attention, flagged.status) == (True, "refunded")
    flags = OrderEvent.objects.filter(order=order, action="flag", data__kind="voucher_redeemed_after_void")
    assert [event.data["code"] for event in flags.order_by("id")] == [code, other]
    assert VoucherCode.objects.get(code=code).state == "void"


# --- redemption at the POS ---------------------------------------------------------------------


def test_pos_redeems_codes_issued_by_the_oms_twice_is_409_another_store_is_404(store, oms, sim):
    order = issued_order(store)
    first, second, third = codes_of(order)
    terminal, token = pos_terminal(store=store, role="cashier", name="Counter")
    pos = token_client(token)
    neighbour = token_client(pos_terminal(store=StoreFactory(brand=store.brand), name="Next door")[1])

    redeemed = pos.post("/api/pos/v1/vouchers/redeem", {"code": first}, format="json")
    twice = pos.post("/api/pos/v1/vouchers/redeem", {"code": first}, format="json")
    elsewhere = neighbour.post("/api/pos/v1/vouchers/redeem", {"code": second}, format="json")

    assert redeemed.status_code == 200
    body = redeemed.json()
    voucher = VoucherCode.objects.get(code=first)
    assert (body["order_no"], body["status"], body["codes_left"]) == (order.order_no, "issued", 2)
    assert body["voucher"] == {"code": first, "state": "redeemed", "redeemed_at": voucher.redeemed_at.isoformat()}
    assert (voucher.redeemed_by_kind, voucher.redeemed_by_id, voucher.redeemed_by_name) == (
        "pos", str(terminal.pk), "Counter")
    assert twice.status_code == 409
    assert twice.json() == {"error": {
        "code": "voucher_already_redeemed", "message": "This voucher code has already been redeemed.",
        "detail": {"code": first, "order_no": order.order_no, "status": "issued",
                   "redeemed_at": voucher.redeemed_at.isoformat(), "redeemed_by": "pos"}}}
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (404, "voucher_not_found")
    assert VoucherCode.objects.get(code=second).state == "issued"

    pos.post("/api/pos/v1/vouchers/redeem", {"code": second}, format="json")
    last = pos.post("/api/pos/v1/vouchers/redeem", {"code": third}, format="json")

    assert (last.json()["status"], last.json()["codes_left"]) == ("redeemed", 0)
    assert reread(order).status == "redeemed"
    assert OrderEvent.objects.get(order=order, action="redeem").actor_kind == "pos"


def test_a_refund_voids_the_codes_left_and_they_cannot_be_redeemed(store, oms, sim):
    order = issued_order(store)
    first, second, _third = codes_of(order)
    pos = token_client(pos_terminal(store=store, name="Counter")[1])
    pos.post("/api/pos/v1/vouchers/redeem", {"code": first}, format="json")

    walk(order, "refund")
    response = pos.post("/api/pos/v1/vouchers/redeem", {"code": second}, format="json")

    assert list(VoucherCode.objects.filter(order=order).order_by("line_no", "id").values_list("state", flat=True)) \
        == ["redeemed", "void", "void"]
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "voucher_not_redeemable"
    assert response.json()["error"]["detail"] == {"code": second, "order_no": order.order_no, "status": "refunded",
                                                  "voucher_state": "void"}


# --- the OMS hears about what happens here -----------------------------------------------------


def sim_voucher(sim, code):
    return next(v for v in requests.get(f"{sim.base_url}/_sim/oms/vouchers", timeout=5).json()["vouchers"]
                if v["code"] == code)


def test_a_pos_redemption_is_reported_to_the_oms_so_the_code_cannot_be_used_there(store, oms, sim):
    order = issued_order(store)
    code = codes_of(order)[0]
    pos = token_client(pos_terminal(store=store)[1])

    pos.post("/api/pos/v1/vouchers/redeem", {"code": code}, format="json")

    message = OutboxMessage.objects.get(topic="fulfilment.voucher_redeemed")
    redeemed_at = VoucherCode.objects.get(code=code).redeemed_at
    assert (message.key, message.payload) == (order.order_no, {
        "order_no": order.order_no, "code": code, "store_ref": str(store.pk),
        "redeemed_at": redeemed_at.isoformat()})
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    held = sim_voucher(sim, code)
    assert (held["state"], held["redeemed_via"], held["redeemed_store_ref"], held["redeemed_at"]) == (
        "redeemed", "merchant", str(store.pk), redeemed_at.isoformat())
    at_oms_shop = requests.post(f"{sim.base_url}/_sim/oms/redeem", json={"code": code}, timeout=5)
    assert (at_oms_shop.status_code, at_oms_shop.json()["code"]) == (409, "ALREADY_REDEEMED")


def test_a_code_used_at_an_oms_shop_and_at_our_pos_flags_the_order(store, oms, sim, receiver):
    order = issued_order(store)
    code = codes_of(order)[0]
    sim_redeem(sim, code)  # its report is still on the way
    late_report = receiver.next()
    pos = token_client(pos_terminal(store=store)[1])
    pos.post("/api/pos/v1/vouchers/redeem", {"code": code}, format="json")

    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}
    late = post_callback(late_report)

    assert late.status_code == 200
    order = reread(order)
    assert order.needs_attention is True
    flag = OrderEvent.objects.get(order=order, action="flag")  # once, though both sides noticed
    assert (flag.reason_code, flag.data) == ("voucher_redeemed_twice",
                                             {"kind": "voucher_redeemed_twice", "code": code})


def test_a_redemption_the_oms_reported_is_not_reported_back(store, oms, sim, receiver):
    order = issued_order(store)
    sim_redeem(sim, codes_of(order)[0])

    post_callback(receiver.next())

    assert OutboxMessage.objects.filter(topic="fulfilment.voucher_redeemed").count() == 0


def test_a_refund_voids_the_codes_at_the_oms_too(store, oms, sim):
    order = issued_order(store)
    first, second, third = codes_of(order)
    token_client(pos_terminal(store=store)[1]).post("/api/pos/v1/vouchers/redeem", {"code": first}, format="json")

    walk(order, "refund")

    message = OutboxMessage.objects.get(topic="fulfilment.voucher_void")
    assert (message.key, message.payload) == (order.order_no, {"order_no": order.order_no})
    assert outbox_relay(limit=10) == {"delivered": 2, "failed": 0}  # the redemption, then the void
    assert [sim_voucher(sim, code)["state"] for code in (first, second, third)] == ["redeemed", "void", "void"]
    at_oms_shop = requests.post(f"{sim.base_url}/_sim/oms/redeem", json={"code": second}, timeout=5)
    assert (at_oms_shop.status_code, at_oms_shop.json()["code"]) == (409, "VOUCHER_VOID")


# --- the customer sees the codes ----------------------------------------------------------------


def test_the_customer_order_shows_its_voucher_codes_once_issued(store, oms, sim):
    customer = CustomerFactory(brand=store.brand)
    api = client_for(customer)
    order = voucher_order(store, customer_id=customer.pk)
    meal = make_order(store=store, customer_id=customer.pk)
    walk(order, "pay")
    before = api.get(f"/api/v1/orders/{order.order_no}").json()
    outbox_relay(limit=10)
    first = codes_of(order)[0]
    token_client(pos_terminal(store=store)[1]).post("/api/pos/v1/vouchers/redeem", {"code": first}, format="json")

    after = api.get(f"/api/v1/orders/{order.order_no}").json()

    assert (before["status"], before["vouchers"]) == ("paid", [])
    redeemed_at = VoucherCode.objects.get(code=first).redeemed_at.isoformat()
    assert after["status"] == "issued"
    assert after["vouchers"] == [
        {"code": first, "sku": "V50", "state": "redeemed", "redeemed_at": redeemed_at},
        {"code": codes_of(order)[1], "sku": "V50", "state": "issued", "redeemed_at": None},
        {"code": codes_of(order)[2], "sku": "V100", "state": "issued", "redeemed_at": None},
    ]
    assert api.get(f"/api/v1/orders/{meal.order_no}").json()["vouchers"] is None


def oms_actor():
    from orders.fulfilment.oms import oms_actor as actor

    return actor()


# --- end to end: checkout, payment, OMS, redemption, all over real HTTP ------------------------


@pytest.mark.django_db(transaction=True)
def test_end_to_end_a_paid_voucher_order_is_issued_by_the_oms_and_redeemed_there(settings, live_server):
    from tests.factories import SkuFactory, StoreSkuFactory

    store = StoreFactory()
    StoreSkuFactory(store=store, sku=SkuFactory(brand=store.brand, code="V50", price="45.00"))
    customer = CustomerFactory(brand=store.brand)
    api = client_for(customer)
    with running_simulator(wxpay_api_key="e2e-wxpay-key", wxpay_mchid="1900000099", oms_app_key=OMS_KEY,
                           oms_app_secret=OMS_SECRET, notify_backoff=(0.05, 0.1), notify_max_attempts=30,
                           notify_timeout=3.0) as sim:
        settings.PAYMENT_PROVIDERS = {"wxpay": {
            "base_url": sim.base_url, "appid": "wxe2e", "mchid": "1900000099", "api_key": "e2e-wxpay-key",
            "notify_url": f"{live_server.url}/api/v1/payments/notify/wxpay", "timeout": 3.0, "retries": 1}}
        settings.OMS = {"base_url": sim.base_url, "app_key": OMS_KEY, "app_secret": OMS_SECRET,
                        "callback_url": f"{live_server.url}{CALLBACK_PATH}", "timeout": 3.0}
        created = api.post("/api/v1/orders", {"store": store.pk, "order_type": "voucher",
                                              "lines": [{"sku": "V50", "qty": 2}]}, format="json").json()
        order_no = created["order_no"]
        started = api.post(f"/api/v1/orders/{order_no}/pay", {"provider": "wxpay"}, format="json").json()

        requests.post(f"{sim.base_url}/_sim/wxpay/pay", json={"out_trade_no": started["out_trade_no"]}, timeout=5)

        # the notify commits the payment and its issue message; the relay after commit asks the OMS
        assert wait_for(lambda: Order.objects.get(order_no=order_no).status == "issued")
        issued = api.get(f"/api/v1/orders/{order_no}").json()
        codes = [v["code"] for v in issued["vouchers"]]
        assert [(v["sku"], v["state"]) for v in issued["vouchers"]] == [("V50", "issued"), ("V50", "issued")]
        assert sorted(codes) == sorted(v["code"] for v in sim_vouchers(sim, order_no))

        for code in codes:  # redeemed at OMS shops; the OMS calls our callback
            sim_redeem(sim, code)

        assert wait_for(lambda: Order.objects.get(order_no=order_no).status == "redeemed")
    done = api.get(f"/api/v1/orders/{order_no}").json()
    assert [v["state"] for v in done["vouchers"]] == ["redeemed", "redeemed"]
    assert list(OrderEvent.objects.filter(order__order_no=order_no).order_by("id").values_list(
        "action", "actor_kind")) == [("create", "customer"), ("pay", "payment"), ("issue", "system"),
                                     ("redeem", "system")]
    assert StoreFeedEvent.objects.filter(order__order_no=order_no).count() == 0
