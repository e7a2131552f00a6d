"""Orders in the workspace: search by what a person has at hand, and an order page a person reads."""

from decimal import Decimal

import pytest

from orders.models import Order
from orders.services import LineInput
from tests.order_helpers import make_order, walk

pytestmark = pytest.mark.django_db


def found(response) -> list[str]:
    return [o.order_no for o in response.context["orders"]]


def test_search_by_number_phone_platform_id_and_pickup_code(login, manager_a, store_a, store_y):
    phoned = make_order(store=store_a, paid=True, contact_phone="13812345678")
    platform = make_order(store=store_a, paid=True, channel="meituan", order_type="delivery",
                          channel_order_id="27000000123")
    coded = walk(make_order(store=store_a, paid=True), "accept", "mark_ready")
    Order.objects.filter(pk=coded.pk).update(pickup_code="B07")
    foreign = make_order(store=store_y, paid=True, contact_phone="13812345678")
    client = login(manager_a)

    assert found(client.get("/workspace/orders/", {"q": phoned.order_no})) == [phoned.order_no]
    assert found(client.get("/workspace/orders/", {"q": "5678"})) == [phoned.order_no]
    assert found(client.get("/workspace/orders/", {"q": "27000000123"})) == [platform.order_no]
    assert found(client.get("/workspace/orders/", {"q": "b07"})) == [coded.order_no]
    assert foreign.order_no not in found(client.get("/workspace/orders/"))
    assert found(client.get("/workspace/orders/", {"q": foreign.order_no})) == []
    fragment = client.get("/workspace/orders/", {"q": "5678"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="order-results")
    assert fragment.templates[0].name == "workspace/_order_results.html"


def test_the_order_page_reads_in_words(login, manager_a, store_a):
    lines = [LineInput(name="水煮鱼", unit_price=Decimal("38.00"), quantity=1, spec="大份"),
             LineInput(name="米饭", unit_price=Decimal("2.50"), quantity=2)]
    order = walk(make_order(store=store_a, paid=True, lines=lines, contact_name="王先生", contact_phone="13812345678",
                            order_type="delivery", address={"detail": "上海市徐汇区漕溪北路398号", "name": "王先生"},
                            customer_note="多放香菜"), "accept")

    page = login(manager_a).get(f"/workspace/orders/{order.order_no}/")

    assert page.status_code == 200
    html = page.content.decode()
    for text in ("水煮鱼", "(大份)", "上海市徐汇区漕溪北路398号", "多放香菜", "13812345678", f"¥{order.total}",
                 "Accept", "Print kitchen ticket"):
        assert text in html, text
    assert [e.action for e in page.context["events"]] == ["create", "accept"]


def test_a_clerk_sees_the_phone_masked(login, clerk_a, store_a):
    order = make_order(store=store_a, paid=True, contact_phone="13812345678")

    page = login(clerk_a).get(f"/workspace/orders/{order.order_no}/")

    assert page.context["phone"] == "138****5678"
    assert "13812345678" not in page.content.decode()


def test_another_brands_order_page_is_not_found(login, manager_a, store_y):
    order = make_order(store=store_y, paid=True)

    assert login(manager_a).get(f"/workspace/orders/{order.order_no}/").status_code == 404
