"""board: requests/s of the live order board's refresh (the columns fragment the page polls,
GET /workspace/board/<store>/columns/ with HX-Request) for a store with 50 open orders, beside a
bare Django JSON view.

Both run on the same gunicorn server (with ``REDIS_URL``, Redis database 11 by default), from the
same client threads, each logged in as the store's manager (a session cookie made for the bench),
interleaved in ``--rounds`` slices (ping, board, ping, ...) so that a change of load hits both
alike:

1. baseline: ``GET /ping/`` (core.views.ping_view, no database);
2. poll: what the page sends every second, with the version of the board it shows (``?v=``), the
   board unchanged: answered 204 (checked on every answer);
3. render: the columns of a store with ``--orders`` open orders (new, preparing, ready and out for
   delivery), two lines each, rendered in full (a poll after a change, or the first load); every
   answer is checked to hold all of them.

Also prints the SQL queries of one full refresh (Django test client, after a warm-up) with 1, 10
and 50 open orders; the check is that the count does not grow with the number of orders. Aim: the
poll at least 0.3 of ``/ping/`` (issue 14).
"""

import argparse
import os
from decimal import Decimal

from bench import common
from bench.order_create import phase
from bench.pos_feed import _merge

NAME = "board"
QUERY_ORDERS = (1, 10, 50)
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
AIM = 0.3


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50, help="open orders on the measured board")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured duration of each phase (all rounds)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each phase")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices each phase is cut into")
    parser.add_argument("--clients", type=int, default=16, help="client threads")
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--http-threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_BOARD_REDIS_URL", DEFAULT_REDIS_URL),
                        help="REDIS_URL of the web server ('' = embedded mode, no Redis)")
    return parser.parse_args(argv)


def open_orders_create(*, store, count: int) -> list:
    """``count`` open orders of ``store`` spread over the four columns."""
    from core.actors import Actor
    from orders.services import LineInput, order_create, order_transition

    made = []
    steps = ([], ["accept"], ["accept", "mark_ready"], ["accept", "mark_ready", "dispatch"])
    for i in range(count):
        lines = [LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2, spec="大份"),
                 LineInput(name="米饭", unit_price=Decimal("2.00"), quantity=2)]
        order = order_create(store=store, channel="miniapp", order_type="delivery", lines=lines,
                             actor=Actor.system("bench"), contact_name="张三", contact_phone="13800001234",
                             address={"detail": "上海市静安区南京西路 1 号"}, customer_note="少放辣", paid=True)
        for action in steps[i % len(steps)]:
            order = order_transition(order_id=order.pk, action=action, actor=Actor(kind="pos", id="bench"))
        made.append(order)
    return made


def manager_create(*, store, username: str):
    from accounts.models import StaffMembership, StaffRole
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password="bench-pass-1", is_staff=True)
    StaffMembership.objects.create(user=user, brand=store.brand, store=store, role=StaffRole.STORE_MANAGER)
    return user


def session_cookie(user) -> str:
    """A logged-in session of ``user`` for the HTTP clients (as the admin's login would make)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"  # the one that loads users
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store.session_key


def session_version(session, url: str) -> str:
    """The version the board's page would send back (from one full render)."""
    import re

    answer = session.get(url, timeout=60)
    answer.raise_for_status()
    return re.search(rb'\?v=([0-9a-f]+)"', answer.content).group(1).decode()


def query_counts(*, brand) -> dict[int, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import Store

    counts = {}
    for n in QUERY_ORDERS:
        store = Store.objects.create(brand=brand, code=f"q{n}", name=f"Query store {n}")
        open_orders_create(store=store, count=n)
        client = Client()
        client.force_login(manager_create(store=store, username=f"q{n}"))
        url = f"/workspace/board/{store.pk}/columns/"
        client.get(url, headers={"HX-Request": "true"})  # warm-up
        with CaptureQueriesContext(connection) as captured:
            answer = client.get(url, headers={"HX-Request": "true"})
        if answer.status_code != 200 or answer.content.count(b'class="card ') != n:
            raise SystemExit(f"query count request failed: {answer.status_code}")
        counts[n] = len(captured)
    return counts


def main(argv=None) -> dict:
    args = parse(argv or [])
    common.setup_django()
    common.database_prepare()
    common.database_wipe()
    if args.redis_url:
        import redis

        redis.Redis.from_url(args.redis_url).flushdb()
    shop = common.shop_create(code="board")
    counts = query_counts(brand=shop.brand)
    constant = len(set(counts.values())) == 1
    print(f"{NAME}: {args.clients} client threads, {args.seconds:.0f}s per phase, {args.orders} open orders, "
          f"web {'with Redis ' + args.redis_url if args.redis_url else 'embedded (no Redis)'}", flush=True)
    print("  SQL queries per board refresh: " + ", ".join(f"{n} orders: {q}" for n, q in counts.items())
          + f" -> {'constant' if constant else 'NOT constant'}", flush=True)

    open_orders_create(store=shop.store, count=args.orders)
    cookie = session_cookie(manager_create(store=shop.store, username="bench-manager"))
    env = {"REDIS_URL": args.redis_url} if args.redis_url else {"REDIS_URL": ""}
    with common.GunicornServer(workers=args.http_workers, threads=args.http_threads, env=env) as server, \
            common.sessions(args.clients) as clients:
        for session in clients:
            session.cookies.set("sessionid", cookie)
            session.headers["HX-Request"] = "true"
        ping_url, board_url = server.url("/ping/"), server.url(f"/workspace/board/{shop.store.pk}/columns/")
        version = session_version(clients[0], board_url)
        wrong: list = []

        def ping(session):
            return session.get(ping_url, timeout=60)

        def poll(session):
            answer = session.get(board_url, params={"v": version}, timeout=60, allow_redirects=False)
            if answer.status_code != 204:
                wrong.append(("poll", answer.status_code))
            return answer

        def render(session):
            answer = session.get(board_url, timeout=60, allow_redirects=False)
            if answer.status_code != 200 or answer.content.count(b'class="card ') != args.orders:
                wrong.append(("render", answer.status_code, answer.content.count(b'class="card ')))
            return answer

        for request in (ping, poll, render):
            phase(clients=clients, request=request, seconds=0, warmup=args.warmup)
        slices = {"baseline": [], "poll": [], "render": []}
        for _round in range(args.rounds):
            for key, request in (("baseline", ping), ("poll", poll), ("render", render)):
                slices[key].append(phase(clients=clients, request=request, seconds=args.seconds / args.rounds,
                                         warmup=0))
    baseline, board_run, render_run = (_merge(slices[k]) for k in ("baseline", "poll", "render"))
    ratio = common.ratio(board_run["rps"], baseline["rps"])
    render_ratio = common.ratio(render_run["rps"], baseline["rps"])
    print(f"{NAME} poll of an unchanged board with {args.orders} open orders (204): {board_run['rps']:.1f} req/s | "
          f"baseline bare JSON view /ping/: {baseline['rps']:.1f} req/s | ratio {ratio:.2f} (aim >= {AIM})", flush=True)
    print(f"{NAME} full render of the {args.orders} cards (after a change): {render_run['rps']:.1f} req/s | "
          f"ratio {render_ratio:.2f}", flush=True)
    ok = True
    ok &= common.check("no failed request", not (board_run["error_count"] or baseline["error_count"]
                                                 or render_run["error_count"]),
                       f"{board_run['errors']} {render_run['errors']} {baseline['errors']}")
    ok &= common.check(f"every poll answered 204, every render held the {args.orders} cards", not wrong,
                       f"{wrong[:5]}")
    ok &= common.check("queries independent of the number of orders", constant, str(counts))
    print(f"  aim ratio >= {AIM}: {'met' if ratio >= AIM else 'NOT met'} ({ratio:.2f})", flush=True)
    result = {"bench": NAME, "orders": args.orders, "clients": args.clients, "queries": counts,
              "poll_rps": board_run["rps"], "render_rps": render_run["rps"], "baseline_rps": baseline["rps"],
              "ratio": ratio, "render_ratio": render_ratio,
              "aim_met": ratio >= AIM, "wrong": wrong[:5], "ok": bool(ok)}
    common.emit(result)
    return result
