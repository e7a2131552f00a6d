"""The store feed: what the POS hears, in the same transaction as the change,
delivered until acknowledged; auto-accept; the long poll."""

import threading
import time

import pytest
from django.db import connection, transaction
from django.test import override_settings

from accounts.models import StoreMode
from core.actors import Actor
from orders.models import Order, OrderEvent, OrderFlagKind, StoreFeedEvent
from orders.services import order_contact_update, order_transition
from tests.factories import StoreFactory, pos_terminal
from tests.order_helpers import make_order, walk
from tests.pos.conftest import token_client

EVENTS = "/api/pos/v1/events"
CUSTOMER = Actor(kind="customer", id="c1")


def feed_types(order) -> list[str]:
    return list(StoreFeedEvent.objects.filter(order=order).order_by("id").values_list("type", flat=True))


def test_nothing_for_an_unpaid_order_then_created_when_paid(store):
    order = make_order(store=store)
    assert feed_types(order) == []

    walk(order, "pay")

    assert feed_types(order) == ["order.created"]
    event = StoreFeedEvent.objects.get(order=order)
    assert (event.store_id, event.acked_at, event.acked_by) == (store.pk, None, "")


def test_an_order_created_paid_is_created_at_once(store):
    order = make_order(store=store, channel="meituan", paid=True, channel_order_id="mt-1")

    assert feed_types(order) == ["order.created"]


def test_vouchers_never_reach_the_pos_feed(store):
    order = make_order(store=store, order_type="voucher")

    walk(order, "pay", "issue", "redeem")

    assert feed_types(order) == []


def test_cancel_and_contact_change_of_an_unseen_order_write_nothing(store):
    order = make_order(store=store, order_type="delivery", address={"detail": "A"})

    order_contact_update(order_id=order.pk, actor=CUSTOMER, contact_phone="13900001111")
    order_transition(order_id=order.pk, action="cancel", actor=CUSTOMER)

    assert feed_types(order) == []


def test_follow_up_events_of_a_seen_order(store):
    order = make_order(store=store, order_type="delivery", address={"detail": "A"}, paid=True)

    order_contact_update(order_id=order.pk, actor=CUSTOMER, note="no chili")
    order_contact_update(order_id=order.pk, actor=CUSTOMER, note="no chili")  # no change: no event
    order_transition(order_id=order.pk, action="cancel", actor=CUSTOMER)

    assert feed_types(order) == ["order.created", "order.updated", "order.cancelled"]


def test_reject_is_a_cancellation_and_refund_is_refunded(store):
    rejected = make_order(store=store, paid=True)
    refunded = make_order(store=store, paid=True)

    walk(rejected, "reject")
    walk(refunded, "accept", "mark_ready", "pick_up", "refund")

    assert feed_types(rejected) == ["order.created", "order.cancelled"]
    assert feed_types(refunded) == ["order.created", "order.refund_requested", "aftersales.requested",
                                    "aftersales.decided", "order.refunded", "aftersales.refunded"]


def test_refund_requested_is_recorded_for_a_seen_order_only(store):
    from orders.services.feed import feed_record

    seen = make_order(store=store, paid=True)
    unseen = make_order(store=store)
    with transaction.atomic():
        feed_record(order=seen, action=OrderFlagKind.REFUND_REQUESTED, from_status=seen.status)
        feed_record(order=unseen, action=OrderFlagKind.REFUND_REQUESTED, from_status=unseen.status)

    assert feed_types(seen) == ["order.created", "order.refund_requested"]
    assert feed_types(unseen) == []


def test_the_feed_row_rolls_back_with_the_transition(store):
    order = make_order(store=store)

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            walk(order, "pay")
            raise RuntimeError("the caller fails after the transition")

    assert Order.objects.get(pk=order.pk).status == "pending_payment"
    assert feed_types(order) == []


def test_the_feed_notifies_readers_on_commit_only(store, django_capture_on_commit_callbacks, monkeypatch):
    from orders.services import feed

    notified = []
    monkeypatch.setattr(feed, "feed_notify", lambda *, store_id: notified.append(store_id))
    order = make_order(store=store)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        walk(order, "pay")
    assert notified == []
    for callback in callbacks:
        callback()

    assert notified == [store.pk]


def test_auto_accept_store_accepts_at_once_and_still_tells_the_pos(store):
    store.auto_accept = True
    store.save()
    order = make_order(store=store)

    paid = walk(order, "pay")

    assert paid.status == "accepted"
    assert Order.objects.get(pk=order.pk).status == "accepted"
    assert paid.prep_minutes == 15
    assert feed_types(order) == ["order.created"]
    accept = OrderEvent.objects.get(order=order, action="accept")
    assert (accept.actor_kind, accept.actor_id) == ("system", "auto_accept")


def test_auto_accept_of_a_platform_order_created_paid(store):
    store.auto_accept = True
    store.save()

    order = make_order(store=store, channel="meituan", paid=True, channel_order_id="mt-2", order_type="delivery")

    assert order.status == "accepted"
    assert Order.objects.get(pk=order.pk).status == "accepted"
    assert list(OrderEvent.objects.filter(order=order).values_list("action", flat=True)) == ["create", "accept"]


def test_busy_store_adds_the_extra_minutes_on_auto_accept(store):
    store.auto_accept, store.mode = True, StoreMode.BUSY
    store.save()
    order = make_order(store=store)

    accepted = walk(order, "pay")

    assert accepted.prep_minutes == 25
    assert Order.objects.get(pk=order.pk).prep_minutes == 25


def test_paused_store_does_not_auto_accept(store):
    store.auto_accept, store.mode = True, StoreMode.PAUSED
    store.save()

    order = walk(make_order(store=store), "pay")

    assert order.status == "paid"
    assert feed_types(order) == ["order.created"]


def test_unacknowledged_events_are_delivered_again_acknowledged_ones_not(store, pos):
    first = make_order(store=store, paid=True)
    second = make_order(store=store, paid=True)

    one = pos.get(EVENTS).json()["events"]
    again = pos.get(EVENTS).json()["events"]
    acked = pos.post("/api/pos/v1/events/ack", {"ids": [one[0]["id"]]}, format="json")
    after = pos.get(EVENTS).json()["events"]

    assert [(e["type"], e["order"]["order_no"]) for e in one] == [
        ("order.created", first.order_no), ("order.created", second.order_no)]
    assert again == one
    assert acked.json() == {"acked": 1}
    assert [e["order"]["order_no"] for e in after] == [second.order_no]


def test_events_limit_is_capped_and_respected(store, pos):
    for _ in range(3):
        make_order(store=store, paid=True)

    assert len(pos.get(EVENTS, {"limit": 2}).json()["events"]) == 2
    assert len(pos.get(EVENTS, {"limit": 1000}).json()["events"]) == 3
    assert pos.get(EVENTS, {"limit": 0}).status_code == 400
    assert pos.get(EVENTS, {"wait": "soon"}).status_code == 400


@pytest.mark.parametrize("count", [3, 20])
def test_events_take_a_constant_number_of_queries(store, pos, count, django_assert_num_queries):
    for _ in range(count):
        make_order(store=store, paid=True)

    # terminal (+ last_seen update on the first request), the unacked probe, events with orders, lines
    with django_assert_num_queries(5):
        response = pos.get(EVENTS)

    assert len(response.json()["events"]) == count


def test_an_idle_poll_is_the_terminal_and_one_probe(store, pos, django_assert_num_queries):
    make_order(store=store, paid=True)
    pos.post("/api/pos/v1/events/ack", {"ids": [e["id"] for e in pos.get(EVENTS).json()["events"]]}, format="json")

    with django_assert_num_queries(2):  # the terminal (with its store), the unacked probe
        response = pos.get(EVENTS)

    assert response.json() == {"events": []}


def test_wait_returns_after_the_wait_when_nothing_happens(store, pos):
    started = time.monotonic()

    response = pos.get(EVENTS, {"wait": 1})

    assert response.json() == {"events": []}
    assert time.monotonic() - started >= 1.0  # it waited the whole second (a lower bound, not a budget)


@pytest.fixture
def reader_waits(monkeypatch):
    """Records what each long-poll wait returned (True: woken by a notify) and tells when the
    reader first waits. The database re-check is pushed past the poll's end, so only a
    wake-up can bring an event back within the poll."""
    from orders.services import feed

    monkeypatch.setattr(feed, "RECHECK_SECONDS_LOCAL", 60.0)
    monkeypatch.setattr(feed, "RECHECK_SECONDS_REDIS", 60.0)
    original = feed.FeedWaiter.wait
    waiting, results = threading.Event(), []

    def wait(self, timeout):
        waiting.set()
        woke = original(self, timeout)
        results.append(woke)
        return woke

    monkeypatch.setattr(feed.FeedWaiter, "wait", wait)
    return waiting, results


def _pay_once_waiting(order_id: int, waiting: threading.Event) -> threading.Thread:
    """Pay the order from another thread (its own connection) once the reader waits."""
    def run():
        try:
            waiting.wait()
            order_transition(order_id=order_id, action="pay", actor=Actor(kind="payment", id="wxpay"))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_long_poll_wakes_when_an_order_is_paid_elsewhere(reader_waits):
    waiting, results = reader_waits
    store = StoreFactory()
    _terminal, token = pos_terminal(store=store)
    order = make_order(store=store)
    client = token_client(token)

    thread = _pay_once_waiting(order.pk, waiting)
    response = client.get(EVENTS, {"wait": 20})
    thread.join()

    assert [e["order"]["order_no"] for e in response.json()["events"]] == [order.order_no]
    assert results == [True]  # one wait, ended by the on-commit signal, not by a re-check or the poll's end


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_long_poll_over_redis_pub_sub(reader_waits):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/15", socket_connect_timeout=1).ping()
    except Exception:
        pytest.skip("no Redis at 127.0.0.1:6379")
    from orders.services import feed

    waiting, results = reader_waits
    store = StoreFactory()
    _terminal, token = pos_terminal(store=store)
    order = make_order(store=store)
    client = token_client(token)
    with override_settings(REDIS_URL="redis://127.0.0.1:6379/15"):
        # Only Redis can wake the reader: the local signal is silenced.
        original_notify = feed.local_signal.notify
        feed.local_signal.notify = lambda store_id: None
        try:
            thread = _pay_once_waiting(order.pk, waiting)
            response = client.get(EVENTS, {"wait": 20})
            thread.join()
        finally:
            feed.local_signal.notify = original_notify

    assert [e["order"]["order_no"] for e in response.json()["events"]] == [order.order_no]
    assert results == [True]  # the Redis message woke it, not a re-check or the poll's end


@pytest.fixture
def feed_stopping():
    """feed_waits_stop() is for a process that is going away: undo it after the test."""
    from orders.services import feed

    yield feed.feed_waits_stop
    feed._stopping.clear()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_long_poll_answers_at_once_when_the_web_process_shuts_down(reader_waits, feed_stopping):
    waiting, results = reader_waits
    store = StoreFactory()
    _terminal, token = pos_terminal(store=store)
    client = token_client(token)
    answers = []
    poll = threading.Thread(target=lambda: answers.append(client.get(EVENTS, {"wait": 20})))
    poll.start()
    waiting.wait()

    feed_stopping()  # what config.gunicorn does on a worker's SIGTERM
    poll.join()
    later = client.get(EVENTS, {"wait": 20})

    assert [(a.status_code, a.json()) for a in answers] == [(200, {"events": []})]
    assert results == [False]  # the one wait ended without a notify, and no second wait began
    assert (later.status_code, later.json(), results) == (200, {"events": []}, [False])  # no wait at all


def test_the_gunicorn_hook_ends_the_long_polls_on_a_workers_sigterm(feed_stopping):
    import signal

    from config.gunicorn import post_worker_init
    from orders.services import feed

    class Worker:
        alive = True

        def handle_exit(self, signum, frame):
            self.alive = False

    worker = Worker()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        post_worker_init(worker)
        signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert worker.alive is False  # gunicorn's own handling still runs
    assert feed._stopping.wait(10)  # set from a thread, not in the handler
