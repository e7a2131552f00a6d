"""The live order board (server side): what a store's people see and what their role lets them do,
through the same services as the POS; tenancy; constant queries; the store mode switch."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.store_state import STORE_STATE_TOPIC
from core.models import OutboxMessage, OutboxStatus
from orders.models import Order, OrderStatus
from tests.order_helpers import make_order, walk

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def board(client, store):
    return client.get(f"/workspace/board/?store={store.pk}")


def columns(client, store):
    return client.get(f"/workspace/board/{store.pk}/columns/", **HX)


def cards_in(response, column: str) -> list[str]:
    board_ = response.context["board"]
    return [card.order.order_no for col in board_.columns if col.key == column for card in col.cards]


def test_the_board_shows_the_stores_open_orders_in_their_columns(login, manager_a, store_a, store_b):
    new = make_order(store=store_a, paid=True, customer_note="不要辣")
    preparing = walk(make_order(store=store_a, paid=True), "accept")
    ready = walk(make_order(store=store_a, paid=True), "accept", "mark_ready")
    make_order(store=store_a)  # not paid yet: not the store's yet
    make_order(store=store_b, paid=True)  # another store

    page = board(login(manager_a), store_a)

    assert page.status_code == 200
    assert (cards_in(page, "new"), cards_in(page, "preparing"), cards_in(page, "ready"), cards_in(page, "delivering")) == (
        [new.order_no], [preparing.order_no], [ready.order_no], [])
    html = page.content.decode()
    assert "不要辣" in html and f'data-order="{new.order_no}"' in html
    card = page.context["board"].columns[0].cards[0]
    assert card.actions == ["accept", "reject"]
    assert card.accept_deadline == new.paid_at + timedelta(seconds=600)


def test_a_store_outside_the_users_scope_is_not_found(login, manager_a, store_a, store_y):
    client = login(manager_a)

    assert board(client, store_y).status_code == 404
    assert columns(client, store_y).status_code == 404
    order = make_order(store=store_y, paid=True)
    assert client.post(f"/workspace/board/{store_y.pk}/orders/{order.order_no}/", {"action": "accept"},
                       **HX).status_code == 404
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


def test_accept_with_prep_minutes_moves_the_card(login, manager_a, store_a):
    order = make_order(store=store_a, paid=True)
    client = login(manager_a)

    answer = client.post(f"/workspace/board/{store_a.pk}/orders/{order.order_no}/",
                         {"action": "accept", "prep_minutes": "20"}, **HX)

    assert answer.status_code == 200
    assert (cards_in(answer, "new"), cards_in(answer, "preparing")) == ([], [order.order_no])
    order.refresh_from_db()
    assert (order.status, order.prep_minutes) == ("accepted", 20)
    assert order.events.order_by("-id").first().actor_kind == "staff"


def test_a_clerk_may_not_reject_and_nothing_changes(login, clerk_a, store_a):
    order = make_order(store=store_a, paid=True)

    answer = login(clerk_a).post(f"/workspace/board/{store_a.pk}/orders/{order.order_no}/",
                                 {"action": "reject", "reason_code": "sold_out"}, **HX)

    assert answer.status_code == 200
    assert answer.context["error"] == "Your role may not do this."
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert answer.context["board"].columns[0].cards[0].actions == ["accept"]


def test_a_manager_rejects_with_a_reason(login, manager_a, store_a):
    order = make_order(store=store_a, paid=True)

    login(manager_a).post(f"/workspace/board/{store_a.pk}/orders/{order.order_no}/",
                          {"action": "reject", "reason_code": "sold_out", "reason": "鸡丁卖完了"}, **HX)

    order.refresh_from_db()
    assert (order.status, order.cancel_reason_code, order.cancel_reason) == ("cancelled", "sold_out", "鸡丁卖完了")


def test_an_action_the_order_cannot_take_says_why_and_changes_nothing(login, manager_a, store_a):
    order = make_order(store=store_a, paid=True)

    answer = login(manager_a).post(f"/workspace/board/{store_a.pk}/orders/{order.order_no}/",
                                   {"action": "mark_ready"}, **HX)

    assert answer.status_code == 200
    assert answer.context["error"] == "The order cannot do “mark_ready” in status “paid”."
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


def test_the_columns_cost_the_same_queries_for_1_and_20_orders(login, manager_a, store_a, store_b):
    client = login(manager_a)
    make_order(store=store_a, paid=True)
    columns(client, store_a)  # warm: sessions, content types
    with CaptureQueriesContext(connection) as one:
        columns(client, store_a)
    for _ in range(19):
        make_order(store=store_a, paid=True)
    with CaptureQueriesContext(connection) as twenty:
        answer = columns(client, store_a)

    assert len(cards_in(answer, "new")) == 20
    assert len(twenty) == len(one)


def test_the_mode_switch_reaches_the_platforms_outbox(login, clerk_a, store_a):
    answer = login(clerk_a).post(f"/workspace/board/{store_a.pk}/mode/", {"mode": "busy", "busy_minutes": "25"},
                                 **HX)

    assert answer.status_code == 200
    store_a.refresh_from_db()
    assert (store_a.mode, store_a.busy_extra_minutes) == ("busy", 25)
    message = OutboxMessage.objects.get(topic=STORE_STATE_TOPIC)
    assert (message.payload["mode"], message.payload["busy_minutes"], message.payload["actor_kind"]) == (
        "busy", 25, "staff")
    assert "Busy (+25 min)" in answer.content.decode()


def test_a_failed_platform_call_shows_on_its_card_and_a_manager_puts_it_back_in_line(login, manager_a, store_a):
    order = make_order(store=store_a, paid=True, channel="meituan", order_type="delivery", channel_order_id="MT1")
    dead = OutboxMessage.objects.create(topic="platform.order_action", key=order.order_no, brand_id=store_a.brand_id,
                                        payload={"action": "accept"}, status=OutboxStatus.DEAD, attempts=8,
                                        last_error="PlatformRejected: 802")
    client = login(manager_a)

    shown = columns(client, store_a)
    retried = client.post(f"/workspace/board/{store_a.pk}/failed-calls/{dead.pk}/retry/", **HX)

    assert [(f.message.pk, f.label) for f in shown.context["board"].columns[0].cards[0].failed_calls] == [
        (dead.pk, "Accept")]
    assert "The platform did not take “Accept”." in shown.content.decode()
    assert retried.status_code == 200
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (OutboxStatus.PENDING, 0)


def test_home_lands_store_people_on_the_board_and_hq_on_the_dashboard(login, manager_a, admin_x, admin_y, client):
    assert login(manager_a).get("/").url == "/workspace/"
    assert client.get("/workspace/").url == "/workspace/board/"
    client.logout()
    assert login(admin_x).get("/workspace/").url == "/workspace/dashboard/"
    client.logout()
    assert login(admin_y).get("/workspace/").url == "/admin/"  # a brand with no store yet


def test_an_unchanged_board_answers_its_poll_with_no_content(login, manager_a, store_a):
    order = make_order(store=store_a, paid=True)
    client = login(manager_a)
    version = columns(client, store_a).context["version"]

    unchanged = client.get(f"/workspace/board/{store_a.pk}/columns/", {"v": version}, **HX)
    walk(order, "accept")
    changed = client.get(f"/workspace/board/{store_a.pk}/columns/", {"v": version}, **HX)
    stale = client.get(f"/workspace/board/{store_a.pk}/columns/", {"v": "not-a-version"}, **HX)

    assert (unchanged.status_code, unchanged.content) == (204, b"")
    assert changed.status_code == 200 and cards_in(changed, "preparing") == [order.order_no]
    assert changed.context["version"] != version
    assert stale.status_code == 200
