"""The worked examples of docs/after-sales.md ("Amounts"), each on a real order through
aftersales.services: the numbers asserted here are the numbers in the doc.

The order of every example (an own-channel delivery order, delivered, paid outside the
payment provider so an approved refund completes at once):

- 水煮鱼 38.00 x 1, box fee 1.00;
- 可乐 12.00 x 2, box fee 2.00;
- full reduction 满60减10 (10.00) apportioned to the lines by promotions.apportion:
  水煮鱼 6.13, 可乐 3.87, so the line totals are 31.87 and 20.13;
- delivery fee 5.00.

Paid: 62.00 - 10.00 + 3.00 (boxes) + 5.00 (delivery) = 60.00. Each line's paid amount
(line total + its box fee): 水煮鱼 32.87, 可乐 22.13; the other 5.00 is the delivery fee.
"""

from decimal import Decimal

import pytest

from accounts.models import StaffRole
from aftersales.models import AfterSalesStatus
from aftersales.services import LineAsk, aftersales_approve, aftersales_request_create
from core.actors import Actor
from core.errors import Conflict
from orders.models import Order, OrderStatus
from orders.services import DiscountInput, LineInput
from promotions.apportion import apportion
from tests.factories import CustomerFactory, StoreFactory, staff_user
from tests.order_helpers import make_order, walk

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def store():
    return StoreFactory()


@pytest.fixture
def customer(store):
    return CustomerFactory(brand=store.brand)


def the_order(store, customer) -> Order:
    """The order of the examples, delivered."""
    fish, cola = D("38.00"), D("24.00")
    fish_share, cola_share = apportion(amount=D("10.00"), weights=[fish, cola])
    assert (fish_share, cola_share) == (D("6.13"), D("3.87"))
    order = make_order(
        store=store, order_type="delivery", paid=True, customer_id=customer.pk, delivery_fee=D("5.00"),
        lines=[LineInput(name="水煮鱼", unit_price=D("38.00"), quantity=1, discount=fish_share,
                         packaging_fee=D("1.00")),
               LineInput(name="可乐", unit_price=D("12.00"), quantity=2, discount=cola_share,
                         packaging_fee=D("2.00"))],
        discounts=[DiscountInput(kind="full_reduction", name="满60减10", amount=D("10.00"),
                                 merchant_part=D("10.00"))])
    order = walk(order, "accept", "mark_ready", "dispatch", "deliver")
    assert (order.status, order.paid_amount) == (OrderStatus.DELIVERED, D("60.00"))
    assert [(line.name, line.line_total, line.packaging_fee) for line in order.lines.order_by("line_no")] == [
        ("水煮鱼", D("31.87"), D("1.00")), ("可乐", D("20.13"), D("2.00"))]
    return order


def ask(order, customer, *lines: tuple[str, int]):
    """The customer asks back ``(line name, units)``..., or the whole order (no lines)."""
    by_name = {line.name: line.pk for line in order.lines.all()}
    return aftersales_request_create(
        order_id=order.pk, actor=Actor(kind="customer", id=str(customer.pk), name=customer.name),
        customer_id=customer.pk, reason_code="quality", reason="examples",
        lines=[LineAsk(line_id=by_name[name], quantity=units) for name, units in lines] or None)


def approve(request):
    manager = staff_user(role=StaffRole.STORE_MANAGER, store=request.store)
    return aftersales_approve(request_id=request.pk, actor=Actor.staff(manager))


def order_now(order) -> tuple:
    order = Order.objects.get(pk=order.pk)
    return order.status, order.refunded_amount, order.refund_state


def test_example_1_a_line_refund_after_a_full_reduction(store, customer):
    # given
    order = the_order(store, customer)
    # when: both 可乐 back
    request = ask(order, customer, ("可乐", 2))
    approve(request)
    # then: its line total after its 3.87 share of the reduction, plus its box fee; no delivery fee
    request.refresh_from_db()
    assert (request.amount, request.fees_included, request.status) == (D("22.13"), False, AfterSalesStatus.REFUNDED)
    assert order_now(order) == (OrderStatus.DELIVERED, D("22.13"), "partial")


def test_example_2_two_partial_refunds_of_one_line_add_up_to_its_paid_amount(store, customer):
    # given
    order = the_order(store, customer)
    # when: one 可乐, then the other
    first = ask(order, customer, ("可乐", 1))
    approve(first)
    second = ask(order, customer, ("可乐", 1))
    approve(second)
    # then: round(22.13 x 1/2) = 11.07 (half up), then round(22.13 x 2/2) - 11.07 = 11.06
    assert (first.amount, second.amount) == (D("11.07"), D("11.06"))
    assert first.amount + second.amount == D("22.13")
    assert order_now(order) == (OrderStatus.DELIVERED, D("22.13"), "partial")
    with pytest.raises(Conflict) as more:  # nothing of the line is left
        ask(order, customer, ("可乐", 1))
    assert more.value.code == "quantity_exceeds_refundable"


def test_example_3_a_whole_refund_after_a_partial_one_gives_the_rest_with_the_delivery_fee(store, customer):
    # given: 可乐 refunded (22.13)
    order = the_order(store, customer)
    approve(ask(order, customer, ("可乐", 2)))
    # when: the whole order
    whole = ask(order, customer)
    approve(whole)
    # then: 60.00 - 22.13 = 37.87 = 水煮鱼 31.87 + its box 1.00 + delivery 5.00
    whole.refresh_from_db()
    assert (whole.scope, whole.amount, whole.fees_included, whole.status) == (
        "order", D("37.87"), True, AfterSalesStatus.REFUNDED)
    assert [(line.order_line.name, line.quantity, line.amount) for line in whole.lines.all()] == [
        ("水煮鱼", 1, D("32.87"))]
    assert order_now(order) == (OrderStatus.REFUNDED, D("60.00"), "full")


def test_example_4_the_brand_gives_the_fees_back_with_the_last_lines(store, customer):
    # given: the brand's setting on; 可乐 refunded (22.13, 水煮鱼 still there: no fees)
    store.brand.after_sales_fees_with_last_lines = True
    store.brand.save(update_fields=["after_sales_fees_with_last_lines"])
    order = the_order(store, customer)
    cola = ask(order, customer, ("可乐", 2))
    approve(cola)
    # when: 水煮鱼, the last line
    fish = ask(order, customer, ("水煮鱼", 1))
    approve(fish)
    # then: 32.87 + the delivery fee 5.00 = 37.87, and the order is refunded
    fish.refresh_from_db()
    assert (cola.amount, cola.fees_included) == (D("22.13"), False)
    assert (fish.scope, fish.amount, fish.fees_included) == ("lines", D("37.87"), True)
    assert order_now(order) == (OrderStatus.REFUNDED, D("60.00"), "full")


def test_example_4_without_the_setting_the_last_line_leaves_the_delivery_fee_for_a_whole_refund(store, customer):
    # given: the setting off (the default); 可乐 refunded
    order = the_order(store, customer)
    approve(ask(order, customer, ("可乐", 2)))
    # when: 水煮鱼, the last line, then the whole order for what is left
    fish = ask(order, customer, ("水煮鱼", 1))
    approve(fish)
    after_lines = order_now(order)
    rest = ask(order, customer)
    approve(rest)
    # then: 32.87 without fees, the order keeps its status; the whole refund gives the 5.00
    assert (fish.amount, fish.fees_included) == (D("32.87"), False)
    assert after_lines == (OrderStatus.DELIVERED, D("55.00"), "partial")
    assert (rest.amount, list(rest.lines.all())) == (D("5.00"), [])
    assert order_now(order) == (OrderStatus.REFUNDED, D("60.00"), "full")
