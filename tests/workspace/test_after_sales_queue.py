"""The after-sales queue of the workspace: the open requests of the user's stores with their lines
and amounts in words, deciding through the after-sales services (managers only), filters, history."""

from decimal import Decimal

import pytest

from aftersales.models import AfterSalesRequest
from aftersales.services import LineAsk, aftersales_request_create
from core.actors import Actor
from orders.services import LineInput
from tests.factories import CustomerFactory
from tests.order_helpers import make_order, walk

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
QUEUE = "/workspace/after-sales/"


def picked_up(store, **kwargs):
    lines = [LineInput(name="水煮鱼", unit_price=Decimal("38.00"), quantity=1),
             LineInput(name="米饭", unit_price=Decimal("2.50"), quantity=3)]
    customer = CustomerFactory(brand=store.brand)
    return walk(make_order(store=store, paid=True, lines=lines, customer_id=customer.pk, **kwargs),
                "accept", "mark_ready", "pick_up")


def ask(order, *, units_of_second_line=None, reason="鱼是凉的"):
    lines = None
    if units_of_second_line:
        second = order.lines.order_by("line_no")[1]
        lines = [LineAsk(line_id=second.pk, quantity=units_of_second_line)]
    return aftersales_request_create(order_id=order.pk, actor=Actor(kind="customer", id=str(order.customer_id)),
                                     lines=lines, reason_code="quality", reason=reason, customer_id=order.customer_id)


def shown(response) -> list[int]:
    return [r.pk for r in response.context["requests"]]


def test_the_queue_shows_open_requests_of_the_users_stores_in_words(login, manager_a, store_a, store_y):
    mine = ask(picked_up(store_a), units_of_second_line=2)
    ask(picked_up(store_y))  # another brand's

    page = login(manager_a).get(QUEUE)

    assert page.status_code == 200
    assert shown(page) == [mine.pk]
    html = page.content.decode()
    assert "2×</span> 米饭" in html and "¥5.00" in html and "鱼是凉的" in html
    assert 'value="approve"' in html  # a manager decides


def test_a_clerk_sees_the_queue_but_no_decision(login, clerk_a, store_a):
    asked = ask(picked_up(store_a))

    page = login(clerk_a).get(QUEUE)

    assert shown(page) == [asked.pk]
    assert 'value="approve"' not in page.content.decode()
    answer = login(clerk_a).post(f"{QUEUE}{asked.pk}/", {"decision": "approve"}, **HX)
    assert answer.context["error"] == "You may not decide after-sales requests of this store."
    assert AfterSalesRequest.objects.get(pk=asked.pk).status == "requested"


def test_a_manager_approves_and_the_money_goes_back(login, manager_a, store_a):
    asked = ask(picked_up(store_a), units_of_second_line=2)

    answer = login(manager_a).post(f"{QUEUE}{asked.pk}/", {"decision": "approve"}, **HX)

    assert answer.status_code == 200
    assert answer.context["done"] == "Approved: the refund of ¥5.00 is on its way."
    asked.refresh_from_db()
    assert asked.status == "refunded"  # paid outside the provider: the refund completes at once
    assert asked.order.refunded_amount == Decimal("5.00")
    assert shown(answer) == []


def test_rejecting_needs_a_reason(login, manager_a, store_a):
    asked = ask(picked_up(store_a))
    client = login(manager_a)

    without = client.post(f"{QUEUE}{asked.pk}/", {"decision": "reject", "reason": "  "}, **HX)
    with_reason = client.post(f"{QUEUE}{asked.pk}/", {"decision": "reject", "reason": "已超过售后时间"}, **HX)

    assert without.context["error"] == "A reason is required to reject a request."
    assert with_reason.context["done"] == "Rejected."
    asked.refresh_from_db()
    assert (asked.status, asked.decision_reason) == ("rejected", "已超过售后时间")
    history = client.get(QUEUE, {"tab": "decided"})
    assert shown(history) == [asked.pk]
    assert "已超过售后时间" in history.content.decode()


def test_filters_by_store_and_channel(login, admin_x, store_a, store_b):
    in_a = ask(picked_up(store_a))
    in_b = ask(picked_up(store_b))
    client = login(admin_x)

    assert set(shown(client.get(QUEUE))) == {in_a.pk, in_b.pk}
    assert shown(client.get(QUEUE, {"store": store_b.pk})) == [in_b.pk]
    assert shown(client.get(QUEUE, {"channel": "meituan"})) == []
    assert set(shown(client.get(QUEUE, {"channel": "miniapp"}))) == {in_a.pk, in_b.pk}


def test_another_brands_request_cannot_be_decided(login, manager_a, store_y):
    foreign = ask(picked_up(store_y))

    answer = login(manager_a).post(f"{QUEUE}{foreign.pk}/", {"decision": "approve"}, **HX)

    assert answer.status_code == 404
    assert AfterSalesRequest.objects.get(pk=foreign.pk).status == "requested"
