"""pos_feed: requests/s of the POS event feed (GET /api/pos/v1/events, no long-poll
wait) beside a bare Django JSON view, idle and with 5 new events.

Both run on the same gunicorn server (with ``REDIS_URL``, as in production: the
throttle's cache and the feed's wake-up channel are Redis; ``--redis-url ''`` runs
the embedded mode), from the same client threads (one requests.Session each), for
the same duration, interleaved in ``--rounds`` slices (ping, idle, 5 new, ping, ...)
so that a change of load on a shared machine hits all three alike:

1. baseline: ``GET /ping/`` (core.views.ping_view, no database);
2. idle: ``GET events?wait=0`` of a store with no unacknowledged event (it has
   ``--acked`` acknowledged ones, as a store that has been running has), one
   cashier terminal per client thread;
3. 5 new: ``GET events?wait=0`` of another store whose 5 paid Meituan orders have
   unacknowledged ``order.created`` events; nobody acks them, so every request
   answers exactly those 5 (checked on every answer).

Also prints the SQL queries of one feed request (Django test client, after a warm-up)
with 0, 1, 5 and 20 unacknowledged events; the check is that the count does not grow
with the number of events (1 = 5 = 20, and 0 is not more).
"""

import argparse
import os
from decimal import Decimal

from bench import common
from bench.order_create import _merge, phase  # noqa: F401  (_merge: also the board bench's)

NAME = "pos_feed"
EVENTS_PATH = "/api/pos/v1/events"
NEW_EVENTS = 5
QUERY_EVENTS = (0, 1, 5, 20)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
IDLE_AIM = 0.5


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured duration of each phase (all rounds)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each phase")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices each phase is cut into")
    parser.add_argument("--clients", type=int, default=16, help="client threads")
    parser.add_argument("--acked", type=int, default=200, help="acknowledged events of the idle store")
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--http-threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_POS_REDIS_URL", DEFAULT_REDIS_URL),
                        help="REDIS_URL of the web server ('' = embedded mode, no Redis)")
    return parser.parse_args(argv)


def paid_orders_create(*, store, count: int, prefix: str) -> list:
    """``count`` paid Meituan delivery orders of ``store`` (each writes its order.created event)."""
    from core.actors import Actor
    from orders.services import LineInput, order_create

    made = []
    for i in range(count):
        lines = [LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2, sku_code="BX001"),
                 LineInput(name="鱼香肉丝", unit_price=Decimal("22.00"), quantity=1, sku_code="BX002")]
        made.append(order_create(
            store=store, channel="meituan", order_type="delivery", lines=lines, actor=Actor.system("bench"),
            channel_order_id=f"{prefix}{i}", channel_order_no=f"{prefix}{i}", contact_name="张三",
            contact_phone="13800001234", address={"text": "上海市静安区南京西路 1 号"}, paid=True,
        ))
    return made


def terminals_create(*, store, count: int) -> list[str]:
    from pos.services import pos_terminal_create

    return [pos_terminal_create(store=store, name=f"bench-pos-{i}").token for i in range(count)]


def query_counts(*, brand) -> dict[int, int]:
    """SQL queries of one GET events (test client, in process) by number of unacked events."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Store

    counts = {}
    for n in QUERY_EVENTS:
        store = Store.objects.create(brand=brand, code=f"q{n}", name=f"Query store {n}")
        paid_orders_create(store=store, count=n, prefix=f"Q{n}-")
        token = terminals_create(store=store, count=1)[0]
        client = Client(headers={"authorization": f"Token {token}"})
        client.get(EVENTS_PATH)  # warm-up: one-off costs, and the terminal's last_seen_at write
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(EVENTS_PATH, {"wait": 0})
        if answer.status_code != 200 or len(answer.json()["events"]) != n:
            raise SystemExit(f"query count request failed: {answer.status_code} {answer.content[:300]!r}")
        counts[n] = len(captured)
    return counts


def main(argv=None) -> dict:
    args = parse(argv or [])
    common.setup_django()
    common.database_prepare()
    common.database_wipe()
    from django.utils import timezone

    from orders.models import StoreFeedEvent

    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    shop = common.shop_create(code="posfeed")
    idle_store = shop.store
    from accounts.models import Store

    busy_store = Store.objects.create(brand=shop.brand, code="posfeed-s2", name="Bench store with new events")

    counts = query_counts(brand=shop.brand)
    counts_line = ", ".join(f"{n} events: {q}" for n, q in counts.items())
    constant = len({counts[n] for n in QUERY_EVENTS if n}) == 1 and counts[0] <= counts[QUERY_EVENTS[-1]]
    print(f"{NAME}: {args.clients} client threads, {args.seconds:.0f}s per phase, "
          f"web {'with Redis ' + args.redis_url if args.redis_url else 'embedded (no Redis)'}", flush=True)
    print(f"  SQL queries per GET events: {counts_line} -> {'constant' if constant else 'NOT constant'}", flush=True)

    # The idle store has been running: its past events are all acknowledged.
    paid_orders_create(store=idle_store, count=args.acked, prefix="ACK-")
    StoreFeedEvent.objects.filter(store=idle_store).update(acked_at=timezone.now(), acked_by="bench")
    new_orders = paid_orders_create(store=busy_store, count=NEW_EVENTS, prefix="NEW-")
    new_ids = sorted(str(e) for e in StoreFeedEvent.objects.filter(store=busy_store, acked_at__isnull=True)
                     .values_list("pk", flat=True))
    idle_tokens = terminals_create(store=idle_store, count=args.clients)
    busy_tokens = terminals_create(store=busy_store, count=args.clients)

    env = {"REDIS_URL": args.redis_url} if args.redis_url else {"REDIS_URL": ""}
    with common.GunicornServer(workers=args.http_workers, threads=args.http_threads, env=env) as server, \
            common.sessions(args.clients) as idle_clients, common.sessions(args.clients) as busy_clients:
        for session, token in zip(idle_clients, idle_tokens):
            session.headers["Authorization"] = f"Token {token}"
        for session, token in zip(busy_clients, busy_tokens):
            session.headers["Authorization"] = f"Token {token}"
        ping_url, events_url = server.url("/ping/"), server.url(EVENTS_PATH)
        wrong: list = []

        def ping(session):
            return session.get(ping_url, timeout=60)

        def idle(session):
            answer = session.get(events_url, params={"wait": 0}, timeout=60)
            if answer.status_code == 200 and answer.json()["events"]:
                wrong.append(("idle", len(answer.json()["events"])))
            return answer

        def busy(session):
            answer = session.get(events_url, params={"wait": 0}, timeout=60)
            if answer.status_code == 200:
                got = [e["id"] for e in answer.json()["events"]]
                if sorted(got) != new_ids:
                    wrong.append(("5 new", got))
            return answer

        # The machine is shared: the three measurements are interleaved in --rounds slices
        # (ping, idle, 5 new, ping, ...) so a change of load hits all of them alike.
        for clients, request in ((idle_clients, ping), (idle_clients, idle), (busy_clients, busy)):
            phase(clients=clients, request=request, seconds=0, warmup=args.warmup)
        slices = {"baseline": [], "idle": [], "new5": []}
        for _round in range(args.rounds):
            for key, clients, request in (("baseline", idle_clients, ping), ("idle", idle_clients, idle),
                                          ("new5", busy_clients, busy)):
                slices[key].append(phase(clients=clients, request=request, seconds=args.seconds / args.rounds,
                                         warmup=0))
    baseline, idle_run, busy_run = (_merge(slices[k]) for k in ("baseline", "idle", "new5"))

    still_unacked = StoreFeedEvent.objects.filter(store=busy_store, acked_at__isnull=True).count()
    base_rps = baseline["rps"]
    idle_ratio = common.ratio(idle_run["rps"], base_rps)
    busy_ratio = common.ratio(busy_run["rps"], base_rps)
    per_round = ", ".join(f"{b['rps']:.0f}/{i['rps']:.0f}/{f['rps']:.0f}"
                          for b, i, f in zip(slices["baseline"], slices["idle"], slices["new5"]))
    print(f"  {args.rounds} interleaved rounds of {args.seconds / args.rounds:.1f}s each; req/s per round "
          f"(ping/idle/5 new): {per_round}", flush=True)
    print(common.line(f"{NAME} idle (0 new events, wait=0)", idle_run["rps"], "req/s", "bare JSON view /ping/",
                      base_rps, "req/s", aim=IDLE_AIM), flush=True)
    print(common.line(f"{NAME} 5 new events (wait=0)", busy_run["rps"], "req/s", "bare JSON view /ping/",
                      base_rps, "req/s"), flush=True)
    print(f"  {idle_run['requests']} idle polls in {idle_run['seconds']:.2f}s, {busy_run['requests']} polls with "
          f"5 events in {busy_run['seconds']:.2f}s (gunicorn {args.http_workers} workers x {args.http_threads} "
          f"threads)", flush=True)
    errors = idle_run["error_count"] + busy_run["error_count"] + baseline["error_count"]
    ok = True
    ok &= common.check("no failed requests", errors == 0,
                       f"{errors} errors {(idle_run['errors'] + busy_run['errors'])[:2]}")
    ok &= common.check("idle polls answered no event, polls of the other store exactly its 5", not wrong,
                       f"{len(wrong)} wrong answers {wrong[:2]}")
    ok &= common.check("the 5 events stayed unacknowledged", still_unacked == NEW_EVENTS and len(new_ids) == NEW_EVENTS,
                       f"{still_unacked} unacked")
    ok &= common.check("queries independent of the number of events", constant, counts_line)
    met = idle_ratio >= IDLE_AIM
    print(f"  aim idle ratio >= {IDLE_AIM}: {'met' if met else 'NOT met'} ({idle_ratio:.2f})", flush=True)
    result = {"bench": NAME, "clients": args.clients, "redis": bool(args.redis_url), "query_counts": counts,
              "rounds": args.rounds, "baseline": baseline, "idle": idle_run, "new5": busy_run,
              "idle_ratio": idle_ratio, "new5_ratio": busy_ratio, "idle_aim_met": met,
              "new_orders": len(new_orders), "still_unacked": still_unacked, "wrong_answers": len(wrong),
              "gunicorn": f"{args.http_workers} workers x {args.http_threads} threads", "ok": bool(ok)}
    common.emit(result)
    return result
