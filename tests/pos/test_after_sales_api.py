"""The POS after-sales endpoints (CONTRACTS.md): the store's requests, decided by a
manager terminal; a return's goods restocked or written off with ledger rows; the feed
carries ``aftersales.*`` events with the request beside the order."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aftersales.models import AfterSalesRequest
from aftersales.services import LineAsk, aftersales_request_create
from core.actors import Actor
from inventory.models import Stock, StockMovement
from inventory.services import stock_ledger_mismatches
from orders.services import LineInput
from tests.factories import CustomerFactory
from tests.order_helpers import make_order, walk

pytestmark = pytest.mark.django_db
D = Decimal
BASE = "/api/pos/v1/after-sales"
EVENTS = "/api/pos/v1/events"


def rice_order(store, skus, customer, *, qty=2):
    line = LineInput(name="米饭", sku_id=skus["rice"].pk, sku_code="RICE", unit_price=D("12.00"), quantity=qty)
    return walk(make_order(store=store, paid=True, lines=[line], customer_id=customer.pk),
                "accept", "mark_ready", "pick_up")


def ask(order, customer, *, kind="refund", qty=None):
    lines = [LineAsk(line_id=order.lines.get().pk, quantity=qty)] if qty else None
    return aftersales_request_create(order_id=order.pk, actor=Actor(kind="customer", id=str(customer.pk)),
                                     kind=kind, lines=lines, reason_code="quality", reason="凉了",
                                     customer_id=customer.pk)


@pytest.fixture
def customer(store):
    return CustomerFactory(brand=store.brand, phone="13800005678")


def test_the_list_is_this_stores_only_and_filters_by_status(store, other_store, skus, customer, pos, pos_manager):
    mine = ask(rice_order(store, skus, customer), customer)
    other_customer = CustomerFactory(brand=store.brand, phone="13800009999")
    line = LineInput(name="米饭", unit_price=D("12.00"), quantity=1)
    theirs = walk(make_order(store=other_store, paid=True, lines=[line], customer_id=other_customer.pk),
                  "accept", "mark_ready", "pick_up")
    ask(theirs, other_customer)

    listed = pos.get(BASE).json()
    requested = pos_manager.get(BASE, {"status": "requested"}).json()
    refunded = pos_manager.get(BASE, {"status": "refunded"}).json()

    assert [(r["id"], r["order_no"], r["amount"], r["allowed_actions"]) for r in listed["results"]] == [
        (str(mine.pk), mine.order.order_no, "24.00", [])]  # a cashier may not decide
    assert [(r["id"], r["allowed_actions"]) for r in requested["results"]] == [(str(mine.pk), ["approve", "reject"])]
    assert refunded["results"] == []
    assert pos.get(BASE, {"status": "nonsense"}).status_code == 400


def test_a_manager_approves_a_cashier_may_not_and_another_stores_request_is_404(
        store, other_store, skus, customer, pos, pos_manager):
    request = ask(rice_order(store, skus, customer), customer, qty=1)

    refused = pos.post(f"{BASE}/{request.pk}/approve", {}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "terminal_role_not_allowed")
    assert AfterSalesRequest.objects.get(pk=request.pk).status == "requested"

    approved = pos_manager.post(f"{BASE}/{request.pk}/approve", {}, format="json")
    # Paid outside the payment provider (a test order): nothing to wait for, refunded at once.
    assert (approved.status_code, approved.json()["status"], approved.json()["amount"]) == (200, "refunded", "12.00")
    again = pos_manager.post(f"{BASE}/{request.pk}/approve", {}, format="json")
    assert (again.status_code, again.json()["error"]["detail"]["status"]) == (409, "refunded")
    order = request.order.__class__.objects.get(pk=request.order_id)
    assert (order.status, order.refunded_amount, order.refund_state) == ("picked_up", D("12.00"), "partial")

    from tests.factories import pos_terminal
    from tests.pos.conftest import token_client
    elsewhere = token_client(pos_terminal(store=other_store, role="manager", name="Other")[1])
    assert elsewhere.post(f"{BASE}/{request.pk}/reject", {"reason": "x"}, format="json").status_code == 404


def test_reject_needs_a_reason(store, skus, customer, pos_manager):
    request = ask(rice_order(store, skus, customer), customer)

    blank = pos_manager.post(f"{BASE}/{request.pk}/reject", {"reason": ""}, format="json")
    done = pos_manager.post(f"{BASE}/{request.pk}/reject", {"reason": "已按要求出餐"}, format="json")

    assert blank.status_code == 400
    assert (done.status_code, done.json()["status"], done.json()["decision_reason"]) == (200, "rejected", "已按要求出餐")
    assert done.json()["decided_by"].startswith("pos:")


@pytest.mark.parametrize(("restock", "on_hand", "reason", "delta", "written_off"), [
    (True, 10, "return", 2, 0),
    (False, 8, "write_off", 0, 2),
])
def test_a_returns_goods_are_restocked_or_written_off_with_a_ledger_row(
        store, skus, customer, pos_manager, restock, on_hand, reason, delta, written_off):
    order = rice_order(store, skus, customer)
    assert Stock.objects.get(store=store, sku=skus["rice"]).on_hand == 10  # test orders take no stock
    Stock.objects.filter(store=store, sku=skus["rice"]).update(on_hand=8)  # as if the two were sold
    StockMovement.objects.create(stock=Stock.objects.get(store=store, sku=skus["rice"]), delta=-2,
                                 reason="adjustment", note="sold")
    request = ask(order, customer, kind="return")

    approved = pos_manager.post(f"{BASE}/{request.pk}/approve", {}, format="json").json()
    assert (approved["status"], approved["allowed_actions"]) == ("awaiting_goods", ["goods_received"])
    received = pos_manager.post(f"{BASE}/{request.pk}/goods-received", {"restock": restock}, format="json")

    assert (received.status_code, received.json()["status"], received.json()["restock"]) == (200, "refunded", restock)
    assert Stock.objects.get(store=store, sku=skus["rice"]).on_hand == on_hand
    row = StockMovement.objects.get(reference=f"as-{request.pk}")
    assert (row.reason, row.delta, row.written_off) == (reason, delta, written_off)
    assert stock_ledger_mismatches() == []


def test_the_feed_carries_each_step_with_the_request_and_no_query_per_event(store, skus, customer, pos, pos_manager):
    order = rice_order(store, skus, customer)
    first = ask(order, customer, qty=1)
    pos.post(f"{EVENTS}/ack", {"ids": [e["id"] for e in pos.get(EVENTS).json()["events"]
                                       if e["type"] == "order.created"]}, format="json")
    pos_manager.post(f"{BASE}/{first.pk}/approve", {}, format="json")

    with CaptureQueriesContext(connection) as one:
        events = pos.get(EVENTS).json()["events"]
    assert [(e["type"], (e["after_sales"] or {}).get("id"), (e["after_sales"] or {}).get("status"))
            for e in events] == [
        ("order.refund_requested", None, None), ("aftersales.requested", str(first.pk), "refunded"),
        ("aftersales.decided", str(first.pk), "refunded"), ("aftersales.refunded", str(first.pk), "refunded")]
    assert events[1]["order"]["amounts"]["refunded"] == "12.00" and events[1]["order"]["refund_state"] == "partial"

    for _ in range(3):
        extra = ask(rice_order(store, skus, customer), customer)
        pos_manager.post(f"{BASE}/{extra.pk}/reject", {"reason": "不同意"}, format="json")
    with CaptureQueriesContext(connection) as many:
        assert len(pos.get(EVENTS).json()["events"]) > len(events)
    assert len(many) == len(one)
