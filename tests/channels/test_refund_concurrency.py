"""Races on refund applications (PostgreSQL): the same application pushed at once, and
a person answering while the platform reports it."""

import pytest

from channels.adapters.base import PushEvent, PushKind
from channels.models import PlatformRefundRequest, StoreBinding
from channels.services import platform_order_ingest, platform_push_handle
from channels.services.refunds import refund_request_agree, refund_request_reject
from core.actors import Actor
from core.errors import Conflict
from orders.models import OrderEvent, StoreFeedEvent
from tests.channels.samples import meituan_order
from tests.channels.test_concurrency import _run_together

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def test_the_same_application_pushed_three_times_at_once_is_recorded_once(shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4)).order

    def push():
        binding = StoreBinding.objects.select_related("store").get(pk=shop["meituan"].pk)
        return platform_push_handle(binding=binding, event=PushEvent(
            kind=PushKind.REFUND_APPLIED, order_id=order.channel_order_id, reason="少送了", refund_id="R9"))

    _results, errors = _run_together(push, push, push)

    assert errors == []
    assert PlatformRefundRequest.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order, reason_code="refund_requested").count() == 1
    assert StoreFeedEvent.objects.filter(order=order, type="order.refund_requested").count() == 1


def test_two_people_answering_at_once_give_exactly_one_answer(shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4)).order
    platform_push_handle(binding=shop["meituan"], event=PushEvent(
        kind=PushKind.REFUND_APPLIED, order_id=order.channel_order_id, reason="少送了", refund_id="R9"))
    request_id = PlatformRefundRequest.objects.get().pk
    staff = Actor(kind="staff", id="7", name="manager")

    results, errors = _run_together(
        lambda: refund_request_agree(request_id=request_id, actor=staff),
        lambda: refund_request_reject(request_id=request_id, actor=staff, reason="不同意"))

    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], Conflict)
    assert PlatformRefundRequest.objects.get().status in ("agreed", "rejected")
    assert OrderEvent.objects.filter(order=order, reason_code__in=["refund_agreed", "refund_rejected"]).count() == 1


def test_an_application_recorded_after_our_read_is_not_flagged_twice(shop, monkeypatch):
    """The interleaving behind the race above, made deterministic: this push read
    "no application yet", then another push recorded it and committed first; this
    one finds the open application when recording and adds no second flag."""
    from channels.services import intake

    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4)).order
    event = PushEvent(kind=PushKind.REFUND_APPLIED, order_id=order.channel_order_id, reason="少送了", refund_id="R9")
    platform_push_handle(binding=shop["meituan"], event=event)  # the push that won
    monkeypatch.setattr(intake, "refund_request_latest", lambda **kwargs: None)  # our stale read

    platform_push_handle(binding=shop["meituan"], event=event)

    assert PlatformRefundRequest.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order, reason_code="refund_requested").count() == 1
    assert StoreFeedEvent.objects.filter(order=order, type="order.refund_requested").count() == 1
