"""Faults over real HTTP against the project's simulator (issue 4 item 8).

The simulator injects the faults (``POST /_sim/faults``): HTTP 500s, answers slower
than the client's timeout (the call still takes effect), duplicate and shuffled
pushes, bad signatures. The broker and worker tests run a Redis of their own on
port 6390 and real ``celery -A config worker`` subprocesses on the test database;
every process a test starts is stopped in a ``finally``.
"""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.utils import timezone

from channels.services import binding_pull
from core.actors import Actor
from core.models import OutboxMessage, OutboxStatus
from core.outbox import outbox_relay
from inventory.models import Stock
from inventory.services import stock_ledger_mismatches
from orders.models import Order, OrderEvent
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.sim_helpers import (
    MT_LINE,
    eleme_shop,
    meituan_shop,
    sim_calls,
    sim_orders,
    wait_for,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
POS = Actor(kind="pos", id="T1")
CONFIRM = "/api/v1/order/confirm"
REDIS_PORT = 6390


@pytest.fixture
def sim():
    # Pushes refused by the receiver come back after 0.5 s (a real platform waits longer).
    with running_simulator(notify_backoff=(0.5,)) as server:
        yield server


# --- helpers ----------------------------------------------------------------------------------








def _sim_order(sim, platform, order_id):
    return requests.get(f"{sim.base_url}/_sim/{platform}/orders/{order_id}", timeout=5).json()


def _fault(sim, **spec):
    answer = requests.post(f"{sim.base_url}/_sim/faults", json=spec, timeout=5)
    assert answer.status_code == 201, answer.text






def _due_now(message):
    """Let time pass: the message's backoff (or lease) is over."""
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())


def _pulled_meituan_order(sim, shop):
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE]})
    assert binding_pull(binding_id=shop["meituan"].pk).created == 1
    return made[0], Order.objects.get(channel="meituan", channel_order_id=str(made[0]["order_id"]))


def _accept_events(order):
    return OrderEvent.objects.filter(order=order, action="accept").count()


# --- pulls: 500s and timeouts -----------------------------------------------------------------


def test_pull_500s_are_retried_and_an_order_that_still_fails_is_taken_by_the_next_pull(sim, shop, settings):
    settings.CHANNELS_PULL_RETRY_DELAY_SECONDS = 0
    meituan_shop(sim, shop)
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "count": 3, "lines": [MT_LINE]})
    today = timezone.localdate().strftime("%Y%m%d")
    # One 500 is retried within the pull; the first order's detail fails on every attempt.
    _fault(sim, mode="error500", path_prefix="/api/v1/order/getOrderIdByDaySeq", count=1)
    _fault(sim, mode="error500", path_prefix="/api/v1/order/getOrderDetail",
           count=settings.CHANNELS_PULL_CALL_ATTEMPTS)

    first = binding_pull(binding_id=shop["meituan"].pk)
    shop["meituan"].refresh_from_db()
    state_after_first = shop["meituan"].pull_state
    second = binding_pull(binding_id=shop["meituan"].pk)
    third = binding_pull(binding_id=shop["meituan"].pk)

    assert (first.pulled, first.created, first.errors) == (2, 2, ["meituan order/getOrderDetail: HTTP 500"])
    assert state_after_first == {today: 3, "missing": {today: [1]}, "attempts": {f"{today}/1": 1}}
    assert (second.pulled, second.created, second.errors) == (1, 1, [])
    assert (third.pulled, third.created) == (0, 0)
    ids = sorted(Order.objects.filter(channel="meituan").values_list("channel_order_id", flat=True))
    assert ids == sorted(str(o["order_id"]) for o in made)
    shop["meituan"].refresh_from_db()
    assert shop["meituan"].pull_state == {today: 3}
    assert shop["meituan"].last_error == ""
    assert Stock.objects.get(store=shop["store"], sku=shop["chicken"]).on_hand == 10 - 3 * 2
    assert stock_ledger_mismatches() == []


def test_a_pull_slower_than_the_client_timeout_loses_nothing_and_duplicates_nothing(sim, shop, settings):
    settings.CHANNELS_HTTP_READ_TIMEOUT = 0.5
    meituan_shop(sim, shop)
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "count": 2, "lines": [MT_LINE]})
    _fault(sim, mode="slow", path_prefix="/api/v1/order/getOrderDetail", count=1, delay=1.5)

    timed_out = binding_pull(binding_id=shop["meituan"].pk)
    # A timeout is not retried within the pull; the order after it goes on.
    assert (timed_out.pulled, timed_out.created, timed_out.errors) == (1, 1, ["meituan order/getOrderDetail: timeout"])
    assert list(Order.objects.values_list("channel_order_id", flat=True)) == [str(made[1]["order_id"])]
    # The slow answer is still sent (to nobody): wait for it, so the retry is not racing it.
    assert wait_for(lambda: any(c["fault"] == "slow" for c in sim_calls(sim, "/api/v1/order/getOrderDetail", direction="in")))

    retried = binding_pull(binding_id=shop["meituan"].pk)
    again = binding_pull(binding_id=shop["meituan"].pk)

    assert (retried.pulled, retried.created, retried.errors) == (1, 1, [])
    assert (again.pulled, again.created) == (0, 0)
    assert sorted(Order.objects.values_list("channel_order_id", flat=True)) == sorted(
        str(o["order_id"]) for o in made)


def test_an_eleme_pull_500_is_retried_and_one_that_outlasts_the_retries_by_the_next_pull(sim, shop, settings):
    settings.CHANNELS_PULL_RETRY_DELAY_SECONDS = 0
    eleme_shop(sim, shop)
    made = sim_orders(sim, "eleme", {"shop": shop["eleme"].shop_code, "count": 1,
                                      "lines": [{"extend_code": "ZS001", "quantity": 1}]})
    _fault(sim, mode="error500", path_prefix="/api/v1/eleme.order.mgetOrders",
           count=settings.CHANNELS_PULL_CALL_ATTEMPTS)

    failed = binding_pull(binding_id=shop["eleme"].pk)
    retried = binding_pull(binding_id=shop["eleme"].pk)
    again = binding_pull(binding_id=shop["eleme"].pk)

    assert (failed.created, len(failed.errors)) == (0, 1)
    assert "HTTP 500" in failed.errors[0]
    assert (retried.created, retried.errors) == (1, [])
    assert again.created == 0
    assert list(Order.objects.values_list("channel_order_id", flat=True)) == [str(made[0]["id"])]
    assert Stock.objects.get(store=shop["store"], sku=shop["rice"]).on_hand == 0
    mget_calls = sim_calls(sim, "/api/v1/eleme.order.mgetOrders", direction="in")
    assert [c["fault"] for c in mget_calls] == ["error500"] * settings.CHANNELS_PULL_CALL_ATTEMPTS + [""]


# --- status calls: 500s, timeouts, dead letters --------------------------------------------------


def test_status_call_500s_are_retried_with_backoff_and_land_once(sim, shop):
    meituan_shop(sim, shop)
    sim_order, order = _pulled_meituan_order(sim, shop)
    _fault(sim, mode="error500", path_prefix=CONFIRM, count=2)
    order_transition(order_id=order.pk, action="accept", actor=POS)
    message = OutboxMessage.objects.get()

    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}
    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 0}  # backing off: not due yet
    _due_now(message)
    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (
        OutboxStatus.PENDING, 2, "PlatformUnavailable: meituan order/confirm: HTTP 500")
    _due_now(message)
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}

    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (OutboxStatus.DELIVERED, 3, "")
    assert [c["fault"] for c in sim_calls(sim, CONFIRM, direction="in")] == ["error500", "error500", ""]
    assert _sim_order(sim, "meituan", sim_order["order_id"])["status"] == 4
    order.refresh_from_db()
    assert (order.status, _accept_events(order)) == ("accepted", 1)


def test_a_status_call_slower_than_the_client_timeout_is_retried_and_the_repeat_is_harmless(sim, shop, settings):
    settings.CHANNELS_HTTP_READ_TIMEOUT = 0.5
    meituan_shop(sim, shop)
    sim_order, order = _pulled_meituan_order(sim, shop)
    _fault(sim, mode="slow", path_prefix=CONFIRM, count=1, delay=1.5)
    order_transition(order_id=order.pk, action="accept", actor=POS)
    message = OutboxMessage.objects.get()

    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (
        OutboxStatus.PENDING, 1, "PlatformUnavailable: meituan order/confirm: timeout")
    # The platform still carried the slow call out after we stopped waiting.
    assert wait_for(lambda: _sim_order(sim, "meituan", sim_order["order_id"])["status"] == 4)
    _due_now(message)
    assert outbox_relay(limit=10) == {"delivered": 1, "failed": 0}

    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.DELIVERED, 2)
    assert [(c["fault"], c["status"]) for c in sim_calls(sim, CONFIRM, direction="in")] == [("slow", 200), ("", 200)]
    assert _sim_order(sim, "meituan", sim_order["order_id"])["status"] == 4
    order.refresh_from_db()
    assert (order.status, _accept_events(order)) == ("accepted", 1)
    assert OutboxMessage.objects.count() == 1


def test_a_status_call_that_keeps_failing_is_dead_lettered_and_the_admin_retry_delivers_it(
        sim, shop, admin_client, django_capture_on_commit_callbacks):
    meituan_shop(sim, shop)
    sim_order, order = _pulled_meituan_order(sim, shop)
    _fault(sim, mode="error500", path_prefix=CONFIRM, count=8)  # OUTBOX_MAX_ATTEMPTS = 8
    order_transition(order_id=order.pk, action="accept", actor=POS)
    message = OutboxMessage.objects.get()

    for _attempt in range(8):
        assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}
        _due_now(message)
    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (
        OutboxStatus.DEAD, 8, "PlatformUnavailable: meituan order/confirm: HTTP 500")
    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 0}  # a dead letter stays put
    assert _sim_order(sim, "meituan", sim_order["order_id"])["status"] == 2

    listed = admin_client.get("/admin/core/outboxmessage/", {"status__exact": "dead"})
    assert listed.status_code == 200
    assert f'value="{message.pk}"' in listed.content.decode()
    with django_capture_on_commit_callbacks(execute=True):  # the retry schedules a relay after commit
        answer = admin_client.post("/admin/core/outboxmessage/",
                                   {"action": "retry_dead_letters", "_selected_action": [message.pk]})
    assert answer.status_code == 302

    message.refresh_from_db()
    assert (message.status, message.attempts, message.last_error) == (OutboxStatus.DELIVERED, 1, "")
    assert [c["fault"] for c in sim_calls(sim, CONFIRM, direction="in")] == ["error500"] * 8 + [""]
    assert _sim_order(sim, "meituan", sim_order["order_id"])["status"] == 4


def test_per_order_order_holds_across_a_failed_status_call(sim, shop):
    meituan_shop(sim, shop)
    sim_order, order = _pulled_meituan_order(sim, shop)
    _fault(sim, mode="error500", path_prefix=CONFIRM, count=1)
    order_transition(order_id=order.pk, action="accept", actor=POS)
    order_transition(order_id=order.pk, action="mark_ready", actor=POS)
    first = OutboxMessage.objects.get(payload__action="accept")

    assert outbox_relay(limit=10) == {"delivered": 0, "failed": 1}  # mark_ready waits behind accept
    _due_now(first)
    assert outbox_relay(limit=10) == {"delivered": 2, "failed": 0}

    posts = [c["path"] for c in sim_calls(sim, "/api/v1/order/", direction="in") if c["method"] == "POST"]
    assert posts == [CONFIRM, CONFIRM, "/api/v1/order/preparationMealComplete"]
    state = _sim_order(sim, "meituan", sim_order["order_id"])
    assert (state["status"], state["sim"]["meal_ready"]) == (4, True)


# --- pushes: duplicates, shuffles, bad signatures ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_duplicated_eleme_pushes_make_one_order_and_one_cancellation(sim, shop, live_server):
    eleme_shop(sim, shop, push_url=f"{live_server.url}/channels/push/eleme")
    _fault(sim, mode="duplicate", path_prefix="/channels/push/eleme", count=2)
    made = sim_orders(sim, "eleme", {"shop": shop["eleme"].shop_code, "lines": [{"extend_code": "ZS001"}],
                                      "push": True})
    order_id = str(made[0]["id"])
    assert wait_for(lambda: Order.objects.filter(channel_order_id=order_id).exists())
    assert wait_for(lambda: len(sim_calls(sim, "/channels/push/eleme", "out")) == 2)
    requests.post(f"{sim.base_url}/_sim/eleme/orders/{order_id}/cancel", json={}, timeout=5)
    assert wait_for(lambda: len(sim_calls(sim, "/channels/push/eleme", "out")) == 4)

    order = Order.objects.get(channel="eleme", channel_order_id=order_id)
    assert order.status == "cancelled"
    assert Order.objects.filter(channel="eleme").count() == 1
    assert OrderEvent.objects.filter(order=order, action="cancel").count() == 1
    assert [c["status"] for c in sim_calls(sim, "/channels/push/eleme", "out")] == [200, 200, 200, 200]
    assert Stock.objects.get(store=shop["store"], sku=shop["rice"]).on_hand == 1  # taken once, given back once
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_shuffled_meituan_pushes_end_in_one_cancelled_order(sim, shop, live_server):
    meituan_shop(sim, shop, push_url=f"{live_server.url}/channels/push/meituan")
    _fault(sim, mode="shuffle", path_prefix="/channels/push/meituan", count=2, delay=5)
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE], "push": True})
    order_id = str(made[0]["order_id"])
    requests.post(f"{sim.base_url}/_sim/meituan/orders/{order_id}/cancel", json={}, timeout=5)

    assert wait_for(lambda: len(sim_calls(sim, "/channels/push/meituan", "out")) == 2)
    pushes = sim_calls(sim, "/channels/push/meituan", "out")
    assert [c["path"].rsplit("/", 1)[1] for c in pushes] == ["cancel_order", "create_order"]  # shuffled
    assert [c["status"] for c in pushes] == [200, 200]
    order = Order.objects.get(channel="meituan", channel_order_id=order_id)
    assert order.status == "cancelled"
    assert Order.objects.filter(channel="meituan").count() == 1
    assert OrderEvent.objects.filter(order=order, action="cancel").count() == 1
    assert Stock.objects.get(store=shop["store"], sku=shop["chicken"]).on_hand == 10
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_a_push_with_a_bad_signature_is_refused_and_changes_nothing_until_a_good_one(sim, shop, live_server):
    meituan_shop(sim, shop, push_url=f"{live_server.url}/channels/push/meituan")
    _fault(sim, mode="bad_signature", path_prefix="/channels/push/meituan/create_order", count=1)
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE], "push": True})
    order_id = str(made[0]["order_id"])

    assert wait_for(lambda: len(sim_calls(sim, "/channels/push/meituan", "out")) >= 1)
    refused = sim_calls(sim, "/channels/push/meituan", "out")[0]
    assert (refused["status"], refused["fault"]) == (401, "bad_signature")
    if len(sim_calls(sim, "/channels/push/meituan", "out")) == 1:  # the retry (0.5 s later) has not come yet
        assert Order.objects.count() == 0
    assert wait_for(lambda: Order.objects.filter(channel_order_id=order_id).exists())
    # The simulator logs the retry once it has read our answer, a moment after we committed.
    assert wait_for(lambda: len(sim_calls(sim, "/channels/push/meituan", "out")) >= 2)
    assert [c["status"] for c in sim_calls(sim, "/channels/push/meituan", "out")] == [401, 200]
    order = Order.objects.get(channel_order_id=order_id)
    events = OrderEvent.objects.filter(order=order).count()

    # A forged cancellation (wrong secret) of the existing order: refused, nothing changes.
    forged = requests.post(f"{live_server.url}/channels/push/meituan/cancel_order", timeout=5, data={
        "app_id": shop["meituan"].app_id, "timestamp": str(int(time.time())), "sig": "0" * 32,
        "order_id": order_id, "reason_code": "1102", "reason": "用户取消"})

    assert forged.status_code == 401
    assert forged.json() == {"data": "ng", "error": {"code": 703, "msg": "bad signature"}}
    order.refresh_from_db()
    assert (order.status, OrderEvent.objects.filter(order=order).count()) == ("paid", events)
    assert Order.objects.count() == 1


# --- the broker and the workers ---------------------------------------------------------------------


def _port_open(port):
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class _Redis:
    """redis-server on REDIS_PORT, no persistence: stopping it loses whatever was queued."""

    def __init__(self):
        self.process = None

    def start(self):
        assert not _port_open(REDIS_PORT), f"port {REDIS_PORT} is taken"
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: _port_open(REDIS_PORT), 10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        assert wait_for(lambda: not _port_open(REDIS_PORT), 10)


class _Worker:
    """``celery -A config worker`` (prefork, 1 process) on the test database and our Redis."""

    def __init__(self, log_path):
        self.process = None
        self.log_path = log_path

    def start(self):
        s = connection.settings_dict
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings", REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}/0",
                   CELERY_BROKER_URL=f"redis://127.0.0.1:{REDIS_PORT}/0", PYTHONPATH=str(PROJECT_DIR),
                   # the simulator listens on a random port (config.settings_test allows the same)
                   OUTBOUND_URL_ALLOWED_HOSTS="127.0.0.1:*",
                   DATABASE_URL=f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}")
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1", "--pool", "prefork",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"faults-{time.monotonic_ns()}@%h"],
            cwd=PROJECT_DIR, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        assert wait_for(lambda: b"ready." in Path(self.log_path).read_bytes(), 60), Path(self.log_path).read_text()

    def kill(self):
        """SIGKILL the worker and its pool process (no warm shutdown, no ack)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def broker(tmp_path):
    """Our Redis plus this process's Celery app publishing to it (not eager); workers on demand."""
    from kombu import pools as kombu_pools

    from config.celery_app import app

    redis = _Redis()
    workers = []

    def worker():
        made = _Worker(tmp_path / f"worker{len(workers)}.log")
        workers.append(made)
        made.start()
        return made

    def forget_connections():  # pools made for the previous broker must not be reused
        kombu_pools.reset()  # closes and forgets kombu's process-wide connection/producer pools
        app._pool = None
        app.amqp._producer_pool = None

    saved = (app.conf.broker_url, app.conf.task_always_eager)
    app.conf.broker_url, app.conf.task_always_eager = f"redis://127.0.0.1:{REDIS_PORT}/0", False
    forget_connections()
    redis.start()
    try:
        yield redis, worker
    finally:
        for made in workers:
            made.stop()
        redis.stop()
        app.conf.broker_url, app.conf.task_always_eager = saved
        forget_connections()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_delays_the_status_sync_and_loses_nothing(sim, shop, broker, caplog):
    from core.tasks import relay_outbox_task

    redis, start_worker = broker
    meituan_shop(sim, shop)
    sim_order, order = _pulled_meituan_order(sim, shop)
    start_worker()
    redis.stop()

    with caplog.at_level(logging.WARNING):
        order_transition(order_id=order.pk, action="accept", actor=POS)  # commits; the relay cannot be queued

    order.refresh_from_db()
    assert (order.status, _accept_events(order)) == ("accepted", 1)
    message = OutboxMessage.objects.get()
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 0)
    assert "outbox relay could not be scheduled; the sweep will deliver" in caplog.messages
    assert sim_calls(sim, CONFIRM, direction="in") == []

    redis.start()
    relay_outbox_task.delay()  # the periodic sweep (beat) once the broker is back

    assert wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).status == OutboxStatus.DELIVERED, 60)
    message.refresh_from_db()
    assert message.attempts == 1
    assert [c["status"] for c in sim_calls(sim, CONFIRM, direction="in")] == [200]
    assert _sim_order(sim, "meituan", sim_order["order_id"])["status"] == 4


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_leads_to_one_status_change(sim, shop, broker):
    from core.tasks import relay_outbox_task

    _redis, start_worker = broker
    meituan_shop(sim, shop)
    sim_order, order = _pulled_meituan_order(sim, shop)
    first = start_worker()
    _fault(sim, mode="slow", path_prefix=CONFIRM, count=1, delay=3)

    order_transition(order_id=order.pk, action="accept", actor=POS)  # on commit: a relay task on the broker
    message = OutboxMessage.objects.get()
    # The worker claimed it (lease taken, attempt 1) and is waiting for the slow confirm.
    assert wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).attempts == 1, 30)
    time.sleep(0.5)
    first.kill()

    message.refresh_from_db()
    assert (message.status, message.attempts) == (OutboxStatus.PENDING, 1)
    assert message.next_attempt_at > timezone.now()  # leased: no other relay takes it meanwhile
    # The platform carries the call out anyway.
    assert wait_for(lambda: _sim_order(sim, "meituan", sim_order["order_id"])["status"] == 4, 10)

    start_worker()
    _due_now(message)  # the lease (OUTBOX_LEASE_SECONDS) has run out
    relay_outbox_task.delay()  # the periodic sweep

    assert wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).status == OutboxStatus.DELIVERED, 60)
    message.refresh_from_db()
    assert message.attempts == 2
    confirms = sim_calls(sim, CONFIRM, direction="in")
    assert [(c["fault"], c["status"]) for c in confirms] == [("slow", 200), ("", 200)]  # delivered twice: at least once
    assert Counter(c["body"]["order_id"] for c in confirms) == {str(sim_order["order_id"]): 2}
    assert _sim_order(sim, "meituan", sim_order["order_id"])["status"] == 4  # moved once, the repeat answered ok
    order.refresh_from_db()
    assert (order.status, _accept_events(order)) == ("accepted", 1)
    assert OutboxMessage.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_commits_queues_one_relay_that_delivers_them_all(sim, shop, broker, settings):
    import redis as redis_lib

    from core.outbox import KICK_FLAG

    settings.OUTBOX_KICK_TTL_SECONDS = 120  # the worker below may take a while to start
    _redis, start_worker = broker
    client = redis_lib.Redis(port=REDIS_PORT)
    meituan_shop(sim, shop)
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "count": 3, "lines": [MT_LINE]})
    assert binding_pull(binding_id=shop["meituan"].pk).created == 3
    orders = list(Order.objects.filter(channel="meituan").order_by("pk"))

    for order in orders:  # three transactions, three commits: one relay task queued, no worker yet
        order_transition(order_id=order.pk, action="accept", actor=POS)

    assert client.llen("celery") == 1
    assert client.exists(KICK_FLAG)
    start_worker()

    assert wait_for(lambda: OutboxMessage.objects.filter(status=OutboxStatus.DELIVERED).count() == 3, 60)
    assert not client.exists(KICK_FLAG)  # the relay cleared it before claiming
    assert sorted(c["body"]["order_id"] for c in sim_calls(sim, CONFIRM, direction="in")) == sorted(
        str(o["order_id"]) for o in made)

    # The next commit finds no relay waiting: it queues a new one.
    order_transition(order_id=orders[0].pk, action="mark_ready", actor=POS)
    assert wait_for(lambda: OutboxMessage.objects.filter(status=OutboxStatus.DELIVERED).count() == 4, 60)
    assert [(m.status, m.attempts) for m in OutboxMessage.objects.order_by("pk")] == [(OutboxStatus.DELIVERED, 1)] * 4
