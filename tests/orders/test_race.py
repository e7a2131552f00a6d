"""Racing transitions end with exactly one winner and a consistent order.

Real threads and real row locks, so PostgreSQL only.
"""

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_fsm import ConcurrentTransition

from core.actors import Actor
from core.errors import TransitionNotAllowed
from orders.models import Order, OrderEvent, OrderStatus, OrderType
from orders.services import order_transition
from tests.factories import StoreFactory
from tests.order_helpers import make_order

POS = Actor(kind="pos", id="T1")
CUSTOMER = Actor(kind="customer", id="c1")



def _race(order, moves):
    """Run each (action, actor) in its own thread, released together by a barrier.
    Returns each thread's outcome: "ok", or the exception class."""
    barrier = threading.Barrier(len(moves))
    outcomes: list = [None] * len(moves)

    def worker(index, action, actor):
        try:
            barrier.wait(timeout=10)
            order_transition(order_id=order.pk, action=action, actor=actor)
            outcomes[index] = "ok"
        except Exception as exc:
            outcomes[index] = type(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, action, actor)) for i, (action, actor) in enumerate(moves)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


def _transition_events(order) -> list[str]:
    return list(OrderEvent.objects.filter(order=order).exclude(action__in=["create", "payment_refund"]).values_list("action", flat=True))


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("order_type", [OrderType.PICKUP, OrderType.DELIVERY])
def test_pos_accept_racing_customer_cancel_has_exactly_one_winner(order_type):
    store = StoreFactory()
    winners = set()
    for _ in range(20):
        order = make_order(store=store, order_type=order_type, paid=True)

        outcomes = _race(order, [("accept", POS), ("cancel", CUSTOMER)])

        assert sorted(outcomes, key=str) == sorted(["ok", TransitionNotAllowed], key=str), outcomes
        winner = "accept" if outcomes[0] == "ok" else "cancel"
        winners.add(winner)
        final = Order.objects.get(pk=order.pk)
        assert final.status == {"accept": OrderStatus.ACCEPTED, "cancel": OrderStatus.CANCELLED}[winner]
        assert _transition_events(order) == [winner]
        if winner == "accept":
            assert (final.accepted_at is not None, final.cancelled_at) == (True, None)
        else:
            assert (final.accepted_at, final.cancelled_at is not None) == (None, True)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_identical_accepts_have_exactly_one_winner():
    store = StoreFactory()
    for _ in range(20):
        order = make_order(store=store, order_type=OrderType.PICKUP, paid=True)

        outcomes = _race(order, [("accept", POS), ("accept", Actor(kind="staff", id="7"))])

        assert sorted(outcomes, key=str) == sorted(["ok", TransitionNotAllowed], key=str), outcomes
        assert Order.objects.get(pk=order.pk).status == OrderStatus.ACCEPTED
        assert _transition_events(order) == ["accept"]


@pytest.mark.django_db
def test_customer_cannot_cancel_an_order_the_store_has_accepted():
    """BRIEF: cancel is "before acceptance"; afterwards it is the store's call."""
    order = make_order(store=StoreFactory(), order_type=OrderType.PICKUP, paid=True)
    order_transition(order_id=order.pk, action="accept", actor=POS)

    with pytest.raises(TransitionNotAllowed) as caught:
        order_transition(order_id=order.pk, action="cancel", actor=CUSTOMER)

    assert caught.value.detail["status"] == "accepted"
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ACCEPTED


@pytest.mark.django_db
def test_stale_in_memory_order_cannot_be_saved_over_a_newer_status():
    order = make_order(store=StoreFactory(), order_type=OrderType.PICKUP, paid=True)
    stale = Order.objects.get(pk=order.pk).as_machine()
    order_transition(order_id=order.pk, action="accept", actor=POS)

    stale.cancel(now=timezone.now(), reason_code="x")
    # A failed save marks the enclosing transaction for rollback: keep it in a savepoint.
    with pytest.raises(ConcurrentTransition), transaction.atomic():
        stale.save()

    assert Order.objects.get(pk=order.pk).status == OrderStatus.ACCEPTED
    assert _transition_events(order) == ["accept"]


@pytest.mark.django_db
def test_service_turns_a_concurrent_change_behind_the_lock_into_409(monkeypatch):
    """If someone changed the row without the lock, the service refuses with 409, never 500."""
    order = make_order(store=StoreFactory(), order_type=OrderType.PICKUP, paid=True)

    def stale_lock(*, order_id, store_id=None):
        stale = Order.objects.get(pk=order_id)
        Order.objects.filter(pk=order_id).update(status=OrderStatus.ACCEPTED)  # behind the lock's back
        return stale

    monkeypatch.setitem(order_transition.__globals__, "order_lock", stale_lock)

    with pytest.raises(TransitionNotAllowed) as caught:
        order_transition(order_id=order.pk, action="cancel", actor=CUSTOMER)

    assert caught.value.detail["status"] == "accepted"
    assert _transition_events(order) == []
