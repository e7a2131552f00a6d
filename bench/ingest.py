"""ingest: N orders generated at the simulator's Meituan shop, pulled over HTTP
and ingested through channels (``channels.services.binding_pull``, the code the
scheduled pull runs), against fetching the same payloads without ingesting them.

Baseline, same run, same simulator, same orders: the Meituan adapter's
``pull_new_orders`` (getOrderDaySeq, then getOrderIdByDaySeq + getOrderDetail per
order, in chunks of CHANNELS_PULL_MAX_ORDERS, the cursor advanced in memory),
i.e. exactly the HTTP calls of the pull, with no database work.

Checks: exactly N orders exist, once each (no duplicate channel order id), their
ids are the simulator's; a second ingest of already-pulled payloads creates
nothing; every order took its stock (one ledger row per SKU line); the stock
ledger is conserved (``stock_ledger_mismatches() == []``).
"""

import argparse

from bench import common
from bench.channel_setup import SimulatorProcess, meituan_orders_create, meituan_store_bound

NAME = "ingest"


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000, help="orders generated at the simulator (N)")
    parser.add_argument("--repull", type=int, default=100, help="payloads ingested a second time (must create 0)")
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

    orders = Order.objects.filter(channel="meituan", store=shop.store)
    in_db = orders.count()
    duplicates = list(orders.values("channel_order_id").annotate(n=Count("id")).filter(n__gt=1)
                      .values_list("channel_order_id", flat=True)[:5])
    ids_match = set(orders.values_list("channel_order_id", flat=True)) == {str(i) for i in sim_ids}
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
    ok &= common.check("orders in the database", in_db == args.orders and not duplicates and ids_match,
                       f"{in_db} orders, duplicates {duplicates}, ids match simulator: {ids_match}")
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
    }
    common.emit(result)
    return result
