"""Closing the after-sales window: confirmed orders become completed, brand by brand."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order, OrderEvent, OrderStatus
from orders.services import orders_complete_after_sales
from tests.factories import BrandFactory, StoreFactory
from tests.order_helpers import make_order, walk


def _picked_up(store, *, days_ago: float):
    order = walk(make_order(store=store, paid=True), "accept", "mark_ready", "pick_up")
    Order.objects.filter(pk=order.pk).update(confirmed_at=timezone.now() - timedelta(days=days_ago))
    return order


@pytest.mark.django_db
def test_each_brand_closes_on_its_own_window_and_a_long_window_never_holds_up_a_short_one():
    short = StoreFactory(brand=BrandFactory(after_sales_days=1))
    long = StoreFactory(brand=BrandFactory(after_sales_days=7))
    # The long-window brand has the oldest confirmed orders, none of them due yet.
    waiting = [_picked_up(long, days_ago=6.5) for _ in range(3)]
    due_long = _picked_up(long, days_ago=8)
    due_short = [_picked_up(short, days_ago=2) for _ in range(2)]
    fresh_short = _picked_up(short, days_ago=0.5)

    assert orders_complete_after_sales(batch_size=1) == 3

    status = dict(Order.objects.values_list("pk", "status"))
    assert [status[o.pk] for o in due_short] == [OrderStatus.COMPLETED] * 2
    assert status[due_long.pk] == OrderStatus.COMPLETED
    assert [status[o.pk] for o in waiting] == [OrderStatus.PICKED_UP] * 3
    assert status[fresh_short.pk] == OrderStatus.PICKED_UP
    events = OrderEvent.objects.filter(action="complete")
    assert sorted(events.values_list("actor_id", flat=True)) == ["after_sales_close"] * 3
    assert orders_complete_after_sales(batch_size=1) == 0
