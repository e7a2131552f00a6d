"""The feed's answer is built by hand (pos.serializers.pos_events_answer): byte for byte what
PosEventOutput renders, for every kind of order and event a POS meets, for both terminal roles."""

from decimal import Decimal

import pytest
from rest_framework.renderers import JSONRenderer

from core.actors import Actor
from orders.models import StoreFeedEvent
from orders.services import LineInput, order_create
from pos.selectors import pos_after_sales_for_events, pos_events_unacked
from pos.serializers import PosEventOutput
from tests.order_helpers import make_order, staff_refund, walk

pytestmark = pytest.mark.django_db


def feed_of_every_kind(store):
    lines = [LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2, sku_code="BX001", spec="大份",
                       options=[{"name": "微辣"}, {"name": "加蛋", "price": "2.00"}]),
             LineInput(name="米饭", unit_price=Decimal("2.50"), quantity=3, discount=Decimal("0.50"))]
    order_create(store=store, channel="meituan", order_type="delivery", lines=lines, actor=Actor.system("t"),
                 channel_order_id="2701", channel_order_no="2701", channel_day_seq=17, contact_name="张三",
                 contact_phone="13800001234", address={"text": "上海市静安区南京西路 1 号", "latitude": "31.2"},
                 customer_note="不要香菜", paid=True, raw_payload={"big": "x" * 1000})
    walk(make_order(store=store, paid=True, customer_note=""), "accept", "mark_ready")
    staff_refund(walk(make_order(store=store, paid=True, lines=lines), "accept", "mark_ready", "pick_up"))
    walk(make_order(store=store, order_type="voucher", paid=True), "issue")


@pytest.mark.parametrize("terminal", ["cashier", "manager"])
def test_the_feed_answer_is_what_the_serializer_renders(store, request, terminal):
    feed_of_every_kind(store)
    terminal_row, token = request.getfixturevalue(terminal)
    from tests.pos.conftest import token_client

    answer = token_client(token).get("/api/pos/v1/events", {"wait": 0, "limit": 100})

    events = pos_events_unacked(store_id=store.pk, limit=100)
    context = {"terminal": terminal_row, "after_sales": pos_after_sales_for_events(events=events)}
    expected = JSONRenderer().render({"events": PosEventOutput(events, many=True, context=context).data})
    assert answer.status_code == 200
    assert len(answer.json()["events"]) == StoreFeedEvent.objects.filter(store=store).count() >= 8
    assert {e["type"] for e in answer.json()["events"]} >= {"order.created", "aftersales.requested",
                                                           "order.refunded"}
    assert any(e["after_sales"] for e in answer.json()["events"])
    assert answer.content == expected
