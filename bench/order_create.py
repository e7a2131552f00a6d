"""order_create: requests/s of POST /api/v1/orders beside a bare Django JSON view.

Both run on the same gunicorn server, from the same client threads (one
requests.Session and one customer each), for the same duration, interleaved in
``--rounds`` slices (ping, create, ping, create, ...) so that a change of load
hits both alike: GET /ping/ (core.views.ping_view, no database) and POST
/api/v1/orders with a unique Idempotency-Key per request (untracked SKUs:
plenty of stock). The ratio of each round is printed too (the spread).
Also prints the SQL queries of one order_place with 1 line and with 20 lines
(they should be equal).
"""

import argparse
import time
import uuid

from bench import common

NAME = "order_create"
QUERY_LINES = (1, 20)


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured duration of each phase (all rounds)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices each phase is cut into")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each phase")
    parser.add_argument("--clients", type=int, default=16, help="client threads")
    parser.add_argument("--lines", type=int, default=1, help="lines per order in the HTTP phase")
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--http-threads", type=int, default=8, help="gunicorn threads per worker")
    return parser.parse_args(argv)


def query_counts(*, shop, customer) -> dict[int, int]:
    """SQL queries of one order_place, by number of lines (tracked on-order SKUs)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog.models import StockDeductionMode
    from orders.services.cart import Cart, CartItem
    from orders.services.checkout import order_place

    skus = [common.sku_create(shop=shop, code=f"Q{i:02d}", stock=1000, stock_mode=StockDeductionMode.ON_ORDER)
            for i in range(max(QUERY_LINES))]
    # Warm up: the first call pays one-off costs (content types, translations).
    order_place(customer=customer, channel="miniapp",
                cart=Cart(store_id=shop.store.pk, order_type="pickup", items=(CartItem(skus[0].code, 1),)))
    counts = {}
    for n in QUERY_LINES:
        cart = Cart(store_id=shop.store.pk, order_type="pickup",
                    items=tuple(CartItem(sku_code=sku.code, qty=1) for sku in skus[:n]))
        with CaptureQueriesContext(connection) as captured:
            order_place(customer=customer, cart=cart, channel="miniapp")
        counts[n] = len(captured)
    return counts


def _client(session, request, deadline_box: list, counts: dict, errors: list) -> None:
    """Send requests until the deadline; count the good answers."""
    while time.perf_counter() < deadline_box[0]:
        response = request(session)
        if response.status_code in (200, 201, 204):  # 204: a poll that found nothing changed
            counts["ok"] = counts.get("ok", 0) + 1  # one dict per thread: no race
        else:
            errors.append(f"{response.status_code} {response.text[:200]}")
            if len(errors) > 50:
                return


def phase(*, clients, request, seconds: float, warmup: float) -> dict:
    """Warm up, then run every client for ``seconds``; the rate counts requests
    answered within the window (from the common start to the last finisher)."""
    errors: list = []
    if warmup > 0:
        box = [time.perf_counter() + warmup]
        common.run_threads(_client, [(s, request, box, {}, errors) for s in clients])
    per_thread = [{} for _ in clients]
    box = [time.perf_counter() + seconds]
    elapsed = common.run_threads(_client, [(s, request, box, c, errors) for s, c in zip(clients, per_thread)])
    ok = sum(c.get("ok", 0) for c in per_thread)
    return {"requests": ok, "seconds": elapsed, "rps": common.rate(ok, elapsed), "errors": errors[:5],
            "error_count": len(errors)}


def _merge(runs: list[dict]) -> dict:
    """One phase's slices (rounds) as one run."""
    requests, seconds = sum(r["requests"] for r in runs), sum(r["seconds"] for r in runs)
    errors = [e for r in runs for e in r["errors"]]
    return {"requests": requests, "seconds": seconds, "rps": common.rate(requests, seconds), "errors": errors[:5],
            "error_count": sum(r["error_count"] for r in runs)}


def main(argv=None) -> dict:
    args = parse(argv)
    common.setup_django()
    common.database_prepare()
    common.database_wipe()
    from orders.models import Order

    shop = common.shop_create(code="ordercreate")
    customers = common.customers_create(shop=shop, count=args.clients)
    print(f"{NAME}: {args.clients} client threads, {args.seconds:.0f}s per phase, {args.lines} line(s) per order",
          flush=True)

    counts = query_counts(shop=shop, customer=customers[0])
    counts_line = ", ".join(f"{n} line{'s' if n > 1 else ''}: {q}" for n, q in counts.items())
    equal = len(set(counts.values())) == 1
    print(f"  SQL queries per order_place: {counts_line} -> {'equal' if equal else 'NOT equal'}", flush=True)

    skus = [common.sku_create(shop=shop, code=f"FREE{i:02d}", stock=None) for i in range(args.lines)]  # untracked
    tokens = common.customer_tokens(customers)
    body = {"store": shop.store.pk, "order_type": "pickup", "lines": [{"sku": s.code, "qty": 1} for s in skus]}
    orders_before = Order.objects.count()

    with common.GunicornServer(workers=args.http_workers, threads=args.http_threads) as server, \
            common.sessions(args.clients, tokens=tokens) as clients:
        ping_url, orders_url = server.url("/ping/"), server.url("/api/v1/orders")

        def ping(session):
            return session.get(ping_url, timeout=60)

        def create(session):
            return session.post(orders_url, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=60)

        phase(clients=clients, request=ping, seconds=0, warmup=args.warmup)
        phase(clients=clients, request=create, seconds=0, warmup=args.warmup)
        pings, creates = [], []
        for _round in range(max(1, args.rounds)):
            pings.append(phase(clients=clients, request=ping, seconds=args.seconds / max(1, args.rounds), warmup=0))
            creates.append(phase(clients=clients, request=create, seconds=args.seconds / max(1, args.rounds),
                                 warmup=0))
        baseline, created = _merge(pings), _merge(creates)
        round_ratios = [common.ratio(c["rps"], p["rps"]) for p, c in zip(pings, creates, strict=True)]

    from core.models import IdempotencyRecord

    orders_made = Order.objects.count() - orders_before
    records = IdempotencyRecord.objects.count()
    # The warm-up creates orders too: every 201 (timed or not) is one order and one stored key.
    print(common.line(f"{NAME} HTTP POST /api/v1/orders", created["rps"], "req/s", "bare JSON view /ping/",
                      baseline["rps"], "req/s"), flush=True)
    print(f"  per round: {' / '.join(f'{r:.2f}' for r in round_ratios)}", flush=True)
    print(f"  {created['requests']} orders in {created['seconds']:.2f}s, {baseline['requests']} pings in "
          f"{baseline['seconds']:.2f}s (gunicorn {args.http_workers} workers x {args.http_threads} threads)",
          flush=True)
    ok_errors = common.check("no failed requests", not created["error_count"] and not baseline["error_count"],
                             f"{created['error_count']} order errors {created['errors'][:2]}, "
                             f"{baseline['error_count']} ping errors")
    ok_orders = common.check("one order and one idempotency record per 201", orders_made == records,
                             f"{orders_made} orders, {records} records")
    ok_queries = common.check("queries independent of line count", equal, counts_line)
    result = {"bench": NAME, "clients": args.clients, "lines": args.lines, "query_counts": counts,
              "baseline": baseline, "orders": created, "ratio": common.ratio(created["rps"], baseline["rps"]), "round_ratios": round_ratios,
              "orders_made": orders_made, "idempotency_records": records,
              "gunicorn": f"{args.http_workers} workers x {args.http_threads} threads",
              "ok": ok_errors and ok_orders and ok_queries}
    common.emit(result)
    return result
