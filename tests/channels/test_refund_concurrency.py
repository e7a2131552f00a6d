"""Races on refund applications (PostgreSQL): the same application pushed at once, and
a person answering while the platform reports it."""

import pytest

from channels.adapters.base import PushEvent, PushKind
from accounts.models import StaffRole
from aftersales.models import AfterSalesRequest
from aftersales.services import aftersales_approve, aftersales_reject
from channels.models import StoreBinding
from channels.services import platform_order_ingest, platform_push_handle
from core.actors import Actor
from core.errors import Conflict
from tests.factories import staff_user
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
    assert AfterSalesRequest.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order, reason_code="refund_requested").count() == 1
    assert StoreFeedEvent.objects.filter(order=order, type="order.refund_requested").count() == 1


def test_two_people_answering_at_once_give_exactly_one_answer(shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4)).order
    platform_push_handle(binding=shop["meituan"], event=PushEvent(
        kind=PushKind.REFUND_APPLIED, order_id=order.channel_order_id, reason="少送了", refund_id="R9"))
    request_id = AfterSalesRequest.objects.get().pk
    staff = Actor.staff(staff_user(role=StaffRole.STORE_MANAGER, store=shop["store"]))

    results, errors = _run_together(
        lambda: aftersales_approve(request_id=request_id, actor=staff),
        lambda: aftersales_reject(request_id=request_id, actor=staff, reason="不同意"))

    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], Conflict)
    assert AfterSalesRequest.objects.get().status in ("refunding", "rejected")
    assert OrderEvent.objects.filter(order=order, reason_code__in=["refund_agreed", "refund_rejected"]).count() == 1


def test_an_application_recorded_after_our_read_is_not_flagged_twice(shop, monkeypatch):
    """The interleaving behind the race above, made deterministic: this push read
    "no application yet", then another push recorded it and committed first; this
    one finds the open application when recording and adds no second flag."""
    from channels.services import intake

    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4)).order
    event = PushEvent(kind=PushKind.REFUND_APPLIED, order_id=order.channel_order_id, reason="少送了", refund_id="R9")
    platform_push_handle(binding=shop["meituan"], event=event)  # the push that won
    monkeypatch.setattr(intake, "aftersales_platform_latest", lambda **kwargs: None)  # our stale read

    platform_push_handle(binding=shop["meituan"], event=event)

    assert AfterSalesRequest.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order, reason_code="refund_requested").count() == 1
    assert StoreFeedEvent.objects.filter(order=order, type="order.refund_requested").count() == 1
