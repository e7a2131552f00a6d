"""hot_sku: C buyers race for one on-order SKU with S units.

Each buyer (its own customer) places 1-unit orders until the SKU is sold out,
first through the service layer (orders.services.checkout.order_place), with
the C buyers spread over P processes of C/P threads each (a web tier runs
several processes; one Python process runs one thread at a time), then through
HTTP (POST /api/v1/orders on gunicorn, P workers of C/P threads), timed after a
warm-up of --http-warmup units of another SKU on the same fresh server (whose
own rate is printed too). Placements
that arrive together in one process are written as one batch
(orders.services.placement), so the figure grows with the buyers per process:
the run is repeated at a smaller reference concurrency (16 buyers), with its
own baseline. A one-process run with all C threads is printed as a reference.
Checks: exactly S orders, stock 0 (never negative), ledger conserved.

Baseline, same run, same concurrency, same kind of row: a raw psycopg
transaction ``BEGIN; UPDATE inventory_stock SET on_hand = on_hand - 1 WHERE
id=%s AND on_hand >= 1; COMMIT`` until the row is empty.
"""

import argparse
import time
import uuid

from bench import common

NAME = "hot_sku"
SERVICE_AIM = 0.5
STOP_CODES = {"out_of_stock", "sku_unavailable"}  # sold out (at the deduction / at the pre-check)


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--stock", type=int, default=2000, help="units of the hot SKU (S)")
    parser.add_argument("--threads", type=int, default=64, help="concurrent buyers (C)")
    parser.add_argument("--processes", type=int, default=2,
                        help="processes the service-layer buyers are spread over (P; C/P threads each)")
    parser.add_argument("--baseline-stock", type=int, default=5000, help="units the raw SQL baseline takes")
    parser.add_argument("--reference-threads", type=int, default=16,
                        help="buyers of the reference run at a smaller concurrency (0: skip)")
    parser.add_argument("--reference-stock", type=int, default=500, help="units of the reference run")
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--http-threads", type=int, default=0,
                        help="gunicorn threads per worker (0: C / workers, one per buyer)")
    parser.add_argument("--single-stock", type=int, default=200,
                        help="units for the 1-buyer reference run of the service layer (0: skip)")
    parser.add_argument("--http-warmup", type=int, default=1000,
                        help="units of another SKU sold over HTTP on the fresh server before the timed run (0: none)")
    parser.add_argument("--skip-http", action="store_true")
    return parser.parse_args(argv)


# --- baseline -----------------------------------------------------------------
def _raw_buyer(stock_id: int, taken: list) -> None:
    conn = common.raw_connect()
    try:
        with conn.cursor() as cur:
            while True:
                cur.execute("UPDATE inventory_stock SET on_hand = on_hand - 1 WHERE id = %s AND on_hand >= 1",
                            (stock_id,))
                done = cur.rowcount == 1
                conn.commit()
                if not done:
                    return
                taken.append(1)
    finally:
        conn.close()


def baseline_run(*, shop, units: int, threads: int, code: str = "BASELINE") -> dict:
    from inventory.models import MovementReason, Stock, StockMovement

    sku = common.sku_create(shop=shop, code=code, stock=units)
    stock = Stock.objects.get(store=shop.store, sku=sku)
    taken: list = []
    seconds = common.run_threads(_raw_buyer, [(stock.pk, taken)] * threads)
    stock.refresh_from_db()
    # The raw updates bypass the ledger on purpose; book them so the ledger stays conserved.
    StockMovement.objects.create(stock=stock, delta=-len(taken), reason=MovementReason.ADJUSTMENT,
                                 note="bench: raw SQL baseline")
    return {"tx": len(taken), "seconds": seconds, "tx_per_s": common.rate(len(taken), seconds),
            "stock_after": stock.on_hand, "ok": len(taken) == units and stock.on_hand == 0}


# --- service layer ---------------------------------------------------------------
def _service_buyer(customer, cart, placed: list, errors: list) -> None:
    from core.errors import DomainError
    from orders.services.checkout import order_place

    try:
        while True:
            try:
                order_place(customer=customer, cart=cart, channel="miniapp")
            except DomainError as exc:
                if exc.code not in STOP_CODES:
                    errors.append(f"{exc.code}: {exc.message}")
                return
            except Exception as exc:  # noqa: BLE001 - reported, and the checks fail
                errors.append(repr(exc))
                return
            placed.append(1)
    finally:
        common.close_thread_connection()


def service_run(*, shop, customers, units: int, code: str = "HOT-SVC") -> dict:
    from catalog.models import StockDeductionMode
    from orders.services.cart import Cart, CartItem

    sku = common.sku_create(shop=shop, code=code, stock=units, stock_mode=StockDeductionMode.ON_ORDER)
    cart = Cart(store_id=shop.store.pk, order_type="pickup", items=(CartItem(sku_code=sku.code, qty=1),))
    placed: list = []
    errors: list = []
    seconds = common.run_threads(_service_buyer, [(c, cart, placed, errors) for c in customers])
    return {**_sold_out_checks(shop=shop, sku=sku, units=units, succeeded=len(placed), errors=errors),
            "seconds": seconds, "orders_per_s": common.rate(len(placed), seconds)}


def _process_buyers(database_url: str, customer_ids: list[int], store_id: int, sku_code: str,
                    ready, go, results) -> None:
    """One buyer process: its own Django setup and connections, C/P threads."""
    import os

    # The parent's database (under pytest: the test database), production settings.
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": database_url,
                       "LOG_LEVEL": "ERROR"})
    common.setup_django()
    from accounts.models import Customer
    from orders.services.cart import Cart, CartItem

    cart = Cart(store_id=store_id, order_type="pickup", items=(CartItem(sku_code=sku_code, qty=1),))
    customers = list(Customer.objects.filter(pk__in=customer_ids).select_related("tier"))
    from django.db import connection

    connection.close()
    placed: list = []
    errors: list = []
    ready.put(1)
    go.wait()
    common.run_threads(_service_buyer, [(c, cart, placed, errors) for c in customers])
    from orders.services.placement import placement_batch_stats

    results.put({"placed": len(placed), "errors": errors[:10], "error_count": len(errors), "ended": time.time(),
                 **placement_batch_stats()})


def service_run_processes(*, shop, customers, units: int, processes: int, code: str = "HOT-MP") -> dict:
    import multiprocessing

    from catalog.models import StockDeductionMode
    from django.db import connections

    sku = common.sku_create(shop=shop, code=code, stock=units, stock_mode=StockDeductionMode.ON_ORDER)
    database_url = common.database_url()
    connections.close_all()
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    groups = [[c.pk for c in customers[i::processes]] for i in range(processes)]
    workers = [context.Process(target=_process_buyers, args=(database_url, ids, shop.store.pk, sku.code, ready, go, results))
               for ids in groups if ids]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.get(timeout=120)
    started = time.time()
    go.set()
    reports = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    seconds = max(r["ended"] for r in reports) - started
    placed = sum(r["placed"] for r in reports)
    errors = [e for r in reports for e in r["errors"]]
    batches = sum(r["batches"] for r in reports)
    return {**_sold_out_checks(shop=shop, sku=sku, units=units, succeeded=placed, errors=errors),
            "seconds": seconds, "orders_per_s": common.rate(placed, seconds),
            "layout": f"{len(workers)} processes x {len(groups[0])} threads",
            "mean_batch": sum(r["placements"] for r in reports) / batches if batches else 0.0}


# --- HTTP --------------------------------------------------------------------
def _http_buyer(session, url: str, body: dict, placed: list, errors: list) -> None:
    while True:
        response = session.post(url, json=body, headers={"Idempotency-Key": uuid.uuid4().hex}, timeout=60)
        if response.status_code == 201:
            placed.append(1)
            continue
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = f"http_{response.status_code}"
        if code not in STOP_CODES:
            errors.append(f"{response.status_code} {code}")
        return


def _http_sell_out(*, shop, url: str, clients, sku, units: int) -> dict:
    """Every client buys ``sku`` one unit at a time over HTTP until it is sold out; timed and checked."""
    body = {"store": shop.store.pk, "order_type": "pickup", "lines": [{"sku": sku.code, "qty": 1}]}
    placed: list = []
    errors: list = []
    seconds = common.run_threads(_http_buyer, [(s, url, body, placed, errors) for s in clients])
    return {**_sold_out_checks(shop=shop, sku=sku, units=units, succeeded=len(placed), errors=errors),
            "seconds": seconds, "orders_per_s": common.rate(len(placed), seconds)}


def http_run(*, shop, customers, units: int, workers: int, threads: int, warmup: int = 0) -> dict:
    """The timed run, after ``warmup`` units of another SKU sold through the same fresh server
    (its connections opened, its statements prepared and compiled): a lunch peak or a flash
    sale meets web processes that have been serving for a while. The warm-up's own rate (a
    fresh server) is reported beside the timed one."""
    from catalog.models import StockDeductionMode

    sku = common.sku_create(shop=shop, code="HOT-HTTP", stock=units, stock_mode=StockDeductionMode.ON_ORDER)
    warm_sku = (common.sku_create(shop=shop, code="HOT-WARM", stock=warmup, stock_mode=StockDeductionMode.ON_ORDER)
                if warmup else None)
    tokens = common.customer_tokens(customers)
    with common.GunicornServer(workers=workers, threads=threads) as server, \
            common.sessions(len(customers), tokens=tokens) as clients:
        url = server.url("/api/v1/orders")
        warm = (_http_sell_out(shop=shop, url=url, clients=clients, sku=warm_sku, units=warmup)
                if warm_sku is not None else None)
        timed = _http_sell_out(shop=shop, url=url, clients=clients, sku=sku, units=units)
    return {**timed, "gunicorn": f"{workers} workers x {threads} threads", "warmup": warm}


# --- checks ------------------------------------------------------------------------
def _sold_out_checks(*, shop, sku, units: int, succeeded: int, errors: list) -> dict:
    from inventory.models import MovementReason, Stock, StockMovement
    from inventory.services import stock_ledger_mismatches
    from orders.models import OrderLine

    stock = Stock.objects.get(store=shop.store, sku=sku)
    orders = OrderLine.objects.filter(sku=sku).values("order_id").distinct().count()
    deductions = StockMovement.objects.filter(stock=stock, reason=MovementReason.ORDER).count()
    mismatches = stock_ledger_mismatches()
    result = {
        "succeeded": succeeded, "orders_in_db": orders, "deductions": deductions, "stock_after": stock.on_hand,
        "oversold": max(0, succeeded - units), "ledger_mismatches": mismatches, "errors": errors[:10],
        "error_count": len(errors),
    }
    result["ok"] = (succeeded == units and orders == units and deductions == units and stock.on_hand == 0
                    and not mismatches and not errors)
    return result


def _print_checks(label: str, units: int, r: dict) -> None:
    common.check(f"{label} exactly {units} orders succeeded", r["succeeded"] == units == r["orders_in_db"],
                 f"{r['succeeded']} answered, {r['orders_in_db']} in the database")
    common.check(f"{label} zero oversold", r["oversold"] == 0 and r["stock_after"] == 0,
                 f"stock after {r['stock_after']}")
    common.check(f"{label} ledger conserved", not r["ledger_mismatches"], f"{len(r['ledger_mismatches'])} mismatches")
    if r["errors"]:
        common.check(f"{label} no unexpected errors", False, f"{r['error_count']}: {r['errors'][:3]}")


def queries_per_order(*, shop, customer) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog.models import StockDeductionMode
    from orders.services.cart import Cart, CartItem
    from orders.services.checkout import order_place

    sku = common.sku_create(shop=shop, code="HOT-Q", stock=2, stock_mode=StockDeductionMode.ON_ORDER)
    cart = Cart(store_id=shop.store.pk, order_type="pickup", items=(CartItem(sku_code=sku.code, qty=1),))
    order_place(customer=customer, cart=cart, channel="miniapp")  # warm: the day's sequence row exists now
    with CaptureQueriesContext(connection) as captured:
        order_place(customer=customer, cart=cart, channel="miniapp")
    return len(captured)


def compare(*, shop, customers, stock: int, baseline_stock: int, processes: int, code: str) -> tuple[dict, dict]:
    """Raw SQL baseline and service layer at the concurrency of ``customers``."""
    baseline = baseline_run(shop=shop, units=baseline_stock, threads=len(customers), code=f"BASE-{code}")
    print(f"  baseline raw SQL txn: {baseline['tx']} tx in {baseline['seconds']:.2f}s "
          f"({len(customers)} threads, one process)", flush=True)
    service = service_run_processes(shop=shop, customers=customers, units=stock, processes=processes, code=code)
    return baseline, service


def main(argv=None) -> dict:
    args = parse(argv)
    common.setup_django()
    common.database_prepare()
    common.database_wipe()
    shop = common.shop_create(code="hotsku")
    customers = common.customers_create(shop=shop, count=max(args.threads, args.reference_threads))
    print(f"{NAME}: S={args.stock} units, C={args.threads} buyers, baseline {args.baseline_stock} units", flush=True)

    queries = queries_per_order(shop=shop, customer=customers[0])
    baseline, service = compare(shop=shop, customers=customers[:args.threads], stock=args.stock,
                                baseline_stock=args.baseline_stock, processes=args.processes, code="HOT-MP")
    print(common.line(f"{NAME} service", service["orders_per_s"], "orders/s", "raw SQL txn",
                      baseline["tx_per_s"], "tx/s", aim=SERVICE_AIM), flush=True)
    print(f"  {service['succeeded']} orders in {service['seconds']:.2f}s ({service['layout']}, "
          f"{service['mean_batch']:.1f} placements per batch); {queries} SQL queries per order_place alone",
          flush=True)
    _print_checks("service", args.stock, service)
    ok = baseline["ok"] and service["ok"]
    result = {"bench": NAME, "stock": args.stock, "threads": args.threads, "processes": args.processes,
              "queries_per_order": queries, "baseline": baseline, "service": service,
              "service_ratio": common.ratio(service["orders_per_s"], baseline["tx_per_s"])}
    if args.reference_threads:
        # The same comparison at a smaller concurrency: fewer buyers per process, smaller batches.
        ref_baseline, ref = compare(shop=shop, customers=customers[:args.reference_threads],
                                    stock=args.reference_stock, baseline_stock=args.baseline_stock,
                                    processes=args.processes, code="HOT-REF")
        print(common.line(f"{NAME} service at {args.reference_threads} buyers", ref["orders_per_s"], "orders/s",
                          "raw SQL txn", ref_baseline["tx_per_s"], "tx/s", aim=SERVICE_AIM), flush=True)
        print(f"  {ref['succeeded']} orders in {ref['seconds']:.2f}s ({ref['layout']}, "
              f"{ref['mean_batch']:.1f} placements per batch)", flush=True)
        _print_checks(f"service at {args.reference_threads} buyers", args.reference_stock, ref)
        ok = ok and ref_baseline["ok"] and ref["ok"]
        result.update(reference_baseline=ref_baseline, reference=ref,
                      reference_ratio=common.ratio(ref["orders_per_s"], ref_baseline["tx_per_s"]))
    # The same service with all C buyers as threads of one process (GIL-bound).
    threaded = service_run(shop=shop, customers=customers[:args.threads], units=args.stock, code="HOT-THR")
    print(f"  reference: {args.threads} threads in one process: {threaded['orders_per_s']:.1f} orders/s "
          f"(ratio {common.ratio(threaded['orders_per_s'], baseline['tx_per_s']):.2f}; "
          f"{threaded['succeeded']} orders in {threaded['seconds']:.2f}s)", flush=True)
    _print_checks("service, one process", args.stock, threaded)
    ok = ok and threaded["ok"]
    result.update(service_one_process=threaded,
                  service_one_process_ratio=common.ratio(threaded["orders_per_s"], baseline["tx_per_s"]))
    single = None
    if args.single_stock:
        # Same service, one buyer: shows what the concurrency adds (or costs).
        single = service_run(shop=shop, customers=customers[:1], units=args.single_stock, code="HOT-ONE")
        print(f"  reference: 1 buyer through the service layer: {single['orders_per_s']:.1f} orders/s "
              f"({single['succeeded']} orders in {single['seconds']:.2f}s)", flush=True)
        ok = ok and single["ok"]
    result["service_1_buyer"] = single
    if not args.skip_http:
        threads = args.http_threads or max(1, args.threads // args.http_workers)
        http = http_run(shop=shop, customers=customers[:args.threads], units=args.stock,
                        workers=args.http_workers, threads=threads, warmup=args.http_warmup)
        print(common.line(f"{NAME} HTTP", http["orders_per_s"], "orders/s", "raw SQL txn",
                          baseline["tx_per_s"], "tx/s"), flush=True)
        print(f"  {http['succeeded']} orders in {http['seconds']:.2f}s ({http['gunicorn']}, "
              f"{args.threads} client threads)", flush=True)
        warm = http["warmup"]
        if warm is not None:
            print(f"  the warm-up before it, on the fresh server: {warm['orders_per_s']:.1f} orders/s "
                  f"(ratio {common.ratio(warm['orders_per_s'], baseline['tx_per_s']):.2f}; "
                  f"{warm['succeeded']} orders in {warm['seconds']:.2f}s)", flush=True)
            _print_checks("HTTP warm-up", args.http_warmup, warm)
            ok = ok and warm["ok"]
        _print_checks("HTTP", args.stock, http)
        result["http"] = http
        result["http_ratio"] = common.ratio(http["orders_per_s"], baseline["tx_per_s"])
        ok = ok and http["ok"]
    result["ok"] = ok
    common.emit(result)
    return result
