"""The after-sales window job never completes an order with an open refund
application: the application (recorded by the channels layer, which flags the order)
holds the order confirmed (``Order.after_sales_open``) until it is answered; then the
next run completes it, or the refund closes it. Applications go through the real
channels services, answers through the after-sales services."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import StaffRole
from channels.adapters.base import ParsedRefund, PushEvent, PushKind
from aftersales.models import AfterSalesRequest
from aftersales.services import aftersales_approve, aftersales_reject
from channels.services import platform_order_ingest, platform_push_handle
from core.actors import Actor
from inventory.services import stock_set
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import core, order_transition, orders_complete_after_sales
from payments.models import PaymentRefund
from tests.channels.samples import MEITUAN_SHOP, meituan_order
from tests.factories import BrandFactory, SkuFactory, StoreBindingFactory, StoreFactory, staff_user

pytestmark = pytest.mark.django_db

POS = Actor(kind="pos", id="T1")


@pytest.fixture
def shop():
    store = StoreFactory(brand=BrandFactory(after_sales_days=1))
    chicken = SkuFactory(brand=store.brand, code="HC001", price="28.00")
    stock_set(store_id=store.pk, sku_id=chicken.pk, on_hand=10)
    binding = StoreBindingFactory(store=store, platform="meituan", shop_code=MEITUAN_SHOP, app_id="6001",
                                  secret="mt-secret")
    return {"store": store, "meituan": binding, "manager": Actor.staff(staff_user(role=StaffRole.STORE_MANAGER,
                                                                                      store=store))}


def delivered_past_window(shop, *, order_id=27900000000001) -> Order:
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(order_id=order_id,
                                                                                  wm_order_id_view=str(order_id))).order
    for action in ("accept", "mark_ready", "dispatch", "deliver"):
        order_transition(order_id=order.pk, action=action, actor=POS)
    Order.objects.filter(pk=order.pk).update(confirmed_at=timezone.now() - timedelta(days=2))
    return Order.objects.get(pk=order.pk)


def apply(shop, order, *, refund_id="R1", refund=None, kind=PushKind.REFUND_APPLIED) -> None:
    platform_push_handle(binding=shop["meituan"], event=PushEvent(
        kind=kind, order_id=order.channel_order_id, reason="少送了一份", refund_id=refund_id, refund=refund))


def status(order) -> str:
    return Order.objects.get(pk=order.pk).status


def test_an_open_application_past_the_window_holds_the_order_until_it_is_rejected(shop):
    order = delivered_past_window(shop)
    apply(shop, order)

    assert orders_complete_after_sales() == 0
    assert status(order) == OrderStatus.DELIVERED
    assert Order.objects.get(pk=order.pk).after_sales_open is True

    aftersales_reject(request_id=AfterSalesRequest.objects.get().pk, actor=shop["manager"],
                          reason="已按订单出餐")

    assert Order.objects.get(pk=order.pk).after_sales_open is False
    assert orders_complete_after_sales() == 1
    assert status(order) == OrderStatus.COMPLETED


def test_an_application_withdrawn_by_the_customer_lets_the_next_run_complete_the_order(shop):
    order = delivered_past_window(shop)
    apply(shop, order)
    assert orders_complete_after_sales() == 0

    apply(shop, order, kind=PushKind.REFUND_CANCELLED)

    assert orders_complete_after_sales() == 1
    assert status(order) == OrderStatus.COMPLETED


def test_a_partial_refund_agreed_lets_the_order_complete(shop):
    order = delivered_past_window(shop)
    apply(shop, order, refund=ParsedRefund(partial=True, amount=Decimal("28.00")))
    assert orders_complete_after_sales() == 0

    aftersales_approve(request_id=AfterSalesRequest.objects.get().pk, actor=shop["manager"])

    assert orders_complete_after_sales() == 1
    assert status(order) == OrderStatus.COMPLETED


def test_a_whole_refund_agreed_closes_the_order_as_refunded_by_the_platform_not_by_our_provider(shop):
    order = delivered_past_window(shop)
    apply(shop, order)

    aftersales_approve(request_id=AfterSalesRequest.objects.get().pk, actor=shop["manager"])

    assert orders_complete_after_sales() == 0
    assert status(order) == OrderStatus.REFUNDED
    assert not OrderEvent.objects.filter(order=order, action="payment_refund").exists()
    assert not PaymentRefund.objects.exists()


def test_a_second_application_after_a_rejected_one_holds_the_order_again(shop):
    order = delivered_past_window(shop)
    apply(shop, order)
    aftersales_reject(request_id=AfterSalesRequest.objects.get().pk, actor=shop["manager"], reason="不同意")

    apply(shop, order, refund_id="R2")

    assert Order.objects.get(pk=order.pk).after_sales_open is True
    assert orders_complete_after_sales() == 0
    assert status(order) == OrderStatus.DELIVERED


def test_only_the_order_with_an_application_waits(shop):
    held = delivered_past_window(shop)
    free = delivered_past_window(shop, order_id=27900000000002)
    apply(shop, held)

    assert orders_complete_after_sales(batch_size=1) == 1
    assert (status(held), status(free)) == (OrderStatus.DELIVERED, OrderStatus.COMPLETED)


def test_an_application_recorded_after_the_job_read_the_order_still_holds_it(shop, monkeypatch):
    order = delivered_past_window(shop)
    real_lock = core.order_lock

    def application_arrives_first(**kwargs):
        # The platform's push commits between the job's read and its lock on the order.
        monkeypatch.setattr(core, "order_lock", real_lock)
        apply(shop, order)
        return real_lock(**kwargs)

    monkeypatch.setattr(core, "order_lock", application_arrives_first)

    assert orders_complete_after_sales() == 0
    assert status(order) == OrderStatus.DELIVERED
    assert AfterSalesRequest.objects.get().status == "requested"
