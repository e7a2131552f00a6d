"""Approving a request runs as many SQL queries for a 20-line order as for a 1-line one
(issue 12, point 10; bench/aftersales.py prints the same counts): nothing in an
approval queries once per line, also when the refunded units' on-order stock comes back."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import StaffRole
from aftersales.models import AfterSalesStatus
from aftersales.services import LineAsk, aftersales_approve, aftersales_request_create
from catalog.models import StockDeductionMode
from core.actors import Actor
from inventory.models import Stock
from inventory.services import stock_set
from orders.models import OrderStatus
from orders.services import order_transition
from orders.services.cart import Cart, CartItem
from orders.services.checkout import order_place
from tests.factories import CustomerFactory, SkuFactory, StoreFactory, StoreSkuFactory, staff_user

pytestmark = pytest.mark.django_db
STOCK = 100


@pytest.fixture
def store():
    return StoreFactory()


@pytest.fixture
def skus(store):
    made = []
    for i in range(20):
        sku = SkuFactory(brand=store.brand, code=f"Q{i:02d}", price="12.00", packaging_fee="1.00",
                         stock_mode=StockDeductionMode.ON_ORDER)
        StoreSkuFactory(store=store, sku=sku)
        stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=STOCK)
        made.append(sku)
    return made


@pytest.fixture
def manager(store):
    return Actor.staff(staff_user(role=StaffRole.STORE_MANAGER, store=store))


@pytest.fixture
def accepted_order(store, skus, manager):
    customer = CustomerFactory(brand=store.brand)

    def make(lines: int):
        """Placed (its on-order stock taken: 2 units of each SKU), paid, accepted: not prepared."""
        items = tuple(CartItem(sku_code=s.code, qty=2) for s in skus[:lines])
        order = order_place(customer=customer, channel="miniapp",
                            cart=Cart(store_id=store.pk, order_type="pickup", items=items))
        order_transition(order_id=order.pk, action="pay", actor=Actor(kind="payment", id="test"))
        return order_transition(order_id=order.pk, action="accept", actor=manager)
    return make


def approval_queries(request_id: int, actor: Actor) -> int:
    with CaptureQueriesContext(connection) as captured:
        aftersales_approve(request_id=request_id, actor=actor)
    return len(captured)


def line_request(order, actor):
    return aftersales_request_create(order_id=order.pk, actor=actor, reason_code="quality",
                                     lines=[LineAsk(line_id=line.pk, quantity=1) for line in order.lines.all()])


def whole_request(order, actor):
    return aftersales_request_create(order_id=order.pk, actor=actor, reason_code="quality")


def on_hand(store, skus) -> list[int]:
    by_sku = dict(Stock.objects.filter(store=store).values_list("sku_id", "on_hand"))
    return [by_sku[sku.pk] for sku in skus]


def test_a_line_refund_approval_runs_the_same_queries_for_1_and_20_lines(store, skus, manager, accepted_order):
    # given: a first approval pays the one-off costs; then a 1-line and a 20-line order
    approval_queries(line_request(accepted_order(1), manager).pk, manager)
    one, twenty = accepted_order(1), accepted_order(20)
    one_request, twenty_request = line_request(one, manager), line_request(twenty, manager)
    before = on_hand(store, skus)
    # when
    counts = {1: approval_queries(one_request.pk, manager), 20: approval_queries(twenty_request.pk, manager)}
    # then
    assert counts[1] == counts[20], counts
    twenty_request.refresh_from_db()
    assert (twenty_request.status, twenty_request.amount) == (AfterSalesStatus.REFUNDED, 20 * 13)
    # one unit of each SKU back on the shelf (the order was not prepared); the 1-line order's Q00 too
    assert [after - was for after, was in zip(on_hand(store, skus), before)] == [2] + [1] * 19


def test_a_whole_refund_approval_runs_the_same_queries_for_1_and_20_lines(store, skus, manager, accepted_order):
    # given
    approval_queries(whole_request(accepted_order(1), manager).pk, manager)
    one, twenty = accepted_order(1), accepted_order(20)
    one_request, twenty_request = whole_request(one, manager), whole_request(twenty, manager)
    before = on_hand(store, skus)
    # when
    counts = {1: approval_queries(one_request.pk, manager), 20: approval_queries(twenty_request.pk, manager)}
    # then
    assert counts[1] == counts[20], counts
    twenty.refresh_from_db()
    assert (twenty.status, twenty.refund_state, twenty.refunded_amount) == (OrderStatus.REFUNDED, "full", 20 * 26)
    assert [after - was for after, was in zip(on_hand(store, skus), before)] == [4] + [2] * 19
