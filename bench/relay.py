"""relay: outbox events (topic ``platform.order_action``) relayed to the simulator's
Meituan API by REAL Celery workers on Redis, against Celery's own rate for no-op
tasks through the same workers.

Setup: a Meituan-bound store, the simulator as a subprocess, Redis database 14
(``--redis-url``, flushed), ``celery -A config worker -I bench.tasks`` with
``--concurrency`` processes on the bench database, stopped (warm shutdown) at the end.

1. Baseline: N no-op tasks (``bench.noop``: one Redis INCR) published from this
   process; tasks/s from the first publish until the workers ran all N.
2. Throughput: N events for N/2 platform orders, each order's ``accept`` then
   ``mark_ready`` written with ``outbox_enqueue`` in one transaction per order (the
   on-commit hook kicks the relay as in production: a ``core.relay_outbox`` task
   is published only when no kicked relay is waiting, see core.outbox); events/s
   from the first write until the last ``delivered_at``. A sweep
   (``core.relay_outbox``) is published every 15 s, as beat does.
3. Drain (``--drain``, default N): a backlog of events for fresh orders written
   in one transaction WITHOUT kicking the relay (as after a broker outage), then
   one ``core.relay_outbox`` published; events/s from that publish until the last
   ``delivered_at``: what the relay alone sustains, without the writer sharing the
   cores.
4. Lag: ``accept`` events at a steady ``--lag-rate`` per second for ``--lag-seconds``,
   one transaction each; p50/p99 of ``delivered_at - created_at`` and of the
   simulator's call log time minus ``created_at``.

Checks: every message delivered, none dead; the simulator received exactly one
confirm per order (and one meal-ready per throughput order, after its confirm,
so per-order order held); every simulator order ended in the right status.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

from bench import common
from bench.channel_setup import MEITUAN_SHOP, SimulatorProcess, meituan_orders_create, meituan_store_bound

NAME = "relay"
SWEEP_SECONDS = 15.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10000, help="outbox events relayed (N, even)")
    parser.add_argument("--noop", type=int, default=None, help="no-op tasks of the baseline (default N)")
    parser.add_argument("--concurrency", type=int, default=4, help="celery worker processes")
    parser.add_argument("--drain", type=int, default=None, help="events of the drain phase (default N; 0: skip)")
    parser.add_argument("--lag-rate", type=float, default=100.0, help="events per second of the lag phase")
    parser.add_argument("--lag-seconds", type=float, default=20.0, help="duration of the lag phase (0: skip)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for one phase")
    return parser.parse_args(argv)


class CeleryWorkers:
    """``celery -A config worker`` on the bench database and ``redis_url``; warm shutdown on exit."""

    def __init__(self, *, redis_url: str, concurrency: int) -> None:
        self.redis_url = redis_url
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-celery-", suffix=".log", delete=False)

    def __enter__(self):
        env = dict(os.environ)
        env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": common.database_url(),
                    "REDIS_URL": self.redis_url, "CELERY_BROKER_URL": self.redis_url, "DEBUG": "false",
                    "LOG_LEVEL": "WARNING", "CONN_MAX_AGE": "600", "PYTHONPATH": str(common.PROJECT_DIR)})
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-I", "bench.tasks",
                   "--concurrency", str(self.concurrency), "--pool", "prefork", "--loglevel", "WARNING",
                   "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"bench-relay-{os.getpid()}@%h"]
        self.process = subprocess.Popen(command, cwd=common.PROJECT_DIR, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def __exit__(self, *exc):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
        return False


def celery_use_broker(redis_url: str) -> None:
    """Make this process publish to ``redis_url`` instead of running tasks inline."""
    from config.celery_app import app

    # Drop the producer pool of an earlier broker: `make bench` runs relay (db 14) and
    # pos_e2e (db 13) in one process, and the cached pool would keep publishing to the
    # first (Celery caches both pools; there is no public call that drops them).
    if app.amqp._producer_pool is not None:
        app.amqp._producer_pool.force_close_all()
        app.amqp._producer_pool = None
    app._pool = None
    app.conf.broker_url = redis_url
    app.conf.task_always_eager = False


def wait_until(predicate, *, timeout: float, tick: float = 0.05, every=None) -> bool:
    """Poll ``predicate``; ``every`` = (seconds, callable) runs alongside (the beat sweep)."""
    deadline = time.monotonic() + timeout
    next_every = time.monotonic() + every[0] if every else None
    while time.monotonic() < deadline:
        if predicate():
            return True
        if every and time.monotonic() >= next_every:
            every[1]()
            next_every += every[0]
        time.sleep(tick)
    return predicate()


def noop_run(*, count: int, timeout: float) -> dict:
    from bench.tasks import NOOP_COUNTER_KEY, noop_task, redis_client

    client = redis_client()
    client.delete(NOOP_COUNTER_KEY)
    started = time.perf_counter()
    for _ in range(count):
        noop_task.delay()
    published = time.perf_counter() - started
    done = wait_until(lambda: int(client.get(NOOP_COUNTER_KEY) or 0) >= count, timeout=timeout, tick=0.02)
    seconds = time.perf_counter() - started
    ran = int(client.get(NOOP_COUNTER_KEY) or 0)
    return {"tasks": count, "ran": ran, "done": done, "seconds": seconds, "publish_seconds": published,
            "tasks_per_s": common.rate(ran, seconds)}


def _payload(*, store_id: int, order_id: int, action: str) -> dict:
    # The shape orders.services.sync.order_sync_enqueue writes.
    return {"platform": "meituan", "channel_order_id": str(order_id), "order_no": f"B{order_id}",
            "store_id": store_id, "order_type": "delivery", "action": action, "reason_code": "", "reason": "",
            "courier_name": "", "courier_phone": "", "actor_kind": "pos", "actor_id": "bench"}


def _sweep() -> None:
    from core.tasks import relay_outbox_task

    relay_outbox_task.delay()  # what beat publishes


def throughput_run(*, store, brand_id: int, order_ids: list[int], timeout: float) -> dict:
    from django.db import transaction
    from django.db.models import Max, Min

    from core.models import OutboxMessage, OutboxStatus
    from core.outbox import outbox_enqueue
    from orders.services.sync import ORDER_ACTION_TOPIC

    events = 2 * len(order_ids)
    from django.utils import timezone

    started_at = timezone.now()
    started = time.perf_counter()
    for order_id in order_ids:
        with transaction.atomic():
            for action in ("accept", "mark_ready"):
                outbox_enqueue(topic=ORDER_ACTION_TOPIC, key=f"B{order_id}", brand_id=brand_id,
                               payload=_payload(store_id=store.pk, order_id=order_id, action=action))
    produced = time.perf_counter() - started
    batch = OutboxMessage.objects.filter(created_at__gte=started_at)

    def finished():
        return batch.exclude(status=OutboxStatus.PENDING).count() >= events

    done = wait_until(finished, timeout=timeout, tick=0.25, every=(SWEEP_SECONDS, _sweep))
    span = batch.aggregate(first=Min("created_at"), last=Max("delivered_at"))
    seconds = (span["last"] - started_at).total_seconds() if span["last"] else time.perf_counter() - started
    delivered = batch.filter(status=OutboxStatus.DELIVERED).count()
    return {"events": events, "delivered": delivered, "dead": batch.filter(status=OutboxStatus.DEAD).count(),
            "done": done, "seconds": seconds, "produce_seconds": produced,
            "events_per_s": common.rate(delivered, seconds), "started_at": started_at}


def drain_run(*, store, brand_id: int, order_ids: list[int], timeout: float) -> dict:
    from django.db.models import Max
    from django.utils import timezone

    from core.models import OutboxMessage, OutboxStatus
    from core.tasks import relay_outbox_task
    from orders.services.sync import ORDER_ACTION_TOPIC

    written_at = timezone.now()
    OutboxMessage.objects.bulk_create([
        OutboxMessage(topic=ORDER_ACTION_TOPIC, key=f"B{order_id}", brand_id=brand_id,
                      payload=_payload(store_id=store.pk, order_id=order_id, action=action))
        for order_id in order_ids for action in ("accept", "mark_ready")], batch_size=1000)
    batch = OutboxMessage.objects.filter(created_at__gte=written_at)
    events = batch.count()
    started_at = timezone.now()
    relay_outbox_task.delay()  # one kick; the relays it starts fan out over the worker processes
    done = wait_until(lambda: not batch.filter(status=OutboxStatus.PENDING).exists(), timeout=timeout, tick=0.25,
                      every=(SWEEP_SECONDS, _sweep))
    last = batch.aggregate(last=Max("delivered_at"))["last"]
    seconds = (last - started_at).total_seconds() if last else timeout
    delivered = batch.filter(status=OutboxStatus.DELIVERED).count()
    return {"events": events, "delivered": delivered, "done": done, "seconds": seconds,
            "events_per_s": common.rate(delivered, seconds)}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def lag_run(*, store, brand_id: int, order_ids: list[int], rate_per_s: float, timeout: float) -> dict:
    from django.db import transaction
    from django.utils import timezone

    from core.models import OutboxMessage, OutboxStatus
    from core.outbox import outbox_enqueue
    from orders.services.sync import ORDER_ACTION_TOPIC

    started_at = timezone.now()
    started = time.perf_counter()
    behind = 0
    for index, order_id in enumerate(order_ids):
        wait = started + index / rate_per_s - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        elif wait < -0.05:
            behind += 1
        with transaction.atomic():
            outbox_enqueue(topic=ORDER_ACTION_TOPIC, key=f"B{order_id}", brand_id=brand_id,
                           payload=_payload(store_id=store.pk, order_id=order_id, action="accept"))
    produced = time.perf_counter() - started
    batch = OutboxMessage.objects.filter(created_at__gte=started_at)
    done = wait_until(lambda: batch.exclude(status=OutboxStatus.PENDING).count() >= len(order_ids),
                      timeout=timeout, tick=0.25, every=(SWEEP_SECONDS, _sweep))
    rows = list(batch.values_list("payload__channel_order_id", "created_at", "delivered_at", "status"))
    lags = [(d - c).total_seconds() * 1000 for _oid, c, d, s in rows if d is not None]
    return {"events": len(order_ids), "delivered": len(lags), "done": done, "rate_per_s": rate_per_s,
            "produce_seconds": produced, "achieved_rate": common.rate(len(order_ids), produced),
            "late_writes": behind, "p50_ms": _pct(lags, 0.50), "p99_ms": _pct(lags, 0.99),
            "max_ms": max(lags, default=0.0), "mean_ms": statistics.fmean(lags) if lags else 0.0,
            "created": {oid: c for oid, c, _d, _s in rows}}


def main(argv=None) -> dict:
    args = parse(argv or [])
    if args.events % 2:
        raise SystemExit("--events must be even (two events per order)")
    common.setup_django()
    common.database_prepare()
    common.database_wipe()
    from core.models import OutboxMessage, OutboxStatus

    from bench.tasks import redis_client  # noqa: F401 (registers bench.noop in this process)

    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    os.environ["REDIS_URL"] = args.redis_url  # bench.tasks' client in this process
    celery_use_broker(args.redis_url)
    noop_count = args.noop if args.noop is not None else args.events
    lag_events = int(args.lag_rate * args.lag_seconds)
    drain_events = args.events if args.drain is None else args.drain
    if drain_events % 2:
        raise SystemExit("--drain must be even (two events per order)")

    with SimulatorProcess() as sim:
        shop, _binding = meituan_store_bound(sim=sim)
        throughput_ids = meituan_orders_create(sim=sim, count=args.events // 2)
        lag_ids = meituan_orders_create(sim=sim, count=lag_events) if lag_events else []
        drain_ids = meituan_orders_create(sim=sim, count=drain_events // 2) if drain_events else []
        with CeleryWorkers(redis_url=args.redis_url, concurrency=args.concurrency) as workers:
            warm = noop_run(count=args.concurrency * 2, timeout=90)
            if not warm["done"]:
                raise SystemExit(f"celery workers did not start; log: {workers.log.name}")
            baseline = noop_run(count=noop_count, timeout=args.timeout)
            relay = throughput_run(store=shop.store, brand_id=shop.brand.pk, order_ids=throughput_ids,
                                   timeout=args.timeout)
            drain = (drain_run(store=shop.store, brand_id=shop.brand.pk, order_ids=drain_ids, timeout=args.timeout)
                     if drain_ids else None)
            lag = (lag_run(store=shop.store, brand_id=shop.brand.pk, order_ids=lag_ids, rate_per_s=args.lag_rate,
                           timeout=args.timeout) if lag_ids else None)
        worker_exit = workers.process.returncode
        calls = sim.calls("/api/v1/order/")
        sim_orders = {o["order_id"]: o for o in sim.get("/_sim/meituan/orders", shop=MEITUAN_SHOP)["orders"]}

    # --- checks from the simulator's side
    per_order: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    call_at: dict[str, float] = {}
    bad_status = 0
    for call in calls:
        body = call.get("body") or {}
        if call["method"] != "POST" or not isinstance(body, dict):
            continue
        order_id = str(body.get("order_id"))
        per_order[order_id][call["route"]].append(call["seq"])
        bad_status += call["status"] != 200
        if call["route"] == "/api/v1/order/confirm":
            call_at.setdefault(order_id, call["at"])
    confirm, meal = "/api/v1/order/confirm", "/api/v1/order/preparationMealComplete"
    once = all(len(per_order[str(i)][confirm]) == 1 and len(per_order[str(i)][meal]) == 1
               for i in throughput_ids + drain_ids)
    once = once and all(len(per_order[str(i)][confirm]) == 1 and not per_order[str(i)][meal] for i in lag_ids)
    in_order = all(per_order[str(i)][confirm][0] < per_order[str(i)][meal][0]
                   for i in throughput_ids + drain_ids if per_order[str(i)][confirm] and per_order[str(i)][meal])
    final_ok = all(sim_orders[i]["status"] == 4 and sim_orders[i]["sim"]["meal_ready"]
                   for i in throughput_ids + drain_ids)
    final_ok = final_ok and all(sim_orders[i]["status"] == 4 and not sim_orders[i]["sim"]["meal_ready"]
                                for i in lag_ids)
    counts = {s: OutboxMessage.objects.filter(status=s).count() for s in OutboxStatus.values}
    if lag is not None:
        sim_lags = [(call_at[str(oid)] - created.timestamp()) * 1000 for oid, created in lag.pop("created").items()
                    if str(oid) in call_at]
        lag.update({"sim_p50_ms": _pct(sim_lags, 0.50), "sim_p99_ms": _pct(sim_lags, 0.99)})

    print(common.line(f"relay ({args.events} events, celery {args.concurrency} processes)", relay["events_per_s"],
                      "events/s", f"no-op tasks x{noop_count}", baseline["tasks_per_s"], "tasks/s"))
    print(f"  events written in {relay['produce_seconds']:.1f} s, all delivered {relay['seconds']:.1f} s after the "
          f"first write; no-op tasks published in {baseline['publish_seconds']:.1f} s, all ran in "
          f"{baseline['seconds']:.1f} s")
    if drain is not None:
        print(f"  drain of a backlog of {drain['events']} events (written without kicks, then one relay task): "
              f"{drain['events_per_s']:.1f} events/s ({drain['delivered']} in {drain['seconds']:.1f} s), "
              f"ratio to the no-op baseline {common.ratio(drain['events_per_s'], baseline['tasks_per_s']):.2f}")
    if lag is not None:
        print(f"  lag at {args.lag_rate:.0f} events/s for {args.lag_seconds:.0f} s ({lag['events']} events, written at "
              f"{lag['achieved_rate']:.1f}/s): commit->delivered p50 {lag['p50_ms']:.0f} ms, p99 {lag['p99_ms']:.0f} ms,"
              f" max {lag['max_ms']:.0f} ms; commit->simulator call log p50 {lag['sim_p50_ms']:.0f} ms, "
              f"p99 {lag['sim_p99_ms']:.0f} ms")
    ok = True
    ok &= common.check("no-op baseline ran every task", baseline["ran"] == noop_count,
                       f"{baseline['ran']} of {noop_count}")
    total = args.events + lag_events + drain_events
    ok &= common.check("every event delivered", counts.get("delivered", 0) == total and counts.get("pending", 0) == 0
                       and counts.get("dead", 0) == 0, str(counts))
    ok &= common.check("simulator got each call exactly once", once and bad_status == 0,
                       f"{len(calls)} calls, non-200: {bad_status}")
    ok &= common.check("per-order order (confirm before meal ready)", in_order)
    ok &= common.check("simulator orders in the right final status", final_ok)
    ok &= common.check("workers stopped cleanly", worker_exit == 0, f"exit code {worker_exit}")
    relay.pop("started_at", None)
    result = {"bench": NAME, "events": args.events, "concurrency": args.concurrency, "relay": relay,
              "baseline": baseline, "ratio": common.ratio(relay["events_per_s"], baseline["tasks_per_s"]),
              "drain": drain, "lag": lag, "outbox": counts, "sim_calls": len(calls), "exactly_once": once, "in_order": in_order,
              "final_status_ok": final_ok, "worker_exit": worker_exit, "ok": bool(ok)}
    common.emit(result)
    return result
