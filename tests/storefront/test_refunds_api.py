"""The customer's after-sales endpoints (CONTRACTS.md: POST/GET orders/{no}/refunds,
POST .../withdraw): only their own paid orders, within the window, amounts from the
apportioned lines; bad input is a 4xx in the contract's shape and changes nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from aftersales.models import AfterSalesRequest
from orders.models import Order, OrderStatus
from orders.services import DiscountInput, LineInput
from tests.factories import CustomerFactory
from tests.order_helpers import make_order, walk
from tests.orders.conftest import client_for

pytestmark = pytest.mark.django_db
D = Decimal


def picked_up(shop, customer, **kwargs):
    """A pickup order of ``customer``: 2 x rice 12.00 (box 1.00) and 1 x tea 9.50 (box 0.50),
    3.00 off the order apportioned 2.15 / 0.85: paid 33.00."""
    lines = [LineInput(name="米饭", sku_id=shop["rice"].pk, sku_code="RICE", unit_price=D("12.00"), quantity=2,
                       packaging_fee=D("2.00"), discount=D("2.15")),
             LineInput(name="奶茶", sku_id=shop["tea"].pk, sku_code="TEA", unit_price=D("9.50"), quantity=1,
                       packaging_fee=D("0.50"), discount=D("0.85"))]
    discounts = [DiscountInput(kind="full_reduction", name="满30减3", amount=D("3.00"), merchant_part=D("3.00"))]
    order = make_order(store=shop["store"], paid=True, lines=lines, discounts=discounts, customer_id=customer.pk,
                       **kwargs)
    return walk(order, "accept", "mark_ready", "pick_up")


def url(order, suffix=""):
    return f"/api/v1/orders/{order.order_no}/refunds{suffix}"


def test_a_line_refund_gives_back_the_lines_apportioned_share(shop, customer, api):
    order = picked_up(shop, customer)
    rice = order.lines.get(sku_code="RICE")
    assert (rice.line_total, order.paid_amount) == (D("21.85"), D("33.00"))

    answer = api.post(url(order), {"type": "refund", "reason_code": "quality", "reason": "米饭夹生",
                                   "lines": [{"line_id": str(rice.pk), "qty": 1}]},
                      format="json", HTTP_IDEMPOTENCY_KEY="r-1")

    assert answer.status_code == 201, answer.json()
    body = answer.json()
    # (21.85 + 2.00 box) / 2 units = 11.925 -> 11.93 for the first unit
    assert {k: body[k] for k in ("order_no", "kind", "scope", "amount", "status", "requested_by", "reason_code",
                                 "allowed_actions")} == {
        "order_no": order.order_no, "kind": "refund", "scope": "lines", "amount": "11.93", "status": "requested",
        "requested_by": "customer", "reason_code": "quality", "allowed_actions": ["withdraw"]}
    assert body["lines"] == [{"line_id": str(rice.pk), "sku": "RICE", "name": "米饭", "qty": 1, "amount": "11.93"}]
    assert body["deadline"] is not None and body["id"] == str(AfterSalesRequest.objects.get().pk)


def test_the_same_key_replays_the_answer_and_another_body_is_422(shop, customer, api):
    order = picked_up(shop, customer)
    body = {"type": "refund", "reason_code": "late", "reason": "太慢"}

    first = api.post(url(order), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(url(order), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    other = api.post(url(order), {**body, "reason": "其他"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 422)
    assert again.content == first.content
    assert first.json()["amount"] == "33.00" and first.json()["scope"] == "order"
    assert AfterSalesRequest.objects.count() == 1


@pytest.mark.parametrize(("case", "status", "code"), [
    ("another customer's order", 404, "order_not_found"),
    ("an unpaid order", 409, "order_not_refundable"),
    ("a second open request on the line", 409, "after_sales_already_open"),
    ("more units than the line has", 409, "quantity_exceeds_refundable"),
    ("a line of another order", 400, "line_not_in_order"),
    ("after the window", 409, "after_sales_window_closed"),
    ("a price sent", 400, "price_fields_not_accepted"),
    ("an unknown reason code", 400, "invalid_input"),
    ("a return before the goods were handed over", 409, "return_not_applicable"),
])
def test_bad_requests_are_refused_and_change_nothing(shop, customer, api, case, status, code):
    order = picked_up(shop, customer)
    rice = order.lines.get(sku_code="RICE")
    target, body = order, {"type": "refund", "reason_code": "quality", "lines": [{"line_id": rice.pk, "qty": 1}]}
    client = api
    if case == "another customer's order":
        client = client_for(CustomerFactory(brand=shop["store"].brand, phone="13900000000"))
    elif case == "an unpaid order":
        target = make_order(store=shop["store"], customer_id=customer.pk)
        body = {"type": "refund", "reason_code": "quality"}
    elif case == "a second open request on the line":
        assert api.post(url(order), body, format="json").status_code == 201
    elif case == "more units than the line has":
        body["lines"] = [{"line_id": rice.pk, "qty": 3}]
    elif case == "a line of another order":
        other = picked_up(shop, customer)
        body["lines"] = [{"line_id": other.lines.get(sku_code="RICE").pk, "qty": 1}]
    elif case == "after the window":
        Order.objects.filter(pk=order.pk).update(confirmed_at=timezone.now() - timedelta(days=8))
    elif case == "a price sent":
        body["amount"] = "1000.00"
    elif case == "an unknown reason code":
        body["reason_code"] = "because"
    elif case == "a return before the goods were handed over":
        target = walk(make_order(store=shop["store"], paid=True, customer_id=customer.pk), "accept")
        body = {"type": "return", "reason_code": "quality"}
    before = (AfterSalesRequest.objects.count(), Order.objects.get(pk=target.pk).status)

    answer = client.post(url(target), body, format="json")

    assert answer.status_code == status, answer.json()
    assert answer.json()["error"]["code"] == code
    assert (AfterSalesRequest.objects.count(), Order.objects.get(pk=target.pk).status) == before


def test_list_withdraw_and_the_order_shows_its_requests(shop, customer, api):
    order = picked_up(shop, customer)
    tea = order.lines.get(sku_code="TEA")
    created = api.post(url(order), {"type": "refund", "reason_code": "wrong_item",
                                    "lines": [{"line_id": tea.pk, "qty": 1}]}, format="json").json()

    withdrawn = api.post(url(order, f"/{created['id']}/withdraw"), {}, format="json")
    again = api.post(url(order, f"/{created['id']}/withdraw"), {}, format="json")
    listed = api.get(url(order))
    detail = api.get(f"/api/v1/orders/{order.order_no}")

    assert (withdrawn.status_code, withdrawn.json()["status"], withdrawn.json()["allowed_actions"]) == (
        200, "withdrawn", [])
    assert again.status_code == 409
    assert (again.json()["error"]["code"], again.json()["error"]["detail"]["status"]) == (
        "transition_not_allowed", "withdrawn")
    assert [(r["id"], r["status"], r["amount"]) for r in listed.json()] == [(created["id"], "withdrawn", "9.15")]
    order_body = detail.json()
    assert [(r["id"], r["status"], r["allowed_actions"]) for r in order_body["after_sales"]] == [
        (created["id"], "withdrawn", [])]
    asked = api.post(url(order), {"type": "refund", "reason_code": "late"}, format="json").json()
    listed_order = api.get(f"/api/v1/orders/{order.order_no}").json()
    assert [(r["id"], r["allowed_actions"]) for r in listed_order["after_sales"]] == [
        (asked["id"], ["withdraw"]), (created["id"], [])]  # a customer may only withdraw, while requested
    assert (order_body["refund_state"], order_body["amounts"]["refunded"]) == ("none", "0.00")
    # Another customer cannot see or withdraw it.
    stranger = client_for(CustomerFactory(brand=shop["store"].brand, phone="13900000001"))
    assert stranger.get(url(order)).status_code == 404
    assert stranger.post(url(order, f"/{created['id']}/withdraw"), {}, format="json").status_code == 404


def test_the_order_list_reads_requests_without_a_query_per_order(shop, customer, api, django_assert_max_num_queries):
    for _ in range(2):
        order = picked_up(shop, customer)
        api.post(url(order), {"type": "refund", "reason_code": "late"}, format="json")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as two:
        assert api.get("/api/v1/orders").status_code == 200
    for _ in range(3):
        order = picked_up(shop, customer)
        api.post(url(order), {"type": "refund", "reason_code": "late"}, format="json")
    with CaptureQueriesContext(connection) as five:
        listed = api.get("/api/v1/orders").json()

    assert len(five) == len(two)
    assert sorted(len(o["after_sales"]) for o in listed["results"]) == [1] * 5
    assert {o["status"] for o in listed["results"]} == {OrderStatus.PICKED_UP}


def test_creating_an_order_does_not_read_after_sales(shop, api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        created = api.post("/api/v1/orders", {"store": shop["store"].pk, "order_type": "pickup",
                                              "lines": [{"sku": "SOUP", "qty": 1}]},
                           format="json", HTTP_IDEMPOTENCY_KEY="new-1")

    assert created.status_code == 201 and created.json()["after_sales"] == []
    assert [q["sql"] for q in queries.captured_queries if "aftersales_" in q["sql"]] == []
