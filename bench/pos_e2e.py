"""pos_e2e: end to end through the whole stack as production runs it, from an order
created at the simulator's Meituan shop to the POS seeing it, and from the POS marking
it ready to the simulator receiving the meal-ready call.

The stack: gunicorn (``config.wsgi``) with ``REDIS_URL``, real ``celery -A config worker``
processes and ``celery -A config beat`` (the production schedule: due pulls every 5 s,
outbox sweep every 15 s, ...) on Redis database 13 (``--redis-url``, flushed at the
start), and the simulator (``python -m simulator``) as a subprocess. A Meituan-bound
store with one cashier terminal; a POS client thread long-polls ``GET events?wait=W``
as a real POS does, records the wall-clock time it first sees each ``order.created``,
acknowledges the batch, and a second thread accepts each new order (so the platform
gets its confirm, as it would from a cashier).

1. pushed: the shop's push URL is our receiver (``/channels/push/meituan``), pulling is
   off; ``--orders`` orders are created one at a time at the simulator, ``--gap``
   seconds apart, each pushed by the simulator; latency = POS sees it - before the
   simulator's create call (aim: under 1 s).
2. pulled: the same with push off and the binding pulled every ``--pull-interval``
   seconds by beat and the worker (aim: under the pull interval + 1 s).
3. ready: once every confirm reached the simulator, the POS marks the pushed orders
   ready (``POST orders/{no}/ready``) one at a time, ``--gap`` apart; latency = the
   simulator's call-log time of ``preparationMealComplete`` - before the POS call
   (aim: under 2 s).

All processes run on this machine, so the wall clocks (``time.time()`` of the bench
and of the simulator) agree. Checks: every order seen by the POS exactly once (one
``order.created`` event each, none for anything else); every POS call answered 200;
the simulator got exactly one confirm per order and one meal-ready call per ready
order; the workers and beat stop cleanly. Not in the smoke test: it needs Redis and
real Celery processes (about 2 minutes at default sizes).
"""

import argparse
import itertools
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict

from bench import common
from bench.channel_setup import (
    MEITUAN_APP_ID,
    MEITUAN_SECRET,
    MEITUAN_SHOP,
    MENU,
    SimulatorProcess,
    meituan_store_bound,
)
from bench.relay import CeleryWorkers, celery_use_broker, wait_until

NAME = "pos_e2e"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
PUSH_AIM_S = 1.0
READY_AIM_S = 2.0
MEAL_READY = "/api/v1/order/preparationMealComplete"
CONFIRM = "/api/v1/order/confirm"


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50, help="orders per phase (N)")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two orders (or two ready calls)")
    parser.add_argument("--pull-interval", type=int, default=5, help="pull interval of the binding in the pulled phase")
    parser.add_argument("--pos-wait", type=int, default=25, help="long-poll wait of the POS client (0-25)")
    parser.add_argument("--concurrency", type=int, default=2, help="celery worker processes (run_stack uses 2)")
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--http-threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_POS_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one phase to settle")
    return parser.parse_args(argv)


def stack_env(redis_url: str) -> dict:
    return {"DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": common.database_url(),
            "REDIS_URL": redis_url, "CELERY_BROKER_URL": redis_url, "DEBUG": "false", "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "600", "PYTHONPATH": str(common.PROJECT_DIR)}


class CeleryBeat:
    """``celery -A config beat`` (django_celery_beat's database scheduler, the
    production schedule) on the bench database and ``redis_url``."""

    def __init__(self, *, redis_url: str) -> None:
        self.redis_url = redis_url
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-beat-", suffix=".log", delete=False)  # noqa: SIM115
        self.dir = tempfile.mkdtemp(prefix="bench-beat-")

    def __enter__(self):
        env = dict(os.environ)
        env.update(stack_env(self.redis_url))
        command = [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
                   "--pidfile", os.path.join(self.dir, "beat.pid"), "--schedule", os.path.join(self.dir, "schedule")]
        self.process = subprocess.Popen(command, cwd=common.PROJECT_DIR, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def __exit__(self, *exc):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()
        return False


class PosClient:
    """A POS: long-polls the feed, notes when it first sees each order.created (by the
    platform order id), acks every batch; a second thread accepts the new orders."""

    def __init__(self, *, base_url: str, token: str, wait: int) -> None:
        import requests

        self.base_url = base_url
        self.wait = wait
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.accept_session = requests.Session()
        self.accept_session.headers["Authorization"] = f"Token {token}"
        self.seen_at: dict[str, float] = {}          # channel order id -> first seen (wall clock)
        self.order_no: dict[str, str] = {}           # channel order id -> our order number
        self.created_events: dict[str, set] = defaultdict(set)  # channel order id -> order.created event ids
        self.deliveries = Counter()                  # event id -> times delivered
        self.errors: list[str] = []
        self.accepted: set[str] = set()
        self.polls = 0
        self._stop = threading.Event()
        self._to_accept: queue.Queue = queue.Queue()
        self._threads = [threading.Thread(target=self._poll_loop, daemon=True, name="pos-poll"),
                         threading.Thread(target=self._accept_loop, daemon=True, name="pos-accept")]

    def start(self):
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._to_accept.put(None)
        for thread in self._threads:
            thread.join(timeout=self.wait + 15)

    def _poll_loop(self) -> None:
        url = f"{self.base_url}/api/pos/v1/events"
        ack_url = f"{self.base_url}/api/pos/v1/events/ack"
        while not self._stop.is_set():
            try:
                answer = self.session.get(url, params={"wait": self.wait}, timeout=self.wait + 30)
            except Exception as exc:  # noqa: BLE001 (recorded, the bench fails on it)
                self.errors.append(f"poll: {exc}")
                time.sleep(0.5)
                continue
            now = time.time()
            self.polls += 1
            if answer.status_code != 200:
                self.errors.append(f"poll {answer.status_code} {answer.text[:200]}")
                time.sleep(0.5)
                continue
            events = answer.json()["events"]
            for event in events:
                self.deliveries[event["id"]] += 1
                if event["type"] != "order.created":
                    continue
                channel_id = str(event["order"]["channel_order_no"])
                if channel_id not in self.seen_at:
                    self.seen_at[channel_id] = now
                    self.order_no[channel_id] = event["order"]["order_no"]
                    self._to_accept.put(channel_id)
                self.created_events[channel_id].add(event["id"])
            if events:
                ids = [int(e["id"]) for e in events]
                acked = self.session.post(ack_url, json={"ids": ids}, timeout=30,
                                          headers={"Idempotency-Key": f"ack-{ids[0]}-{ids[-1]}"})
                if acked.status_code != 200:
                    self.errors.append(f"ack {acked.status_code} {acked.text[:200]}")

    def _accept_loop(self) -> None:
        while True:
            channel_id = self._to_accept.get()
            if channel_id is None:
                return
            self.verb(channel_id, "accept", session=self.accept_session)
            self.accepted.add(channel_id)

    def verb(self, channel_id: str, verb: str, *, session=None):
        order_no = self.order_no[channel_id]
        answer = (session or self.accept_session).post(
            f"{self.base_url}/api/pos/v1/orders/{order_no}/{verb}", json={}, timeout=30,
            headers={"Idempotency-Key": f"bench-{verb}-{order_no}"})
        if answer.status_code != 200:
            self.errors.append(f"{verb} {order_no}: {answer.status_code} {answer.text[:200]}")
        return answer


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def summary(values_s: list[float]) -> dict:
    return {"count": len(values_s), "p50_ms": pct(values_s, 0.50) * 1000, "p99_ms": pct(values_s, 0.99) * 1000,
            "max_ms": max(values_s, default=float("nan")) * 1000,
            "min_ms": min(values_s, default=float("nan")) * 1000}


def create_orders(*, sim, pos: PosClient, count: int, gap: float, push: bool, timeout: float) -> dict:
    """``count`` orders at the simulator, ``gap`` apart; waits until the POS saw them all."""
    made: dict[str, float] = {}
    started = time.perf_counter()
    for index in range(count):
        pause = started + index * gap - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        before = time.time()
        answer = sim.post("/_sim/meituan/orders", {"shop": MEITUAN_SHOP, "count": 1, "push": push})
        made[str(answer["orders"][0]["order_id"])] = before
    done = wait_until(lambda: all(oid in pos.seen_at for oid in made), timeout=timeout, tick=0.1)
    latencies = [pos.seen_at[oid] - t for oid, t in made.items() if oid in pos.seen_at]
    return {"created": made, "done": done, "seen": len(latencies), "started": min(made.values(), default=0.0),
            "finished": max(pos.seen_at.get(oid, 0.0) for oid in made) if made else 0.0, **summary(latencies)}


def ready_orders(*, sim, pos: PosClient, channel_ids: list[str], gap: float, timeout: float) -> dict:
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for index, channel_id in enumerate(channel_ids):
        pause = started + index * gap - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        sent[channel_id] = time.time()
        pos.verb(channel_id, "ready")

    def arrived() -> dict[str, list[float]]:
        at = defaultdict(list)
        for call in sim.calls(MEAL_READY):
            body = call.get("body") or {}
            if call["method"] == "POST" and isinstance(body, dict):
                at[str(body.get("order_id"))].append(call["at"])
        return at

    done = wait_until(lambda: all(oid in arrived() for oid in sent), timeout=timeout, tick=0.25)
    at = arrived()
    latencies = [min(at[oid]) - t for oid, t in sent.items() if at.get(oid)]
    return {"sent": len(sent), "done": done, "received": len(latencies), **summary(latencies)}


def binding_pull_every(binding, *, seconds: int, start_now: bool) -> None:
    from datetime import timedelta

    from django.utils import timezone

    binding.pull_interval_seconds = seconds
    binding.next_pull_at = timezone.now() if start_now else timezone.now() + timedelta(days=1)
    binding.save(update_fields=["pull_interval_seconds", "next_pull_at"])


def main(argv=None) -> dict:
    args = parse(argv or [])
    common.setup_django()
    common.database_prepare()
    common.database_wipe()
    import redis
    from django.conf import settings
    from django.utils import timezone

    from channels.models import StoreBinding
    from orders.models import StoreFeedEvent
    from pos.services import pos_terminal_create

    redis.Redis.from_url(args.redis_url).flushdb()
    os.environ["REDIS_URL"] = args.redis_url
    celery_use_broker(args.redis_url)
    n, wait = args.orders, max(0, min(args.pos_wait, 25))
    print(f"{NAME}: {n} orders per phase, {args.gap}s apart; pull interval {args.pull_interval}s; POS wait={wait}; "
          f"celery {args.concurrency} processes + beat on {args.redis_url}; gunicorn {args.http_workers} x "
          f"{args.http_threads}", flush=True)

    with SimulatorProcess() as sim, \
            common.GunicornServer(workers=args.http_workers, threads=args.http_threads,
                                  env=stack_env(args.redis_url)) as server:
        shop, binding = meituan_store_bound(sim=sim)
        binding_pull_every(binding, seconds=3600, start_now=False)  # pushed phase: no pulls
        menu = [{"app_food_code": food, "food_name": f"菜 {code}", "sku_id": sku_id, "price": price,
                 "box_price": box} for code, (food, sku_id, price, box) in MENU.items()]
        sim.post("/_sim/meituan/shops", {"app_poi_code": MEITUAN_SHOP, "app_id": MEITUAN_APP_ID,
                                         "secret": MEITUAN_SECRET, "menu": menu,
                                         "push_url": server.url("/channels/push/meituan")})
        token = pos_terminal_create(store=shop.store, name="bench POS").token
        with CeleryWorkers(redis_url=args.redis_url, concurrency=args.concurrency) as workers, \
                CeleryBeat(redis_url=args.redis_url) as beat:
            from bench.relay import noop_run

            if not noop_run(count=args.concurrency * 2, timeout=90)["done"]:
                raise SystemExit(f"celery workers did not start; log: {workers.log.name}")
            pos = PosClient(base_url=server.url(""), token=token, wait=wait).start()
            try:
                # warm-up: one pushed order (first requests of each process), not measured
                warm = create_orders(sim=sim, pos=pos, count=1, gap=0, push=True, timeout=args.timeout)
                pushed = create_orders(sim=sim, pos=pos, count=n, gap=args.gap, push=True, timeout=args.timeout)
                print(f"  pushed: {pushed['seen']}/{n} seen; p50 {pushed['p50_ms']:.0f} ms, p99 "
                      f"{pushed['p99_ms']:.0f} ms, max {pushed['max_ms']:.0f} ms", flush=True)

                # pulled: turn pulling on and let one pull catch up with the pushed orders first
                since = timezone.now()
                binding_pull_every(binding, seconds=args.pull_interval, start_now=True)
                so_far = 1 + n  # the warm-up and the pushed orders: the day sequence the pull must reach

                def caught_up_with_push() -> bool:
                    fresh = StoreBinding.objects.get(pk=binding.pk)
                    reached = max((int(v) for v in (fresh.pull_state or {}).values()
                                   if isinstance(v, int | str) and str(v).isdigit()), default=0)
                    return (fresh.last_pull_at or since) > since and reached >= so_far

                caught_up = wait_until(caught_up_with_push, timeout=args.timeout, tick=0.2)
                pulled = create_orders(sim=sim, pos=pos, count=n, gap=args.gap, push=False, timeout=args.timeout)
                pulled["caught_up"] = caught_up
                print(f"  pulled: {pulled['seen']}/{n} seen; p50 {pulled['p50_ms']:.0f} ms, p99 "
                      f"{pulled['p99_ms']:.0f} ms, max {pulled['max_ms']:.0f} ms", flush=True)

                every_id = list(warm["created"]) + list(pushed["created"]) + list(pulled["created"])
                accepted = wait_until(lambda: len(pos.accepted) >= len(every_id), timeout=args.timeout)
                confirmed = wait_until(lambda: len({str((c.get("body") or {}).get("order_id"))
                                                    for c in sim.calls(CONFIRM)}) >= len(every_id),
                                       timeout=args.timeout, tick=0.25)
                ready = ready_orders(sim=sim, pos=pos, channel_ids=list(pushed["created"]), gap=args.gap,
                                     timeout=args.timeout)
                print(f"  ready: {ready['received']}/{n} meal-ready calls; p50 {ready['p50_ms']:.0f} ms, p99 "
                      f"{ready['p99_ms']:.0f} ms, max {ready['max_ms']:.0f} ms", flush=True)
                time.sleep(1.0)  # a late duplicate would show in the counts below
            finally:
                pos.stop()
        worker_exit, beat_exit = workers.process.returncode, beat.process.returncode
        calls = sim.calls("/api/v1/order/")
        pulls_at = sorted(c["at"] for c in sim.calls("/api/v1/order/getOrderDaySeq"))

    # Pulls (one getOrderDaySeq each) during the pulled phase: their period is what the latency follows.
    window = [t for t in pulls_at if pulled["started"] <= t <= pulled["finished"]]
    periods = [b - a for a, b in itertools.pairwise(window)]
    pulled["pull_periods_s"] = [round(p, 2) for p in periods]
    pulled["pull_period_median_s"] = pct(periods, 0.5)

    # --- checks
    per_order: dict[str, Counter] = defaultdict(Counter)
    non_200 = 0
    for call in calls:
        body = call.get("body") or {}
        if call["method"] == "POST" and isinstance(body, dict):
            per_order[str(body.get("order_id"))][call["route"]] += 1
            non_200 += call["status"] != 200
    created_rows = StoreFeedEvent.objects.filter(store=shop.store, type="order.created").count()
    unknown = set(pos.seen_at) - set(every_id)
    seen_once = (all(len(pos.created_events[oid]) == 1 for oid in every_id) and not unknown
                 and created_rows == len(every_id))
    redelivered = sum(1 for count in pos.deliveries.values() if count > 1)
    confirm_once = all(per_order[oid][CONFIRM] == 1 for oid in every_id)
    meal_once = (all(per_order[oid][MEAL_READY] == 1 for oid in pushed["created"])
                 and not any(per_order[oid][MEAL_READY] for oid in pulled["created"]))

    aims = {"pushed": PUSH_AIM_S * 1000, "pulled": (args.pull_interval + 1) * 1000, "ready": READY_AIM_S * 1000}
    print(f"{NAME} results ({n} orders per phase, wall clock; aims on p99):")
    for label, figures, what in (("pushed", pushed, "simulator create -> POS sees order.created"),
                                 ("pulled", pulled, (f"simulator create -> POS sees order.created, pull every "
                                                     f"{args.pull_interval}s")),
                                 ("ready", ready, "POS ready -> simulator gets preparationMealComplete")):
        met = figures["p99_ms"] < aims[label]
        print(f"  {label:7s} {what}: p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms, max "
              f"{figures['max_ms']:.0f} ms (min {figures['min_ms']:.0f} ms) | aim p99 < {aims[label]:.0f} ms: "
              f"{'met' if met else 'NOT met'}", flush=True)
    print(f"  pulls during the pulled phase: {len(window)}, periods {pulled['pull_periods_s']} s (binding interval "
          f"{args.pull_interval} s; beat runs channels.schedule_due_pulls every "
          f"{settings.PERIODIC_JOBS['pull-platform-orders']['every']} s)")
    print(f"  POS: {pos.polls} polls, {len(pos.deliveries)} events, {redelivered} delivered more than once")
    ok = True
    ok &= common.check("every order seen by the POS, each exactly once (one order.created each)",
                       pushed["done"] and pulled["done"] and seen_once,
                       f"{len(pos.seen_at)} seen of {len(every_id)}, {created_rows} order.created rows, "
                       f"{len(unknown)} unknown")
    ok &= common.check("every POS call answered 200", not pos.errors, f"{len(pos.errors)} errors {pos.errors[:3]}")
    ok &= common.check("every order accepted, the simulator got one confirm each", accepted and confirmed
                       and confirm_once, f"{len(pos.accepted)} accepted")
    ok &= common.check("one meal-ready call per ready order, none for the others", ready["done"] and meal_once,
                       f"{ready['received']} of {ready['sent']}")
    ok &= common.check("simulator answered every call 200", non_200 == 0, f"{non_200} non-200")
    ok &= common.check("the first pull caught up before the pulled phase", bool(pulled["caught_up"]))
    ok &= common.check("workers and beat stopped cleanly", worker_exit == 0 and beat_exit in (0, -signal.SIGTERM),
                       f"worker {worker_exit}, beat {beat_exit}")
    for figures in (warm, pushed, pulled):
        figures.pop("created", None)
    result = {"bench": NAME, "orders": n, "gap": args.gap, "pull_interval": args.pull_interval, "pos_wait": wait,
              "concurrency": args.concurrency, "pushed": pushed, "pulled": pulled, "ready": ready,
              "aims_ms": aims, "aims_met": {k: v["p99_ms"] < aims[k] for k, v in
                                            (("pushed", pushed), ("pulled", pulled), ("ready", ready))},
              "polls": pos.polls, "redelivered": redelivered, "pos_errors": pos.errors[:5],
              "worker_exit": worker_exit, "beat_exit": beat_exit, "ok": bool(ok)}
    common.emit(result)
    return result
