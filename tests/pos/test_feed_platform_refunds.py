"""A platform refund application reaches the POS feed as ``order.refund_requested``,
in the same transaction as the application, and only for an order the POS has seen."""

import pytest

from channels.adapters.base import PushEvent, PushKind
from aftersales.models import AfterSalesRequest
from channels.services import platform_order_ingest, platform_push_handle
from orders.models import StoreFeedEvent
from tests.channels.samples import MEITUAN_SHOP, meituan_order
from tests.factories import StoreBindingFactory

EVENTS = "/api/pos/v1/events"


@pytest.fixture
def binding(store):
    return StoreBindingFactory(store=store, platform="meituan", shop_code=MEITUAN_SHOP, app_id="6001",
                               secret="mt-secret")


def _apply(binding, order, refund_id="R7"):
    return platform_push_handle(binding=binding, event=PushEvent(
        kind=PushKind.REFUND_APPLIED, order_id=order.channel_order_id, reason="少送了", refund_id=refund_id))


def test_the_pos_feed_delivers_a_refund_request_after_the_order(store, binding, pos):
    order = platform_order_ingest(binding=binding, payload=meituan_order(status=4)).order
    first = pos.get(EVENTS).json()["events"]
    pos.post(f"{EVENTS}/ack", {"ids": [e["id"] for e in first]}, format="json")

    _apply(binding, order)
    _apply(binding, order)  # the same application pushed again

    events = pos.get(EVENTS).json()["events"]
    assert [(e["type"], e["order"]["order_no"]) for e in first] == [("order.created", order.order_no)]
    assert [(e["type"], e["order"]["order_no"], e["order"]["channel"]) for e in events] == [
        ("order.refund_requested", order.order_no, "meituan"), ("aftersales.requested", order.order_no, "meituan")]
    assert set(events[0]) >= {"id", "type", "created_at", "order"}
    acked = pos.post(f"{EVENTS}/ack", {"ids": [e["id"] for e in events]}, format="json").json()
    assert acked == {"acked": 2}
    assert pos.get(EVENTS).json()["events"] == []


def test_the_feed_event_and_the_application_commit_together(store, binding, monkeypatch):
    order = platform_order_ingest(binding=binding, payload=meituan_order(status=4)).order

    def broken_flag(**kwargs):
        raise RuntimeError("the flag could not be written")

    monkeypatch.setattr("aftersales.services.order_refund_requested_flag", broken_flag)
    with pytest.raises(RuntimeError):
        _apply(binding, order)

    assert AfterSalesRequest.objects.count() == 0
    assert list(StoreFeedEvent.objects.filter(order=order).values_list("type", flat=True)) == ["order.created"]


def test_no_refund_requested_event_for_an_order_the_pos_never_saw(store, binding):
    order = platform_order_ingest(binding=binding, payload=meituan_order(status=4)).order
    StoreFeedEvent.objects.filter(order=order).delete()  # as if the order predates the feed

    _apply(binding, order)

    assert AfterSalesRequest.objects.filter(order=order).count() == 1
    assert StoreFeedEvent.objects.filter(order=order).count() == 0
