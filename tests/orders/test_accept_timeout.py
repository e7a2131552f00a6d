"""The acceptance time limit (orders.services.acceptance.orders_handle_unaccepted):
own-channel orders are rejected, platform orders flagged; idempotent."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.conf import settings

from core.models import OutboxMessage
from orders.models import Order, OrderAction, OrderEvent, StoreFeedEvent
from orders.services.acceptance import UnacceptedResult, orders_handle_unaccepted
from orders.tasks import handle_unaccepted_orders_task
from payments.models import PaymentTransaction
from tests.factories import StoreFactory
from tests.order_helpers import make_order, walk

pytestmark = pytest.mark.django_db

PAID_AT = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)  # 12:00 in Shanghai
LIMITS = {"meituan": 300, "eleme": 300, "miniapp": 600, "app": 600}


@pytest.fixture
def store():
    return StoreFactory()


def own_order(store, *, channel="miniapp", order_type="pickup", paid_at=PAID_AT):
    """Paid through the payment provider: its payment is recorded, as a notify records it."""
    order = make_order(store=store, channel=channel, order_type=order_type, paid=True, placed_at=paid_at)
    PaymentTransaction.objects.create(
        provider="wxpay", out_trade_no=f"T{order.order_no}", order_ref=order.order_no, brand_id=order.brand_id,
        store_id=order.store_id, description="order", amount=order.paid_amount,
        amount_fen=int(order.paid_amount * 100), status="succeeded", transaction_id=f"4200{order.order_no}",
        paid_at=paid_at)
    return order


def platform_order(store, *, channel="meituan", paid_at=PAID_AT, channel_order_id="27900000000001"):
    return make_order(store=store, channel=channel, order_type="delivery", paid=True, placed_at=paid_at,
                      channel_order_id=channel_order_id, payment_provider=channel)


def handle(seconds_after: int, **kwargs) -> UnacceptedResult:
    return orders_handle_unaccepted(now=PAID_AT + timedelta(seconds=seconds_after), timeouts=LIMITS, **kwargs)


def test_the_settings_limit_every_channel_and_the_job_runs_every_minute():
    assert settings.ACCEPT_TIMEOUTS == {"meituan": 300, "eleme": 300, "miniapp": 600, "app": 600}
    assert settings.PERIODIC_JOBS["handle-unaccepted-orders"] == {"task": "orders.handle_unaccepted", "every": 60}
    assert settings.CELERY_BEAT_SCHEDULE["handle-unaccepted-orders"] == {
        "task": "orders.handle_unaccepted", "schedule": 60.0}


def test_an_own_channel_order_one_second_inside_its_limit_is_left_alone(store):
    order = own_order(store)

    assert handle(599) == UnacceptedResult(rejected=0, flagged=0)

    assert Order.objects.get(pk=order.pk).status == "paid"


def test_an_own_channel_order_at_its_limit_is_rejected_by_the_job_with_store_timeout(store):
    order = own_order(store)

    assert handle(600) == UnacceptedResult(rejected=1, flagged=0)

    order = Order.objects.get(pk=order.pk)
    assert order.status == "cancelled"
    assert order.cancel_reason_code == "store_timeout"
    assert order.cancelled_at == PAID_AT + timedelta(seconds=600)
    event = OrderEvent.objects.filter(order=order, action=OrderAction.REJECT).get()
    assert (event.from_status, event.to_status) == ("paid", "cancelled")
    assert (event.actor_kind, event.actor_id, event.reason_code) == ("system", "accept_timeout", "store_timeout")


def test_the_rejected_paid_order_is_refunded_in_full_and_the_pos_hears_of_it(store):
    order = own_order(store, channel="app", order_type="delivery")

    handle(600)

    refund = OrderEvent.objects.filter(order=order, action=OrderAction.PAYMENT_REFUND).get()
    assert order.paid_amount == Decimal("56.00")
    assert refund.data == {"amount": "56.00", "refund_ref": f"cancel-{order.order_no}"}
    assert refund.reason_code == "store_timeout"
    assert list(StoreFeedEvent.objects.filter(order=order).order_by("id").values_list("type", flat=True)) == [
        "order.created", "order.cancelled"]


def test_a_platform_order_past_its_limit_is_flagged_not_rejected_and_nothing_goes_to_the_platform(store):
    inside = platform_order(store, channel="eleme", channel_order_id="3000000000000000002",
                            paid_at=PAID_AT + timedelta(seconds=2))
    order = platform_order(store)

    assert handle(301) == UnacceptedResult(rejected=0, flagged=1)

    order = Order.objects.get(pk=order.pk)
    assert order.status == "paid"
    assert order.needs_attention is True
    assert order.attention_reason == "Not accepted within 300 s; the platform will cancel it"
    flag = OrderEvent.objects.filter(order=order, action=OrderAction.FLAG).get()
    assert (flag.actor_kind, flag.actor_id, flag.reason_code) == ("system", "accept_timeout", "accept_timeout")
    assert flag.data == {"kind": "accept_timeout", "limit_seconds": 300, "paid_at": "2026-03-02T04:00:00+00:00"}
    assert not OrderEvent.objects.filter(order=inside, action=OrderAction.FLAG).exists()
    assert not OutboxMessage.objects.exists()


def test_running_again_changes_nothing(store):
    own_order(store)
    platform_order(store)
    assert handle(600) == UnacceptedResult(rejected=1, flagged=1)
    events = OrderEvent.objects.count()

    assert handle(600) == UnacceptedResult(rejected=0, flagged=0)
    assert handle(6000) == UnacceptedResult(rejected=0, flagged=0)

    assert OrderEvent.objects.count() == events


def test_accepted_unpaid_and_voucher_orders_and_unlisted_channels_are_not_touched(store):
    accepted = walk(own_order(store), "accept")
    unpaid = make_order(store=store, placed_at=PAID_AT)
    voucher = make_order(store=store, order_type="voucher", paid=True, placed_at=PAID_AT)
    pos = make_order(store=store, channel="pos", order_type="dine_in", paid=True, placed_at=PAID_AT)

    assert handle(86400) == UnacceptedResult(rejected=0, flagged=0)

    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {accepted.pk: "accepted", unpaid.pk: "pending_payment", voucher.pk: "paid", pos.pk: "paid"}


def test_batches_take_every_due_order(store):
    orders = [own_order(store, paid_at=PAID_AT + timedelta(seconds=n)) for n in range(5)]
    flagged = [platform_order(store, channel_order_id=f"2790000000001{n}") for n in range(3)]

    assert handle(700, batch_size=2) == UnacceptedResult(rejected=5, flagged=3)

    assert set(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True)) == {"cancelled"}
    assert Order.objects.filter(pk__in=[o.pk for o in flagged], needs_attention=True).count() == 3


def test_the_task_uses_the_settings_and_reports_counts(store, settings):
    settings.ACCEPT_TIMEOUTS = {"miniapp": 60}
    own_order(store, paid_at=datetime.now(timezone.utc) - timedelta(seconds=61))
    platform_order(store, paid_at=datetime.now(timezone.utc) - timedelta(days=1))  # meituan: no limit now

    assert handle_unaccepted_orders_task() == {"rejected": 1, "flagged": 0}
