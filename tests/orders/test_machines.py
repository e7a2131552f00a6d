from decimal import Decimal

import pytest
from django_fsm import TransitionNotAllowed as FsmTransitionNotAllowed

from core.actors import Actor
from core.errors import TransitionNotAllowed
from orders.models import Order, OrderEvent, OrderStatus, OrderType
from orders.models.machines import machine_graph, machine_states
from orders.services import order_transition
from tests.factories import StoreFactory
from tests.order_helpers import make_order, walk

pytestmark = pytest.mark.django_db

FORWARD = {
    OrderType.DELIVERY: ["pay", "accept", "mark_ready", "dispatch", "deliver", "complete"],
    OrderType.PICKUP: ["pay", "accept", "mark_ready", "pick_up", "complete"],
    OrderType.DINE_IN: ["pay", "accept", "mark_ready", "serve", "complete"],
    OrderType.VOUCHER: ["pay", "issue", "redeem", "complete"],
}
FINAL_CONFIRMED = {
    OrderType.DELIVERY: OrderStatus.DELIVERED,
    OrderType.PICKUP: OrderStatus.PICKED_UP,
    OrderType.DINE_IN: OrderStatus.SERVED,
    OrderType.VOUCHER: OrderStatus.REDEEMED,
}


def test_each_type_has_its_own_graph():
    assert machine_states(OrderType.VOUCHER) == [
        "pending_payment", "paid", "issued", "redeemed", "completed", "cancelled", "refunded"]
    assert machine_states(OrderType.DELIVERY) == [
        "pending_payment", "paid", "accepted", "ready", "dispatched", "delivered", "completed", "cancelled",
        "refunded"]
    assert ("ready", "pick_up", "picked_up") in machine_graph(OrderType.PICKUP)
    assert ("ready", "pick_up", "picked_up") not in machine_graph(OrderType.DELIVERY)
    assert ("ready", "serve", "served") in machine_graph(OrderType.DINE_IN)
    assert all(action != "accept" for _, action, _ in machine_graph(OrderType.VOUCHER))


@pytest.mark.parametrize("order_type", list(FORWARD))
def test_forward_flow_walks_to_completed_and_records_every_step(order_type):
    store = StoreFactory()
    order = make_order(store=store, order_type=order_type)
    actions = FORWARD[order_type]

    order = walk(order, *actions[:-1])
    assert order.status == FINAL_CONFIRMED[order_type]
    order = walk(order, actions[-1])

    assert Order.objects.get(pk=order.pk).status == OrderStatus.COMPLETED
    events = list(OrderEvent.objects.filter(order=order).values_list("action", "from_status", "to_status"))
    assert events[0] == ("create", "", "pending_payment")
    assert [e[0] for e in events[1:]] == actions
    assert events[-1][2] == "completed"


def test_status_cannot_be_assigned_directly():
    order = make_order(store=StoreFactory())
    with pytest.raises(AttributeError):
        order.status = OrderStatus.PAID


def test_illegal_transition_raises_domain_error_with_current_status_and_changes_nothing():
    order = make_order(store=StoreFactory(), order_type=OrderType.PICKUP)

    with pytest.raises(TransitionNotAllowed) as caught:
        order_transition(order_id=order.pk, action="pick_up", actor=Actor(kind="pos"))

    assert caught.value.code == "transition_not_allowed"
    assert caught.value.status_code == 409
    assert caught.value.detail["status"] == "pending_payment"
    assert caught.value.detail["allowed_actions"] == []
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert OrderEvent.objects.filter(order=order).count() == 1


def test_action_of_another_type_is_not_allowed():
    order = make_order(store=StoreFactory(), order_type=OrderType.VOUCHER, paid=True)
    with pytest.raises(TransitionNotAllowed):
        order_transition(order_id=order.pk, action="accept", actor=Actor(kind="staff"))
    with pytest.raises(TransitionNotAllowed):
        order_transition(order_id=order.pk, action="delete", actor=Actor(kind="staff"))


def test_actor_kind_must_be_allowed_for_the_transition():
    order = make_order(store=StoreFactory(), order_type=OrderType.PICKUP)
    # A customer cannot mark their own order as paid; only the payment provider can.
    with pytest.raises(TransitionNotAllowed):
        order_transition(order_id=order.pk, action="pay", actor=Actor(kind="customer", id="1"))
    order = order_transition(order_id=order.pk, action="pay", actor=Actor(kind="payment", id="wxpay"))
    assert order.status == OrderStatus.PAID
    assert order.available_actions(actor_kind="pos") == ["accept", "reject"]
    assert order.available_actions(actor_kind="customer") == ["cancel"]


def test_cancel_records_reason_and_actor():
    order = make_order(store=StoreFactory(), order_type=OrderType.DELIVERY, paid=True)
    order = order_transition(order_id=order.pk, action="reject", actor=Actor(kind="pos", id="T1"),
                             reason_code="sold_out", reason="鸡丁卖完了")
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason_code == "sold_out"
    event = OrderEvent.objects.filter(order=order, action="reject").get()
    assert (event.action, event.from_status, event.to_status, event.actor_kind, event.actor_id, event.reason) == (
        "reject", "paid", "cancelled", "pos", "T1", "鸡丁卖完了")


def test_raw_fsm_method_refuses_illegal_move_too():
    order = make_order(store=StoreFactory(), order_type=OrderType.PICKUP).as_machine()
    with pytest.raises(FsmTransitionNotAllowed):
        order.pick_up(now=None)


def test_platform_orders_start_paid_and_amounts_add_up():
    order = make_order(store=StoreFactory(), order_type=OrderType.DELIVERY, channel="meituan", paid=True,
                       channel_order_id="27900001", delivery_fee=Decimal("5.00"))
    assert order.status == OrderStatus.PAID
    assert (order.subtotal, order.delivery_fee, order.total, order.paid_amount) == (
        Decimal("56.00"), Decimal("5.00"), Decimal("61.00"), Decimal("61.00"))


def test_order_numbers_and_day_sequence_per_store_per_day():
    store_a, store_b = StoreFactory(), StoreFactory()
    first = make_order(store=store_a)
    second = make_order(store=store_a)
    other = make_order(store=store_b)
    assert (first.day_seq, second.day_seq, other.day_seq) == (1, 2, 1)
    assert first.order_no != other.order_no
    assert first.order_no == f"{first.business_date:%y%m%d}{store_a.pk:05d}00001"
