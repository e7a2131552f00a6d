"""aftersales: approving N own-channel refund requests through aftersales_approve, beside a raw SQL loop.

The orders are bulk-inserted (own channel, picked up, paid outside the payment
provider: an approval completes its refund at once, no HTTP), then one request per
order is asked through the service (aftersales_request_create, a store manager:
one unit of the first line by default, ``--scope order`` for the whole order);
that is setup, not timed. Timed: one aftersales_approve per request, one
transaction each, sequentially (its row locks, the machine's three transitions
approve / start_refund / complete with their audit rows, the order's refunded
amount and refund state, flag and feed events).

Baseline, same run, over a second set of requests of another store: a psycopg loop
doing the writes an approval must do at least, committed per request (UPDATE the
request's status + INSERT its audit row + UPDATE the order's refunded amount and
refund state (and status for a whole refund) + INSERT the order's event).

Also prints the SQL queries of one approval of a request on a 1-line and a 20-line
order (tracked on-order SKUs, accepted orders so the refunded units' stock comes
back), for a line refund taking one unit of every line and for a whole refund: they
should be equal.
"""

import argparse
from datetime import timedelta
from decimal import Decimal

from bench import common

NAME = "aftersales"
QUERY_LINES = (1, 20)
PRICE = Decimal("12.00")
BOX = Decimal("1.00")
UNITS = 2  # per line


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests the service approves")
    parser.add_argument("--baseline-requests", type=int, default=None,
                        help="requests the raw SQL loop approves (default: --requests)")
    parser.add_argument("--lines", type=int, default=1, help="lines per order")
    parser.add_argument("--scope", choices=("lines", "order"), default="lines",
                        help="lines: one unit of the first line (the order keeps its status); order: the whole order")
    return parser.parse_args(argv)


def manager_actor(*, shop):
    from django.contrib.auth import get_user_model

    from accounts.models import StaffMembership, StaffRole
    from core.actors import Actor

    user = get_user_model().objects.create_user(username=f"manager-{shop.store.code}", password=None, is_staff=True)
    StaffMembership.objects.create(user=user, brand=shop.brand, store=shop.store, role=StaffRole.STORE_MANAGER)
    return Actor.staff(user)


def picked_up_orders_create(*, shop, count: int, lines: int) -> list:
    """``count`` paid own-channel pickup orders of ``shop.store``, picked up an hour ago,
    with ``lines`` lines each (UNITS units at PRICE, box fee BOX), inserted in bulk, each
    with its acknowledged ``order.created`` POS feed event."""
    from django.utils import timezone

    from orders.models import (
        Channel,
        Order,
        OrderAction,
        OrderEvent,
        OrderLine,
        OrderStatus,
        OrderType,
        StoreFeedEvent,
        StoreFeedEventType,
    )
    from orders.services.creation import order_number_for

    skus = [common.sku_create(shop=shop, code=f"{shop.store.code}-{i}", stock=None) for i in range(lines)]
    now = timezone.now()
    placed = now - timedelta(hours=2)
    business_date = timezone.localtime(placed).date()
    subtotal = PRICE * UNITS * lines
    boxes = BOX * lines
    orders = []
    chunk = 2000
    for start in range(0, count, chunk):
        made = Order.objects.bulk_create([
            Order(order_no=order_number_for(store_id=shop.store.pk, business_date=business_date, day_seq=seq),
                  brand=shop.brand, store=shop.store, channel=Channel.MINIAPP, order_type=OrderType.PICKUP,
                  status=OrderStatus.PICKED_UP, subtotal=subtotal, packaging_fee=boxes, total=subtotal + boxes,
                  paid_amount=subtotal + boxes, paid_at=placed, business_date=business_date, day_seq=seq,
                  placed_at=placed, accepted_at=placed, ready_at=placed, confirmed_at=now - timedelta(hours=1))
            for seq in range(start + 1, min(count, start + chunk) + 1)
        ])
        OrderLine.objects.bulk_create([
            OrderLine(order=order, line_no=n + 1, sku=sku, sku_code=sku.code, name=f"Dish {n}", unit_price=PRICE,
                      quantity=UNITS, line_total=PRICE * UNITS, packaging_fee=BOX)
            for order in made for n, sku in enumerate(skus)
        ])
        OrderEvent.objects.bulk_create([
            OrderEvent(order=order, action=OrderAction.CREATE, from_status="", to_status=OrderStatus.PICKED_UP,
                       actor_kind="system", actor_id="bench", actor_name="bench")
            for order in made
        ])
        # The store's POS saw them (so after-sales tells it about their requests, as for real orders).
        StoreFeedEvent.objects.bulk_create([
            StoreFeedEvent(store=shop.store, order=order, type=StoreFeedEventType.ORDER_CREATED, acked_at=placed,
                           acked_by="bench")
            for order in made
        ])
        orders += made
    return orders


def requests_ask(*, orders, actor, scope: str) -> list[int]:
    """One request per order through the service; returns their ids."""
    from aftersales.services import LineAsk, aftersales_request_create
    from orders.models import OrderLine

    first_lines = dict(OrderLine.objects.filter(order__in=[o.pk for o in orders], line_no=1)
                       .values_list("order_id", "pk"))
    ids = []
    for order in orders:
        lines = None if scope == "order" else [LineAsk(line_id=first_lines[order.pk], quantity=1)]
        ids.append(aftersales_request_create(order_id=order.pk, actor=actor, lines=lines, reason_code="quality",
                                             reason="bench").pk)
    return ids


def service_run(*, request_ids: list[int], actor) -> dict:
    from aftersales.services import aftersales_approve

    with common.Stopwatch() as watch:
        for request_id in request_ids:
            aftersales_approve(request_id=request_id, actor=actor)
    return {"approved": len(request_ids), "seconds": watch.seconds,
            "per_s": common.rate(len(request_ids), watch.seconds)}


def baseline_run(*, request_ids: list[int], scope: str) -> dict:
    """The writes of an approval, in raw SQL, one COMMIT per request."""
    conn = common.raw_connect()
    done = 0
    order_status = "refunded" if scope == "order" else None
    try:
        with common.Stopwatch() as watch, conn.cursor() as cur:
            for request_id in request_ids:
                cur.execute(
                    "UPDATE aftersales_aftersalesrequest SET status = 'refunded', decided_at = now(), "
                    "decided_by = 'bench', refund_ref = 'as-' || id, refunded_at = now(), updated_at = now() "
                    "WHERE id = %s AND status = 'requested' RETURNING order_id, amount", (request_id,))
                row = cur.fetchone()
                if row is None:
                    conn.rollback()
                    continue
                order_id, amount = row
                cur.execute(
                    "INSERT INTO aftersales_aftersalesevent (request_id, action, from_status, to_status, actor_kind, "
                    "actor_id, actor_name, reason, data, created_at) VALUES (%s, 'approve', 'requested', "
                    "'refunded', 'staff', 'bench', 'bench', '', '{}', now())", (request_id,))
                cur.execute(
                    "UPDATE orders_order SET refunded_amount = refunded_amount + %s, refund_state = CASE "
                    "WHEN refunded_amount + %s >= paid_amount THEN 'full' ELSE 'partial' END, "
                    "status = COALESCE(%s, status), updated_at = now() WHERE id = %s AND refunded_amount + %s "
                    "<= paid_amount RETURNING status", (amount, amount, order_status, order_id, amount))
                if cur.fetchone() is None:
                    conn.rollback()
                    continue
                cur.execute(
                    "INSERT INTO orders_orderevent (order_id, action, from_status, to_status, actor_kind, actor_id, "
                    "actor_name, reason_code, reason, data, created_at) VALUES (%s, 'payment_refund', 'picked_up', "
                    "%s, 'system', 'aftersales', 'aftersales', 'order_refunded', '', "
                    "jsonb_build_object('amount', %s::text, 'refund_ref', 'as-' || %s::text), now())",
                    (order_id, order_status or "picked_up", amount, request_id))
                conn.commit()
                done += 1
    finally:
        conn.close()
    return {"approved": done, "seconds": watch.seconds, "per_s": common.rate(done, watch.seconds),
            "ok": done == len(request_ids)}


def approval_queries(*, request_id: int, actor) -> int:
    """SQL queries of one aftersales_approve."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from aftersales.services import aftersales_approve

    with CaptureQueriesContext(connection) as captured:
        aftersales_approve(request_id=request_id, actor=actor)
    return len(captured)


def query_counts(*, shop, actor) -> dict[str, dict[int, int]]:
    """Queries of one approval by number of lines, per scope: accepted orders placed
    through order_place with tracked on-order SKUs (their stock taken), paid; a line
    refund takes one unit of every line (the on-order stock of each comes back), a
    whole refund the order."""
    from accounts.models import Customer
    from aftersales.services import LineAsk, aftersales_request_create
    from catalog.models import StockDeductionMode
    from core.actors import Actor
    from orders.services import order_transition
    from orders.services.cart import Cart, CartItem
    from orders.services.checkout import order_place

    customer = Customer.objects.create(brand=shop.brand, phone="13900009999", name="bench buyer")
    skus = [common.sku_create(shop=shop, code=f"AQ{i:02d}", stock=10000, stock_mode=StockDeductionMode.ON_ORDER)
            for i in range(max(QUERY_LINES))]

    def accepted_order(lines: int):
        order = order_place(customer=customer, channel="miniapp", cart=Cart(
            store_id=shop.store.pk, order_type="pickup",
            items=tuple(CartItem(sku_code=sku.code, qty=UNITS) for sku in skus[:lines])))
        order_transition(order_id=order.pk, action="pay", actor=Actor(kind="payment", id="bench"))
        return order_transition(order_id=order.pk, action="accept", actor=actor)

    def ask(order, scope):
        lines = None if scope == "order" else [LineAsk(line_id=line.pk, quantity=1) for line in order.lines.all()]
        return aftersales_request_create(order_id=order.pk, actor=actor, lines=lines, reason_code="quality").pk

    # Warm up: the first approval pays one-off costs (content types, translations).
    approval_queries(request_id=ask(accepted_order(1), "lines"), actor=actor)
    counts: dict[str, dict[int, int]] = {"lines": {}, "order": {}}
    for scope in counts:
        for n in QUERY_LINES:
            counts[scope][n] = approval_queries(request_id=ask(accepted_order(n), scope), actor=actor)
    return counts


def outcome(*, request_ids: list[int], scope: str) -> dict:
    """What the approvals left: request statuses, audit rows, the orders' refunds."""
    from django.db.models import Count, F

    from aftersales.models import AfterSalesEvent, AfterSalesRequest
    from orders.models import Order

    requests = AfterSalesRequest.objects.filter(pk__in=request_ids)
    statuses = dict(requests.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    approve_rows = AfterSalesEvent.objects.filter(request_id__in=request_ids, action="approve").count()
    orders = Order.objects.filter(pk__in=requests.values("order_id"))
    mismatched = orders.exclude(refunded_amount=F("after_sales__amount")).count()
    refund_states = dict(orders.values_list("refund_state").annotate(n=Count("id")).values_list("refund_state", "n"))
    order_statuses = dict(orders.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {"statuses": statuses, "approve_rows": approve_rows, "refund_states": refund_states,
            "order_statuses": order_statuses, "amount_mismatches": mismatched,
            "expected_state": "full" if scope == "order" else "partial",
            "expected_order_status": "refunded" if scope == "order" else "picked_up"}


def main(argv=None) -> dict:
    args = parse(argv)
    baseline_count = args.requests if args.baseline_requests is None else args.baseline_requests
    common.setup_django()
    common.database_prepare()
    common.database_wipe()

    print(f"{NAME}: {args.requests} requests for the service, {baseline_count} for the raw SQL loop, "
          f"{args.lines} line(s) per order, scope {args.scope}", flush=True)
    query_shop = common.shop_create(code="as-queries")
    counts = query_counts(shop=query_shop, actor=manager_actor(shop=query_shop))
    equal = all(len(set(by_lines.values())) == 1 for by_lines in counts.values())
    counts_line = "; ".join(f"{scope}: " + ", ".join(f"{n} line{'s' if n > 1 else ''}: {q}" for n, q in by.items())
                            for scope, by in counts.items())
    print(f"  SQL queries per approval: {counts_line} -> {'equal' if equal else 'NOT equal'}", flush=True)

    svc_shop = common.shop_create(code="as-svc")
    base_shop = common.shop_create(code="as-base")
    svc_actor, base_actor = manager_actor(shop=svc_shop), manager_actor(shop=base_shop)
    with common.Stopwatch() as setup:
        svc_ids = requests_ask(orders=picked_up_orders_create(shop=svc_shop, count=args.requests, lines=args.lines),
                               actor=svc_actor, scope=args.scope)
        base_ids = requests_ask(orders=picked_up_orders_create(shop=base_shop, count=baseline_count,
                                                               lines=args.lines),
                                actor=base_actor, scope=args.scope)
    print(f"  created {args.requests + baseline_count} orders and requests in {setup.seconds:.1f}s", flush=True)

    baseline = baseline_run(request_ids=base_ids, scope=args.scope)
    service = service_run(request_ids=svc_ids, actor=svc_actor)
    ratio = common.ratio(service["per_s"], baseline["per_s"])
    print(common.line(f"{NAME} service aftersales_approve", service["per_s"], "refunds/s", "raw SQL loop",
                      baseline["per_s"], "refunds/s"), flush=True)
    print(f"  {service['approved']} approved in {service['seconds']:.2f}s; baseline {baseline['approved']} "
          f"in {baseline['seconds']:.2f}s", flush=True)

    svc_state = outcome(request_ids=svc_ids, scope=args.scope)
    base_state = outcome(request_ids=base_ids, scope=args.scope)
    ok = all([
        common.check(f"all {args.requests} refunded by the service",
                     svc_state["statuses"] == {"refunded": args.requests}
                     and svc_state["approve_rows"] == args.requests, str(svc_state["statuses"])),
        common.check("each order refunded exactly its request's amount",
                     svc_state["amount_mismatches"] == 0
                     and svc_state["refund_states"] == {svc_state["expected_state"]: args.requests}
                     and svc_state["order_statuses"] == {svc_state["expected_order_status"]: args.requests},
                     f"{svc_state['amount_mismatches']} mismatches, {svc_state['refund_states']}, "
                     f"{svc_state['order_statuses']}"),
        common.check(f"baseline refunded all {baseline_count}",
                     baseline["ok"] and base_state["statuses"] == {"refunded": baseline_count}
                     and base_state["amount_mismatches"] == 0, str(base_state["statuses"])),
        common.check("queries per approval independent of line count", equal, counts_line),
    ])
    result = {"bench": NAME, "requests": args.requests, "baseline_requests": baseline_count, "lines": args.lines,
              "scope": args.scope, "setup_seconds": setup.seconds, "query_counts": counts, "service": service,
              "baseline": baseline, "ratio": ratio, "service_state": svc_state, "baseline_state": base_state,
              "ok": ok}
    common.emit(result)
    return result
