"""core.outbox: written with the change, delivered in order per key, retried, dead-lettered."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from core.actors import Actor
from core.models import OutboxMessage, OutboxStatus
from core.outbox import (
    _HANDLERS,
    OutboxPermanentError,
    outbox_backoff_seconds,
    outbox_enqueue,
    outbox_relay,
    outbox_retry,
)
from orders.services import order_transition
from orders.services.sync import ORDER_ACTION_TOPIC
from tests.factories import BrandFactory, StoreFactory, staff_user
from tests.order_helpers import make_order

NOW = datetime(2026, 11, 22, 4, 0, tzinfo=dt_timezone.utc)
TOPIC = "test.topic"


@pytest.fixture
def delivered():
    """A recording handler for TOPIC; set ``fail`` to make it raise."""
    calls = []
    state = {"fail": None}

    def handler(message):
        if state["fail"] is not None:
            raise state["fail"]
        calls.append((message.key, message.payload["n"]))

    _HANDLERS[TOPIC] = handler
    yield calls, state
    _HANDLERS.pop(TOPIC, None)


def _enqueue(key, n, *, created_at=None):
    message = outbox_enqueue(topic=TOPIC, key=key, payload={"n": n})
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=created_at or NOW - timedelta(seconds=1))
    return message


def test_a_platform_transition_writes_its_outbox_row_in_the_same_transaction(db):
    store = StoreFactory()
    order = make_order(store=store, channel="meituan", order_type="delivery", paid=True, channel_order_id="M1")

    order_transition(order_id=order.pk, action="accept", actor=Actor(kind="pos", id="T1"))

    message = OutboxMessage.objects.get()
    assert message.topic == ORDER_ACTION_TOPIC
    assert message.key == order.order_no
    assert message.brand_id == store.brand_id
    assert message.status == OutboxStatus.PENDING
    assert message.payload == {
        "platform": "meituan", "channel_order_id": "M1", "order_no": order.order_no, "store_id": store.pk,
        "order_type": "delivery", "action": "accept", "reason_code": "", "reason": "", "courier_name": "",
        "courier_phone": "", "actor_kind": "pos", "actor_id": "T1",
    }


def test_a_rolled_back_transition_leaves_no_outbox_row(db):
    order = make_order(store=StoreFactory(), channel="meituan", order_type="delivery", paid=True,
                       channel_order_id="M2")

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            order_transition(order_id=order.pk, action="accept", actor=Actor(kind="pos", id="T1"))
            raise RuntimeError("the request failed later")

    assert OutboxMessage.objects.count() == 0
    order.refresh_from_db()
    assert order.status == "paid"


def test_no_outbox_row_for_own_channels_platform_actors_or_unsynced_actions(db):
    store = StoreFactory()
    own = make_order(store=store, channel="miniapp", order_type="pickup", paid=True)
    platform = make_order(store=store, channel="eleme", order_type="delivery", paid=True, channel_order_id="E1")

    order_transition(order_id=own.pk, action="accept", actor=Actor(kind="pos", id="T1"))
    order_transition(order_id=platform.pk, action="accept", actor=Actor.platform("eleme"))

    assert OutboxMessage.objects.count() == 0


def test_reject_carries_the_reason_to_the_outbox(db):
    order = make_order(store=StoreFactory(), channel="eleme", order_type="delivery", paid=True,
                       channel_order_id="E2")

    order_transition(order_id=order.pk, action="reject", actor=Actor(kind="pos", id="T1"), reason_code="sold_out",
                     reason="卖完了")

    payload = OutboxMessage.objects.get().payload
    assert (payload["action"], payload["reason_code"], payload["reason"]) == ("reject", "sold_out", "卖完了")


def test_enqueue_schedules_a_relay_for_its_key_after_commit(db, delivered, django_capture_on_commit_callbacks):
    calls, _state = delivered
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        outbox_enqueue(topic=TOPIC, key="K", payload={"n": 1})

    assert len(callbacks) == 1
    assert calls == [("K", 1)]
    assert OutboxMessage.objects.get().status == OutboxStatus.DELIVERED


def test_relay_delivers_one_key_in_order_and_keys_independently(db, delivered):
    calls, _state = delivered
    for key, n in [("A", 1), ("B", 1), ("A", 2), ("A", 3), ("B", 2)]:
        _enqueue(key, n)

    result = outbox_relay(limit=100, now=NOW)

    assert result == {"delivered": 5, "failed": 0}
    assert [n for key, n in calls if key == "A"] == [1, 2, 3]
    assert [n for key, n in calls if key == "B"] == [1, 2]
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.DELIVERED}


def test_a_failing_message_holds_back_the_later_messages_of_its_key_only(db, delivered):
    calls, state = delivered
    first = _enqueue("A", 1)
    _enqueue("A", 2)
    _enqueue("B", 1)

    def handler(message):
        if message.pk == first.pk:
            raise ConnectionError("platform down")
        calls.append((message.key, message.payload["n"]))

    _HANDLERS[TOPIC] = handler
    result = outbox_relay(limit=100, now=NOW)

    assert result == {"delivered": 1, "failed": 1}
    assert calls == [("B", 1)]
    first.refresh_from_db()
    assert (first.status, first.attempts) == (OutboxStatus.PENDING, 1)
    assert first.last_error == "ConnectionError: platform down"
    assert first.next_attempt_at > NOW
    assert OutboxMessage.objects.get(key="A", payload__n=2).attempts == 0


@override_settings(OUTBOX_BACKOFF_BASE_SECONDS=5, OUTBOX_BACKOFF_MAX_SECONDS=3600, OUTBOX_BACKOFF_JITTER=0.2)
def test_backoff_doubles_adds_jitter_and_is_capped():
    assert outbox_backoff_seconds(attempts=1, rng=lambda: 0.0) == 5.0
    assert outbox_backoff_seconds(attempts=2, rng=lambda: 0.0) == 10.0
    assert outbox_backoff_seconds(attempts=4, rng=lambda: 0.0) == 40.0
    assert outbox_backoff_seconds(attempts=4, rng=lambda: 1.0) == 48.0
    assert outbox_backoff_seconds(attempts=20, rng=lambda: 0.5) == 3960.0


@override_settings(OUTBOX_BACKOFF_BASE_SECONDS=5, OUTBOX_BACKOFF_JITTER=0.2)
def test_a_failed_delivery_is_retried_after_the_backoff(db, delivered):
    calls, state = delivered
    message = _enqueue("A", 1)
    state["fail"] = ConnectionError("down")

    outbox_relay(limit=10, now=NOW, rng=lambda: 0.5)

    message.refresh_from_db()
    assert message.next_attempt_at == NOW + timedelta(seconds=5.5)
    assert outbox_relay(limit=10, now=NOW + timedelta(seconds=5)) == {"delivered": 0, "failed": 0}
    state["fail"] = None
    assert outbox_relay(limit=10, now=NOW + timedelta(seconds=6)) == {"delivered": 1, "failed": 0}
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (OutboxStatus.DELIVERED, 2, "")


@override_settings(OUTBOX_MAX_ATTEMPTS=3)
def test_a_message_is_dead_lettered_after_max_attempts(db, delivered):
    _calls, state = delivered
    message = _enqueue("A", 1)
    state["fail"] = TimeoutError("slow")

    moment = NOW
    for _attempt in range(3):
        outbox_relay(limit=10, now=moment)
        moment += timedelta(days=1)

    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (OutboxStatus.DEAD, 3, "TimeoutError: slow")
    assert outbox_relay(limit=10, now=moment) == {"delivered": 0, "failed": 0}


def test_a_permanent_error_dead_letters_at_once(db, delivered):
    _calls, state = delivered
    message = _enqueue("A", 1)
    state["fail"] = OutboxPermanentError("802 status does not allow the call")

    outbox_relay(limit=10, now=NOW)

    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.DEAD, 1)


def test_a_dead_letter_no_longer_holds_its_key_and_retry_puts_it_back(db, delivered,
                                                                       django_capture_on_commit_callbacks):
    calls, state = delivered
    dead = _enqueue("A", 1)
    _enqueue("A", 2)
    OutboxMessage.objects.filter(pk=dead.pk).update(status=OutboxStatus.DEAD, attempts=8, last_error="x")

    outbox_relay(limit=10, now=NOW)
    assert calls == [("A", 2)]

    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_retry(message_ids=[dead.pk]) == 1

    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (OutboxStatus.DELIVERED, 1)
    assert calls == [("A", 2), ("A", 1)]


def test_retry_ignores_messages_that_are_not_dead(db, delivered):
    pending = _enqueue("A", 1)

    assert outbox_retry(message_ids=[pending.pk]) == 0


def test_a_topic_without_handler_is_retried_not_lost(db):
    message = outbox_enqueue(topic="nobody.listens", key="K", payload={})

    outbox_relay(limit=10, now=message.next_attempt_at)

    message.refresh_from_db()
    assert message.status == OutboxStatus.PENDING
    assert message.last_error == "LookupError: no outbox handler registered for topic 'nobody.listens'"


def test_a_leased_message_is_not_claimed_twice(db, delivered):
    calls, _state = delivered
    message = _enqueue("A", 1)
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=NOW + timedelta(seconds=120), attempts=1)

    assert outbox_relay(limit=10, now=NOW) == {"delivered": 0, "failed": 0}
    assert outbox_relay(limit=10, now=NOW + timedelta(seconds=121)) == {"delivered": 1, "failed": 0}


# --- admin: dead-letter view and Retry action ----------------------------------------------------


def _dead(brand_id):
    return OutboxMessage.objects.create(topic=TOPIC, key=f"k{brand_id}", payload={"n": 1}, brand_id=brand_id,
                                        status=OutboxStatus.DEAD, attempts=8, last_error="boom")


def test_brand_admin_sees_and_retries_only_their_brands_dead_letters(client, db, delivered):
    brand, other = BrandFactory(), BrandFactory()
    mine, theirs = _dead(brand.pk), _dead(other.pk)
    client.force_login(staff_user(role="brand_admin", brand=brand))

    listing = client.get("/admin/core/outboxmessage/?status__exact=dead")
    assert listing.status_code == 200
    assert list(listing.context["cl"].queryset) == [mine]

    answer = client.post("/admin/core/outboxmessage/", {
        "action": "retry_dead_letters", "_selected_action": [mine.pk, theirs.pk],
    })

    assert answer.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.status == OutboxStatus.PENDING and mine.attempts == 0
    assert theirs.status == OutboxStatus.DEAD


def test_store_manager_cannot_open_the_outbox(client, db):
    store = StoreFactory()
    client.force_login(staff_user(role="store_manager", store=store))

    assert client.get("/admin/core/outboxmessage/").status_code == 403


def test_superuser_retries_any_dead_letter(admin_client, db, delivered):
    message = _dead(BrandFactory().pk)

    admin_client.post("/admin/core/outboxmessage/", {"action": "retry_dead_letters",
                                                     "_selected_action": [message.pk]})

    message.refresh_from_db()
    assert message.status == OutboxStatus.PENDING


# --- batch relay: one claim per round, outcomes in one UPDATE ---------------------------------


def test_a_claim_takes_only_the_head_of_each_key_and_leases_it(db, delivered):
    from core.outbox import _claim

    heads = [_enqueue("A", 1), _enqueue("B", 1), _enqueue("C", 1)]
    _enqueue("A", 2)
    _enqueue("A", 3)
    _enqueue("B", 2)

    claimed = _claim(now=NOW, limit=100, key=None)

    assert [m.pk for m in claimed] == [m.pk for m in heads]
    assert all(m.attempts == 1 and m.next_attempt_at == NOW + timedelta(seconds=120) for m in claimed)
    assert [m.payload for m in claimed] == [{"n": 1}] * 3
    stored = {m.pk: (m.attempts, m.next_attempt_at) for m in OutboxMessage.objects.all()}
    assert all(stored[m.pk] == (1, NOW + timedelta(seconds=120)) for m in heads)
    assert _claim(now=NOW, limit=100, key=None) == []  # heads leased, the rest waits behind them


@override_settings(OUTBOX_RELAY_BATCH=2)
def test_small_batches_still_deliver_every_key_in_order(db, delivered):
    calls, _state = delivered
    for n in range(1, 4):
        for key in ("A", "B", "C"):
            _enqueue(key, n)

    assert outbox_relay(limit=100, now=NOW) == {"delivered": 9, "failed": 0}

    for key in ("A", "B", "C"):
        assert [n for k, n in calls if k == key] == [1, 2, 3]


@pytest.mark.postgres_only  # elsewhere the claim is a SELECT ... FOR UPDATE and an UPDATE in a transaction
def test_a_round_costs_a_claim_and_one_update_whatever_its_size(db, delivered, django_assert_num_queries):
    calls, _state = delivered
    for index in range(20):
        _enqueue(f"K{index}", 1)

    with django_assert_num_queries(3):  # claim, mark delivered, the claim that finds nothing more
        assert outbox_relay(limit=100, now=NOW) == {"delivered": 20, "failed": 0}
    assert len(calls) == 20
    assert OutboxMessage.objects.filter(status=OutboxStatus.DELIVERED, delivered_at__isnull=False).count() == 20


def test_a_failing_head_blocks_its_key_but_not_the_other_keys_of_its_round(db, delivered):
    calls, _state = delivered
    failing = _enqueue("F", 1)
    _enqueue("F", 2)
    for key in ("A", "B"):
        _enqueue(key, 1)
        _enqueue(key, 2)

    def handler(message):
        if message.key == "F":
            raise ConnectionError("down")
        calls.append((message.key, message.payload["n"]))

    _HANDLERS[TOPIC] = handler

    assert outbox_relay(limit=100, now=NOW) == {"delivered": 4, "failed": 1}
    assert sorted(calls) == [("A", 1), ("A", 2), ("B", 1), ("B", 2)]
    failing.refresh_from_db()
    assert (failing.status, failing.attempts, failing.last_error) == (OutboxStatus.PENDING, 1, "ConnectionError: down")
    assert OutboxMessage.objects.get(key="F", payload__n=2).attempts == 0


def test_a_failure_is_not_written_over_a_lease_another_relay_took_meanwhile(db, delivered):
    _calls, _state = delivered
    message = _enqueue("A", 1)

    def handler(msg):
        # our lease ran out and a second relay claimed the message (attempt 2) while we waited
        OutboxMessage.objects.filter(pk=msg.pk).update(attempts=2, next_attempt_at=NOW + timedelta(seconds=300))
        raise TimeoutError("slow")

    _HANDLERS[TOPIC] = handler
    outbox_relay(limit=1, now=NOW)

    message.refresh_from_db()
    assert (message.status, message.attempts, message.next_attempt_at, message.last_error) == (
        OutboxStatus.PENDING, 2, NOW + timedelta(seconds=300), "")


class _Clock:
    """Stands in for ``time`` in core.outbox: the relay's monotonic clock moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


def test_a_message_not_started_within_half_the_lease_is_handed_back(db, delivered, caplog, monkeypatch):
    import core.outbox

    clock = _Clock()
    monkeypatch.setattr(core.outbox, "time", clock)
    calls, _state = delivered
    _enqueue("A", 1)
    late = _enqueue("B", 1)

    def handler(message):
        clock.now += 61  # longer than half the lease (120 s): the next message of the round must not start
        calls.append((message.key, message.payload["n"]))

    _HANDLERS[TOPIC] = handler
    # Round 1 claims A and B, delivers A and hands B back (attempt undone, due at once);
    # round 2 claims B again and delivers it.
    assert outbox_relay(limit=10, now=NOW) == {"delivered": 2, "failed": 0}

    late.refresh_from_db()
    assert calls == [("A", 1), ("B", 1)]
    assert (late.status, late.attempts) == (OutboxStatus.DELIVERED, 1)
    assert "outbox messages handed back unstarted (round too slow for the lease)" in caplog.messages


def test_outbox_memo_shares_a_lookup_within_a_round_only(db, delivered):
    from core.outbox import outbox_memo

    lookups = []

    def handler(message):
        outbox_memo("binding", lambda: lookups.append(message.pk))

    _HANDLERS[TOPIC] = handler
    for key in ("A", "B", "C"):
        _enqueue(key, 1)

    outbox_relay(limit=10, now=NOW)
    assert len(lookups) == 1
    outbox_memo("binding", lambda: lookups.append("outside"))
    outbox_memo("binding", lambda: lookups.append("outside"))
    assert lookups[1:] == ["outside", "outside"]


def test_the_relay_task_clears_the_kick_and_kicks_again_when_it_stopped_at_its_limit(db, delivered, monkeypatch):
    import core.outbox
    from core.tasks import relay_outbox_task

    events = []
    monkeypatch.setattr(core.outbox, "outbox_kick_clear", lambda: events.append("clear"))
    monkeypatch.setattr(core.outbox, "outbox_relay_kick", lambda: events.append("kick"))
    for key in ("A", "B", "C"):
        OutboxMessage.objects.create(topic=TOPIC, key=key, payload={"n": 1}, next_attempt_at=timezone.now())

    assert relay_outbox_task(limit=2) == {"delivered": 2, "failed": 0}
    assert events == ["clear", "kick"]
    assert relay_outbox_task(limit=2) == {"delivered": 1, "failed": 0}
    assert events == ["clear", "kick", "clear"]


# --- concurrent relays with delivery threads (PostgreSQL) --------------------------------------


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
# A failed message comes back after an hour and a lease lasts an hour: however slow the
# machine, within this test F fails once and no message is handed back for being late.
@override_settings(OUTBOX_RELAY_BATCH=7, OUTBOX_RELAY_THREADS=4, OUTBOX_BACKOFF_BASE_SECONDS=3600,
                   OUTBOX_LEASE_SECONDS=3600)
def test_concurrent_threaded_relays_deliver_each_message_once_in_key_order_and_a_failing_key_waits():
    import threading
    import time

    from django.db import connection

    lock = threading.Lock()
    delivered, in_flight, overlaps, threads_seen = [], set(), [], set()

    def handler(message):
        with lock:
            if message.key in in_flight:
                overlaps.append(message.key)
            in_flight.add(message.key)
            threads_seen.add(threading.current_thread().name)
        time.sleep(0.002)
        with lock:
            in_flight.discard(message.key)
            if message.key == "F":
                raise ConnectionError("F is down")
            delivered.append((message.key, message.payload["n"]))

    keys = [f"K{index}" for index in range(12)] + ["F"]
    _HANDLERS[TOPIC] = handler
    try:
        for n in range(4):
            for key in keys:
                OutboxMessage.objects.create(topic=TOPIC, key=key, payload={"n": n},
                                             next_attempt_at=timezone.now() - timedelta(seconds=1))
        barrier = threading.Barrier(4)
        results, errors = [], []

        def relay():
            try:
                barrier.wait()
                results.append(outbox_relay(limit=1000))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connection.close()

        relays = [threading.Thread(target=relay) for _ in range(4)]
        for thread in relays:
            thread.start()
        for thread in relays:
            thread.join(timeout=600)  # a guard against a hang, not a time budget
    finally:
        _HANDLERS.pop(TOPIC, None)

    assert [thread.is_alive() for thread in relays] == [False] * 4
    assert errors == []
    assert overlaps == []  # never two messages of one key at once
    assert any(name.startswith("outbox-relay") for name in threads_seen)  # the delivery threads were used
    assert sorted(delivered) == sorted((key, n) for n in range(4) for key in keys if key != "F")
    for key in keys[:-1]:
        assert [n for k, n in delivered if k == key] == [0, 1, 2, 3]
    assert sum(r["delivered"] for r in results) == 48
    assert sum(r["failed"] for r in results) == 1  # F's head, once: then it backs off
    failing = OutboxMessage.objects.filter(key="F").order_by("pk")
    assert [(m.status, m.attempts) for m in failing] == [(OutboxStatus.PENDING, 1)] + [(OutboxStatus.PENDING, 0)] * 3
    assert OutboxMessage.objects.filter(status=OutboxStatus.DELIVERED).count() == 48


@override_settings(OUTBOX_RELAY_BATCH=2)
def test_a_full_round_kicks_one_more_relay_for_the_backlog(db, delivered, monkeypatch):
    import core.outbox
    from core.tasks import relay_outbox_task

    events = []
    monkeypatch.setattr(core.outbox, "outbox_kick_clear", lambda: events.append("clear"))
    monkeypatch.setattr(core.outbox, "outbox_relay_kick", lambda: events.append("kick"))
    for key in ("A", "B", "C", "D", "E"):
        OutboxMessage.objects.create(topic=TOPIC, key=key, payload={"n": 1}, next_attempt_at=timezone.now())

    assert relay_outbox_task() == {"delivered": 5, "failed": 0}
    assert events == ["clear", "kick"]  # once, however many full rounds
