"""expiry: orders_expire_unpaid sweeping N expired unpaid orders, beside a raw SQL loop.

The orders are bulk-inserted (pending_payment, expires_at in the past, one
on-order line each, their stock already taken with an ``order`` ledger row),
so the sweep has real work: cancel, audit event, stock give-back and ledger row
per order. Baseline, same run: a psycopg loop doing the same writes per order
(UPDATE order status + INSERT event + UPDATE stock + INSERT movement, one
COMMIT per order) over a second set of orders of another store.
Checks: all N cancelled, every unit back, ledger conserved.
"""

import argparse
from datetime import timedelta
from decimal import Decimal

from bench import common

NAME = "expiry"
AIM = 0.3
SKUS_PER_STORE = 8
SPARE_STOCK = 100


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20000, help="expired orders the service sweeps")
    parser.add_argument("--baseline-orders", type=int, default=5000, help="expired orders the raw SQL loop cancels")
    parser.add_argument("--batch-size", type=int, default=500, help="orders_expire_unpaid batch_size")
    return parser.parse_args(argv)


def expired_orders_create(*, shop, count: int, prefix: str) -> dict:
    """``count`` expired unpaid orders of ``shop.store`` inserted in bulk, with
    their on-order stock already taken (ledger rows included). Returns the
    initial on_hand per Stock id (what must be back after the release)."""
    from django.db.models import F
    from django.utils import timezone

    from catalog.models import StockDeductionMode
    from inventory.models import MovementReason, Stock, StockMovement
    from orders.models import Channel, Order, OrderAction, OrderEvent, OrderLine, OrderStatus, OrderType
    from orders.services.creation import order_number_for

    skus = [common.sku_create(shop=shop, code=f"{prefix}{i}", stock=count + SPARE_STOCK,
                              stock_mode=StockDeductionMode.ON_ORDER) for i in range(SKUS_PER_STORE)]
    stocks = {s.sku_id: s for s in Stock.objects.filter(store=shop.store)}
    initial = {s.pk: s.on_hand for s in stocks.values()}
    now = timezone.now()
    placed = now - timedelta(hours=1)
    business_date = timezone.localtime(placed).date()
    price = Decimal("12.00")
    chunk = 5000
    for start in range(0, count, chunk):
        numbers = range(start + 1, min(count, start + chunk) + 1)
        orders = Order.objects.bulk_create([
            Order(order_no=order_number_for(store_id=shop.store.pk, business_date=business_date, day_seq=seq),
                  brand=shop.brand, store=shop.store, channel=Channel.MINIAPP, order_type=OrderType.PICKUP,
                  status=OrderStatus.PENDING_PAYMENT, subtotal=price, total=price, business_date=business_date,
                  day_seq=seq, placed_at=placed, expires_at=placed + timedelta(minutes=15))
            for seq in numbers
        ])
        lines, events, movements = [], [], []
        for order in orders:
            sku = skus[order.day_seq % SKUS_PER_STORE]
            lines.append(OrderLine(order=order, line_no=1, sku=sku, sku_code=sku.code, name="Dish", unit_price=price,
                                   quantity=1, line_total=price, stock_mode=StockDeductionMode.ON_ORDER))
            events.append(OrderEvent(order=order, action=OrderAction.CREATE, from_status="",
                                     to_status=OrderStatus.PENDING_PAYMENT, actor_kind="customer"))
            movements.append(StockMovement(stock=stocks[sku.pk], delta=-1, reason=MovementReason.ORDER,
                                           reference=order.order_no))
        OrderLine.objects.bulk_create(lines)
        OrderEvent.objects.bulk_create(events)
        StockMovement.objects.bulk_create(movements)
        taken: dict[int, int] = {}
        for movement in movements:
            taken[movement.stock_id] = taken.get(movement.stock_id, 0) + 1
        for stock_id, qty in taken.items():
            Stock.objects.filter(pk=stock_id).update(on_hand=F("on_hand") - qty)
    return initial


def baseline_run(*, shop) -> dict:
    """The same writes as one expiry, in raw SQL, committed per order."""
    from inventory.models import Stock
    from orders.models import OrderLine

    stock_of_sku = dict(Stock.objects.filter(store=shop.store).values_list("sku_id", "id"))
    work = [(order_id, order_no, stock_of_sku[sku_id], qty) for order_id, order_no, sku_id, qty in
            OrderLine.objects.filter(order__store=shop.store, order__status="pending_payment")
            .order_by("order__expires_at", "order_id").values_list("order_id", "order__order_no", "sku_id", "quantity")]
    conn = common.raw_connect()
    done = 0
    try:
        with common.Stopwatch() as watch, conn.cursor() as cur:
            for order_id, order_no, stock_id, qty in work:
                cur.execute(
                    "UPDATE orders_order SET status = 'cancelled', cancelled_at = now(), updated_at = now(), "
                    "cancel_reason_code = 'payment_timeout', cancel_reason = 'Not paid in time.' "
                    "WHERE id = %s AND status = 'pending_payment'", (order_id,))
                if cur.rowcount != 1:
                    conn.rollback()
                    continue
                cur.execute(
                    "INSERT INTO orders_orderevent (order_id, action, from_status, to_status, actor_kind, actor_id, "
                    "actor_name, reason_code, reason, data, created_at) VALUES (%s, 'cancel', 'pending_payment', "
                    "'cancelled', 'system', 'expiry', 'expiry', 'payment_timeout', 'Not paid in time.', '{}', now())",
                    (order_id,))
                cur.execute("UPDATE inventory_stock SET on_hand = on_hand + %s, updated_at = now() WHERE id = %s",
                            (qty, stock_id))
                cur.execute(
                    "INSERT INTO inventory_stockmovement (stock_id, delta, reason, reference, note, created_at) "
                    "VALUES (%s, %s, 'order_release', %s, '', now())", (stock_id, qty, order_no))
                conn.commit()
                done += 1
    finally:
        conn.close()
    return {"cancelled": done, "seconds": watch.seconds, "per_s": common.rate(done, watch.seconds),
            "ok": done == len(work)}


def service_run(*, batch_size: int) -> dict:
    from django.utils import timezone

    from orders.services.expiry import orders_expire_unpaid

    with common.Stopwatch() as watch:
        cancelled = orders_expire_unpaid(now=timezone.now(), batch_size=batch_size)
    return {"cancelled": cancelled, "seconds": watch.seconds, "per_s": common.rate(cancelled, watch.seconds)}


def main(argv=None) -> dict:
    args = parse(argv)
    common.setup_django()
    common.database_prepare()
    common.database_wipe()
    from inventory.models import MovementReason, Stock, StockMovement
    from inventory.services import stock_ledger_mismatches
    from orders.models import Order, OrderStatus

    print(f"{NAME}: {args.orders} expired orders for the service, {args.baseline_orders} for the raw SQL loop",
          flush=True)
    base_shop = common.shop_create(code="expiry-base")
    svc_shop = common.shop_create(code="expiry-svc")
    with common.Stopwatch() as setup:
        base_initial = expired_orders_create(shop=base_shop, count=args.baseline_orders, prefix="B")
        svc_initial = expired_orders_create(shop=svc_shop, count=args.orders, prefix="S")
    print(f"  created {args.orders + args.baseline_orders} orders in {setup.seconds:.1f}s", flush=True)

    baseline = baseline_run(shop=base_shop)  # first: the sweep would cancel these orders too
    service = service_run(batch_size=args.batch_size)
    print(common.line(f"{NAME} service orders_expire_unpaid", service["per_s"], "cancels/s",
                      "raw SQL loop", baseline["per_s"], "cancels/s", aim=AIM), flush=True)
    print(f"  {service['cancelled']} cancelled in {service['seconds']:.1f}s; baseline {baseline['cancelled']} "
          f"in {baseline['seconds']:.1f}s", flush=True)

    def store_state(shop, initial):
        cancelled = Order.objects.filter(store=shop.store, status=OrderStatus.CANCELLED).count()
        pending = Order.objects.filter(store=shop.store, status=OrderStatus.PENDING_PAYMENT).count()
        releases = StockMovement.objects.filter(stock__store=shop.store, reason=MovementReason.ORDER_RELEASE).count()
        restored = {s.pk: s.on_hand for s in Stock.objects.filter(store=shop.store)} == initial
        return {"cancelled": cancelled, "pending": pending, "releases": releases, "restored": restored}

    svc_state = store_state(svc_shop, svc_initial)
    base_state = store_state(base_shop, base_initial)
    mismatches = stock_ledger_mismatches()
    ok = all([
        common.check(f"all {args.orders} cancelled by the sweep",
                     service["cancelled"] == svc_state["cancelled"] == args.orders and svc_state["pending"] == 0,
                     f"{service['cancelled']} returned, {svc_state['cancelled']} cancelled, "
                     f"{svc_state['pending']} still pending"),
        common.check("stock given back once per order", svc_state["releases"] == args.orders and svc_state["restored"],
                     f"{svc_state['releases']} release rows, stock restored: {svc_state['restored']}"),
        common.check(f"baseline cancelled all {args.baseline_orders}",
                     baseline["ok"] and base_state["cancelled"] == args.baseline_orders and base_state["restored"],
                     f"{base_state['cancelled']} cancelled, stock restored: {base_state['restored']}"),
        common.check("ledger conserved", not mismatches, f"{len(mismatches)} mismatches"),
    ])
    result = {"bench": NAME, "orders": args.orders, "baseline_orders": args.baseline_orders,
              "batch_size": args.batch_size, "setup_seconds": setup.seconds, "service": service,
              "baseline": baseline, "ratio": common.ratio(service["per_s"], baseline["per_s"]),
              "service_state": svc_state, "baseline_state": base_state, "ledger_mismatches": mismatches, "ok": ok}
    common.emit(result)
    return result
