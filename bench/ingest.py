"""ingest: N orders generated at the simulator's Meituan shop, pulled over HTTP
and ingested through channels (``channels.services.binding_pull``, the code the
scheduled pull runs), against fetching the same payloads without ingesting them.

Baseline, same run, same simulator, same orders: the Meituan adapter's
``pull_new_orders`` (getOrderDaySeq, then getOrderIdByDaySeq + getOrderDetail per
order, in chunks of CHANNELS_PULL_MAX_ORDERS, the cursor advanced in memory),
i.e. exactly the HTTP calls of the pull, with no database work.

Then pushes: M more orders made at the simulator are pushed (Meituan ``create_order``,
the order's fields as a signed urlencoded form, as the platform sends them) to the
push receiver on gunicorn by concurrent senders; a push is answered only after its
order is stored, so the rate is orders stored per second. Its baseline is the same
run's fetch-only rate: how fast the platform can hand us orders either way.

Checks: exactly N (+ M) orders exist, once each (no duplicate channel order id), their
ids are the simulator's; a second ingest of already-pulled payloads, and a second
push of already-pushed ones, creates nothing; every push was answered ok; every order
took its stock (one ledger row per SKU line); the stock ledger is conserved
(``stock_ledger_mismatches() == []``).
"""

import argparse

from bench import common
from bench.channel_setup import SimulatorProcess, meituan_orders_create, meituan_store_bound

NAME = "ingest"


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000, help="orders generated at the simulator (N)")
    parser.add_argument("--repull", type=int, default=100, help="payloads ingested a second time (must create 0)")
    parser.add_argument("--pushes", type=int, default=5000,
                        help="orders pushed to gunicorn afterwards (0: skip the push phase)")
    parser.add_argument("--push-clients", type=int, default=16, help="concurrent pushes (the platform's senders)")
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--http-threads", type=int, default=8, help="gunicorn threads per worker")
    return parser.parse_args(argv)


def fetch_only(binding) -> tuple[list[dict], float]:
    """Every payload a pull would fetch, through the adapter, without ingesting."""
    from channels.adapters import adapter_for

    adapter = adapter_for(binding.platform)
    binding.pull_state = {}
    payloads: list[dict] = []
    with common.Stopwatch() as watch:
        while True:
            chunk = list(adapter.pull_new_orders(binding))
            if not chunk:
                break
            for pulled in chunk:
                binding.pull_state = adapter.pull_state_after(binding, state=binding.pull_state, pulled=pulled,
                                                              done=not pulled.error)
            payloads += [pulled.payload for pulled in chunk if pulled.payload is not None]
    binding.pull_state = {}
    return payloads, watch.seconds


def ingest_all(binding_id: int) -> dict:
    from channels.services import binding_pull

    pulled = created = pulls = 0
    errors: list[str] = []
    with common.Stopwatch() as watch:
        while True:
            result = binding_pull(binding_id=binding_id)
            pulls += 1
            pulled += result.pulled
            created += result.created
            errors += result.errors
            if result.pulled == 0 or pulls > 100_000:
                break
    return {"pulled": pulled, "created": created, "pulls": pulls, "errors": errors[:5],
            "error_count": len(errors), "seconds": watch.seconds}


def push_forms(*, url: str, payloads: list[dict]) -> list[str]:
    """Meituan order pushes (``create_order``) of ``payloads``, as the platform sends them: the
    order's fields as a urlencoded form with app id, timestamp and signature."""
    import time
    from urllib.parse import urlencode

    from bench.channel_setup import MEITUAN_APP_ID, MEITUAN_SECRET
    from simulator.meituan import meituan_sig

    forms = []
    for payload in payloads:
        params = {key: str(value) for key, value in payload.items()}
        params.update(app_id=MEITUAN_APP_ID, timestamp=str(int(time.time())))
        params["sig"] = meituan_sig(url, params, MEITUAN_SECRET)
        forms.append(urlencode(params))
    return forms


def push_all(*, url: str, forms: list[str], clients: int) -> dict:
    """Every form POSTed once by ``clients`` threads (keep-alive sessions); a push is answered
    only once its order is stored, so when the last answer is in, every order is."""
    import threading

    todo = list(reversed(forms))
    lock = threading.Lock()
    failures: list[str] = []
    answered = [0]

    def sender(session):
        while True:
            with lock:
                if not todo:
                    return
                form = todo.pop()
            answer = session.post(url, data=form, timeout=120,
                                  headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
            with lock:
                answered[0] += 1
                if answer.status_code != 200 or answer.json().get("data") != "ok":
                    failures.append(f"{answer.status_code} {answer.text[:200]}")

    with common.sessions(clients) as sessions:
        seconds = common.run_threads(sender, [(session,) for session in sessions])
    return {"pushed": answered[0], "seconds": seconds, "failures": failures[:5], "failure_count": len(failures)}


def main(argv=None) -> dict:
    args = parse(argv or [])
    common.setup_django()
    common.database_prepare()
    common.database_wipe()
    from django.db.models import Count

    from channels.services import platform_order_ingest
    from inventory.models import MovementReason, StockMovement
    from inventory.services import stock_ledger_mismatches
    from orders.models import Order, OrderLine

    with SimulatorProcess() as sim:
        shop, binding = meituan_store_bound(sim=sim)
        sim_ids = meituan_orders_create(sim=sim, count=args.orders)

        payloads, fetch_seconds = fetch_only(binding)
        baseline = {"fetched": len(payloads), "seconds": fetch_seconds,
                    "orders_per_s": common.rate(len(payloads), fetch_seconds)}
        ingest = ingest_all(binding.pk)
        ingest["orders_per_s"] = common.rate(ingest["created"], ingest["seconds"])

        # Idempotency: the same payloads again (a re-pull or a push of known orders).
        again = [platform_order_ingest(binding=binding, payload=p).created for p in payloads[: args.repull]]

        pushed = None
        if args.pushes:
            from channels.adapters import adapter_for

            push_ids = meituan_orders_create(sim=sim, count=args.pushes)
            adapter = adapter_for("meituan")
            push_payloads = [adapter.fetch_order(binding, str(order_id)) for order_id in push_ids]
            with common.GunicornServer(workers=args.http_workers, threads=args.http_threads) as server:
                url = server.url("/channels/push/meituan/create_order")
                forms = push_forms(url=url, payloads=push_payloads)
                pushed = push_all(url=url, forms=forms, clients=args.push_clients)
                repushed = push_all(url=url, forms=forms[: args.repull], clients=args.push_clients)
            pushed["orders_per_s"] = common.rate(pushed["pushed"], pushed["seconds"])
            pushed["ids"] = {str(i) for i in push_ids}
            pushed["repushed"] = repushed["pushed"]
            pushed["repush_failures"] = repushed["failure_count"]

    orders = Order.objects.filter(channel="meituan", store=shop.store)
    in_db = orders.count()
    duplicates = list(orders.values("channel_order_id").annotate(n=Count("id")).filter(n__gt=1)
                      .values_list("channel_order_id", flat=True)[:5])
    expected_ids = {str(i) for i in sim_ids} | (pushed["ids"] if pushed else set())
    ids_match = set(orders.values_list("channel_order_id", flat=True)) == expected_ids
    expected_orders = args.orders + (args.pushes if pushed else 0)
    sku_lines = OrderLine.objects.filter(order__in=orders, sku__isnull=False).values("order_id", "sku_id").distinct()
    deductions = StockMovement.objects.filter(reason=MovementReason.ORDER).count()
    mismatches = stock_ledger_mismatches()

    print(common.line(f"ingest (Meituan pull, {args.orders} orders)", ingest["orders_per_s"], "orders/s",
                      "fetch only (same adapter calls)", baseline["orders_per_s"], "orders/s"))
    print(f"  {ingest['created']} created in {ingest['seconds']:.1f} s over {ingest['pulls']} pulls; "
          f"fetch only {baseline['fetched']} in {baseline['seconds']:.1f} s")
    ok = True
    ok &= common.check("baseline fetched every order", baseline["fetched"] == args.orders,
                       f"{baseline['fetched']} of {args.orders}")
    ok &= common.check("every order ingested once", ingest["created"] == ingest["pulled"] == args.orders
                       and ingest["error_count"] == 0,
                       f"pulled {ingest['pulled']}, created {ingest['created']}, errors {ingest['error_count']}")
    if pushed:
        print(common.line(f"ingest (Meituan pushes, {args.pushes} orders, {args.push_clients} senders)",
                          pushed["orders_per_s"], "orders/s", "fetch only (same adapter calls)",
                          baseline["orders_per_s"], "orders/s"))
        print(f"  {pushed['pushed']} pushes answered in {pushed['seconds']:.1f} s (gunicorn {args.http_workers} "
              f"workers x {args.http_threads} threads; each answered after its order is stored)")
        ok &= common.check("every push answered ok", pushed["pushed"] == args.pushes and not pushed["failure_count"]
                           and pushed["repush_failures"] == 0,
                           f"{pushed['pushed']} answered, failures {pushed['failures']}, "
                           f"{pushed['repushed']} pushed again ({pushed['repush_failures']} failed)")
    ok &= common.check("orders in the database", in_db == expected_orders and not duplicates and ids_match,
                       f"{in_db} orders (pulled + pushed, pushed again: none new), duplicates {duplicates}, "
                       f"ids match simulator: {ids_match}")
    ok &= common.check("re-ingest creates nothing", sum(again) == 0, f"{sum(again)} of {len(again)} created again")
    ok &= common.check("one ledger row per order and SKU", deductions == sku_lines.count(),
                       f"{deductions} order movements, {sku_lines.count()} order/SKU pairs")
    ok &= common.check("ledger conserved", mismatches == [], f"{len(mismatches)} mismatches")
    result = {
        "bench": NAME, "orders": args.orders, "ingest": ingest, "baseline": baseline,
        "ratio": common.ratio(ingest["orders_per_s"], baseline["orders_per_s"]),
        "orders_in_db": in_db, "duplicates": duplicates, "ids_match": ids_match,
        "reingest_created": sum(again), "reingested": len(again), "order_movements": deductions,
        "order_sku_pairs": sku_lines.count(), "ledger_mismatches": mismatches, "ok": bool(ok),
        "push": {key: value for key, value in (pushed or {}).items() if key != "ids"},
        "push_ratio": common.ratio(pushed["orders_per_s"], baseline["orders_per_s"]) if pushed else None,
    }
    common.emit(result)
    return result
