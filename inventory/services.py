"""Writes to stock. Every change is a conditional UPDATE plus a ledger row.

Lock discipline: the Stock rows of one call are locked in sku order
(``ORDER BY sku_id FOR UPDATE``), so two multi-line orders touching the same
SKUs in opposite orders wait for each other instead of deadlocking. The
deduction itself is a single guarded ``UPDATE ... WHERE on_hand >= qty`` for
all lines, so the number of queries does not grow with the number of lines; the
CHECK constraint ``on_hand >= 0`` is the last line of defence.

On PostgreSQL the order deduction (``stock_deduct`` without shortfall) is one
statement: lock, all-or-nothing UPDATE and the ledger INSERT in CTEs, with no
savepoint; the hot stock row is then held only from that statement to the
caller's COMMIT. The other paths (and SQLite) use the ORM in a savepoint.
"""

from collections import defaultdict

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from catalog.services import store_skus_stock_changed
from core.errors import Conflict, InvalidInput
from core.rowread import JoinedRead
from core.sqlinsert import insert_rows
from inventory.models import MovementReason, Stock, StockMovement, StockShortfall


class OutOfStock(Conflict):
    code = "out_of_stock"
    default_message = _("Some items are out of stock.")


def _stock_flips(*, store_id: int, changes) -> None:
    """``changes`` (sku id, on hand before, after) of one store, under the stock locks:
    a SKU whose tracked stock reached zero is sold out on every channel, one whose stock
    came back above zero is on sale again (catalog decides, the manual flag wins).
    Nothing is read or written unless one crossed zero."""
    out = [sku_id for sku_id, before, after in changes if before > 0 >= after]
    back = [sku_id for sku_id, before, after in changes if before <= 0 < after]
    if out or back:
        store_skus_stock_changed(store_id=store_id, out=out, back=back)


def _locked_stocks(*, store_id: int, sku_ids) -> dict[int, Stock]:
    rows = Stock.objects.select_for_update().filter(store_id=store_id, sku_id__in=sku_ids).order_by("sku_id")
    return {row.sku_id: row for row in rows}


def _apply_deltas(*, store_id: int, deltas: dict[int, int], guard: bool) -> int:
    """One UPDATE for all SKUs. With ``guard`` a row is only changed when it
    stays >= 0; returns the number of rows changed. Plain SQL (the same on
    PostgreSQL and SQLite): every stock change runs it, and building the ORM's
    CASE cost more than running it."""
    if not deltas:
        return 0
    opts = Stock._meta
    q = connection.ops.quote_name
    sku, on_hand = q(opts.get_field("sku").column), q(opts.get_field("on_hand").column)
    skus = sorted(deltas)
    guarded = [guard and deltas[sku_id] < 0 for sku_id in skus]
    conditions = " OR ".join(f"({sku} = %s AND {on_hand} >= %s)" if g else f"{sku} = %s" for g in guarded)
    params = [value for sku_id in skus for value in (sku_id, deltas[sku_id])]
    params.append(opts.get_field("updated_at").get_db_prep_value(timezone.now(), connection))
    params.append(store_id)
    for sku_id, g in zip(skus, guarded, strict=True):
        params += [sku_id, -deltas[sku_id]] if g else [sku_id]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {q(opts.db_table)} SET {on_hand} = {on_hand} + CASE {sku} "
            + " ".join(["WHEN %s THEN CAST(%s AS integer)"] * len(skus))
            + f" END, {q(opts.get_field('updated_at').column)} = %s "
            f"WHERE {q(opts.get_field('store').column)} = %s AND ({conditions})", params)
        return cursor.rowcount


def stock_deduct(
    *, store_id: int, quantities: dict[int, int], reference: str, reason: str = MovementReason.ORDER,
    allow_shortfall: bool = False,
) -> dict[int, int]:
    """Take ``quantities`` (sku_id -> qty) from a store's stock.

    Untracked SKUs (no Stock row) are skipped. Without ``allow_shortfall`` any
    missing unit raises ``OutOfStock`` (detail lists the SKUs) and nothing
    changes. With it (platform orders, already paid) what is there is taken,
    stock stays >= 0, and the missing units are recorded as StockShortfall and
    returned (sku_id -> missing qty). Joins the caller's transaction; when it
    raises, it has changed nothing, so a caller may catch and go on.
    """
    if any(qty <= 0 for qty in quantities.values()):
        raise InvalidInput(_("Quantities must be positive."), code="invalid_quantity")
    if not quantities:
        return {}
    if allow_shortfall:
        return stock_deduct_in_turn(store_id=store_id, deductions=[(reference, quantities)], reason=reason)[0]
    if connection.vendor == "postgresql":
        if connection.in_atomic_block:  # no savepoint: a refusal leaves the caller's transaction usable
            _deduct_all_or_nothing(store_id=store_id, quantities=quantities, reference=reference, reason=reason)
        else:  # its own transaction, so the undo of a duplicate is atomic too
            with transaction.atomic():
                _deduct_all_or_nothing(store_id=store_id, quantities=quantities, reference=reference,
                                       reason=reason)
        return {}
    with transaction.atomic():
        stocks = _locked_stocks(store_id=store_id, sku_ids=list(quantities))
        wanted = {sku_id: qty for sku_id, qty in quantities.items() if sku_id in stocks}
        changed = _apply_deltas(store_id=store_id, deltas={k: -v for k, v in wanted.items()}, guard=True)
        if changed != len(wanted):
            # Some row did not have enough: say which, and undo the rest.
            short = {str(sku_id): {"wanted": qty, "on_hand": stocks[sku_id].on_hand}
                     for sku_id, qty in sorted(wanted.items()) if stocks[sku_id].on_hand < qty}
            raise OutOfStock(detail={"skus": short})
        try:
            StockMovement.objects.bulk_create([
                StockMovement(stock=stocks[sku_id], delta=-qty, reason=reason, reference=reference)
                for sku_id, qty in sorted(wanted.items())
            ])
        except IntegrityError:
            raise _already_deducted(reference) from None
        _stock_flips(store_id=store_id, changes=sorted(
            (sku_id, stocks[sku_id].on_hand, stocks[sku_id].on_hand - qty) for sku_id, qty in wanted.items()))
    return {}


def stock_deduct_in_turn(*, store_id: int, deductions: list[tuple[str, dict[int, int]]],
                         reason: str = MovementReason.ORDER) -> list[dict[int, int]]:
    """``stock_deduct(allow_shortfall=True)`` (which is this with one reference) for several
    references of one store, taken in turn (the first gets what is there first), under
    one lock of the rows: the same ledger and shortfall rows, and the same answers (per
    reference: sku id -> missing qty), as one call per reference in that order, in one
    UPDATE and one INSERT per table. ``deductions``: (reference, sku id -> qty), references not seen before.
    Joins the caller's transaction (a savepoint); raises having changed nothing."""
    for _reference, quantities in deductions:
        if any(qty <= 0 for qty in quantities.values()):
            raise InvalidInput(_("Quantities must be positive."), code="invalid_quantity")
    sku_ids = sorted({sku_id for _reference, quantities in deductions for sku_id in quantities})
    if not sku_ids:
        return [{} for _deduction in deductions]
    with transaction.atomic():
        stocks = _locked_stocks(store_id=store_id, sku_ids=sku_ids)
        on_hand = {sku_id: stock.on_hand for sku_id, stock in stocks.items()}
        taken: dict[int, int] = defaultdict(int)
        movements, shortfall_rows, answers = [], [], []
        for reference, quantities in deductions:
            shortfall: dict[int, int] = {}
            for sku_id, qty in sorted(quantities.items()):
                if sku_id not in stocks:
                    continue  # not tracked
                available = max(on_hand[sku_id], 0)
                if available < qty:
                    shortfall[sku_id] = qty - available
                take = min(qty, available)
                if take > 0:
                    on_hand[sku_id] -= take
                    taken[sku_id] += take
                    movements.append(StockMovement(stock=stocks[sku_id], delta=-take, reason=reason,
                                                   reference=reference))
            shortfall_rows += [StockShortfall(store_id=store_id, sku_id=sku_id, reference=reference, quantity=qty)
                               for sku_id, qty in sorted(shortfall.items())]
            answers.append(shortfall)
        if _apply_deltas(store_id=store_id, deltas={k: -v for k, v in taken.items()}, guard=True) != len(taken):
            raise OutOfStock(detail={"skus": {str(sku_id): {"wanted": qty} for sku_id, qty in sorted(taken.items())}})
        try:
            StockMovement.objects.bulk_create(movements)
        except IntegrityError:
            raise _already_deducted(", ".join(sorted({row.reference for row in movements}))[:200]) from None
        if shortfall_rows:
            StockShortfall.objects.bulk_create(shortfall_rows)
        short = {row.sku_id for row in shortfall_rows}
        changes = [(sku_id, stocks[sku_id].on_hand, on_hand[sku_id]) for sku_id in taken]
        # A shortfall means the stock is at zero: make sure the channels know (a no-op when they do).
        changes += [(sku_id, 1, 0) for sku_id in short if sku_id not in taken]
        _stock_flips(store_id=store_id, changes=sorted(changes))
    return answers


def stocks_lock(*, keys: list[tuple[int, int]]) -> dict[tuple[int, int], Stock]:
    """Batched placement: lock the stock rows of (store id, sku id) ``keys`` in
    (store, sku) order, the order every deduction here locks them in. Untracked
    SKUs have no row and are absent from the answer. Call inside the caller's
    transaction; it decides under the locks and writes with ``stock_take_locked``."""
    if not keys:
        return {}
    stores = sorted({store for store, _sku in keys})
    if connection.vendor == "postgresql":  # plain SQL built once: one statement per store, in store order
        rows = [row for store_id in stores
                for row in _STOCKS_LOCK.all(store_id, sorted({sku for store, sku in keys if store == store_id}))]
    else:
        condition = Q()
        for store_id in stores:
            condition |= Q(store_id=store_id, sku_id__in=sorted({sku for store, sku in keys if store == store_id}))
        rows = Stock.objects.select_for_update().filter(condition).order_by("store_id", "sku_id")
    return {(row.store_id, row.sku_id): row for row in rows}


_STOCKS_LOCK = JoinedRead(Stock, (), where=("store_id", "sku_id IN"), suffix="ORDER BY t0.sku_id FOR UPDATE")


def stock_take_locked(*, stocks: dict[tuple[int, int], Stock], takes: list[tuple[str, int, dict[int, int]]]) -> None:
    """Write deductions decided under ``stocks_lock``: ``takes`` are (reference,
    store id, sku id -> qty), each within what is on hand. One guarded UPDATE
    per store and one ledger INSERT for all; raises (and the caller's
    transaction must roll back) if a row would go below zero anyway."""
    per_store: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    movements = []
    for reference, store_id, quantities in takes:
        for sku_id, qty in sorted(quantities.items()):
            stock = stocks.get((store_id, sku_id))
            if stock is None:
                continue  # not tracked
            per_store[store_id][sku_id] -= qty
            movements.append(StockMovement(stock=stock, delta=-qty, reason=MovementReason.ORDER, reference=reference))
    for store_id, deltas in sorted(per_store.items()):
        if _apply_deltas(store_id=store_id, deltas=dict(deltas), guard=True) != len(deltas):
            raise OutOfStock(detail={"skus": {str(sku_id): {"wanted": -delta} for sku_id, delta in deltas.items()}})
        changes = []
        for sku_id, delta in sorted(deltas.items()):
            before = stocks[(store_id, sku_id)].on_hand
            stocks[(store_id, sku_id)].on_hand += delta
            changes.append((sku_id, before, before + delta))
        _stock_flips(store_id=store_id, changes=changes)
    insert_rows(StockMovement, movements)


def _already_deducted(reference: str) -> Conflict:
    return Conflict(_("This reference already took stock."), code="stock_already_deducted",
                    detail={"reference": reference})


def _deduct_all_or_nothing(*, store_id: int, quantities: dict[int, int], reference: str, reason: str) -> None:
    """The hot path of order placement (PostgreSQL): one statement whatever the
    number of lines, and no savepoint.

    Its CTEs lock the store's rows of these SKUs in sku order (``ORDER BY sku_id
    FOR UPDATE``, so multi-line orders never deadlock), change them only if
    *every* row keeps ``on_hand >= 0`` (all or nothing), and insert the ledger
    rows of what changed with ``ON CONFLICT DO NOTHING``. It answers, per SKU,
    the stock row, the on-hand it saw under the lock, whether it changed and
    whether its ledger row went in. A reference that already took stock inserts
    no ledger row: the change is then undone by its exact inverse (the rows are
    still locked by us) and the call raises.

    The stock rows stay locked from this statement to the caller's COMMIT, which
    is why order placement runs it last: the hot row is held for this statement
    and the COMMIT only.
    """
    stock_table, movement_table = Stock._meta.db_table, StockMovement._meta.db_table
    items = sorted(quantities.items())
    wanted = ", ".join(["(%s::bigint, %s::integer)"] * len(items))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH want(sku_id, qty) AS (VALUES {wanted}), "
            f"locked AS (SELECT s.id, s.sku_id, s.on_hand FROM {stock_table} s "
            f"  WHERE s.store_id = %s AND s.sku_id IN (SELECT sku_id FROM want) ORDER BY s.sku_id FOR UPDATE), "
            f"changed AS (UPDATE {stock_table} AS t SET on_hand = t.on_hand - w.qty, updated_at = now() "
            f"  FROM locked l JOIN want w ON w.sku_id = l.sku_id "
            f"  WHERE t.id = l.id AND NOT EXISTS ("
            f"    SELECT 1 FROM locked l2 JOIN want w2 ON w2.sku_id = l2.sku_id WHERE l2.on_hand < w2.qty) "
            f"  RETURNING t.id, w.qty), "
            f"booked AS (INSERT INTO {movement_table} (stock_id, delta, reason, reference, note, created_at) "
            f"  SELECT c.id, -c.qty, %s, %s, '', now() FROM changed c ON CONFLICT DO NOTHING RETURNING id, stock_id) "
            f"SELECT l.id, l.sku_id, l.on_hand, c.qty, b.id FROM locked l "
            f"LEFT JOIN changed c ON c.id = l.id LEFT JOIN booked b ON b.stock_id = l.id",
            [*[value for item in items for value in item], store_id, reason, reference],
        )
        rows = cursor.fetchall()
    if not rows:
        return  # none of these SKUs is tracked
    changed = [(stock_id, qty) for stock_id, _sku, _on_hand, qty, _booked in rows if qty is not None]
    if not changed:
        short = {str(sku_id): {"wanted": quantities[sku_id], "on_hand": on_hand}
                 for _id, sku_id, on_hand, _qty, _booked in rows if on_hand < quantities[sku_id]}
        raise OutOfStock(detail={"skus": short})
    booked = [movement_id for *_rest, movement_id in rows if movement_id is not None]
    if len(booked) != len(changed):
        # Undo exactly what this call did (the rows are still ours), then refuse.
        with connection.cursor() as cursor:
            undo = ", ".join(["(%s::bigint, %s::integer)"] * len(changed))
            cursor.execute(
                f"UPDATE {stock_table} AS t SET on_hand = t.on_hand + u.qty FROM (VALUES {undo}) AS u(id, qty) "
                f"WHERE t.id = u.id",
                [value for row in changed for value in row],
            )
        if booked:
            StockMovement.objects.filter(pk__in=booked).delete()
        raise _already_deducted(reference)
    _stock_flips(store_id=store_id, changes=[(sku_id, on_hand, on_hand - qty)
                                             for _id, sku_id, on_hand, qty, _booked in rows if qty is not None])


def _taken_by_references(*, references: list[str], store_id: int | None
                         ) -> tuple[dict[str, dict[tuple[int, int], int]], set[str]]:
    """What each reference still holds, per (store, sku): its ``order`` rows less the
    parts given back (``order_part_release``); and the references already released."""
    movements = StockMovement.objects.filter(
        reference__in=references,
        reason__in=[MovementReason.ORDER, MovementReason.ORDER_RELEASE, MovementReason.ORDER_PART_RELEASE])
    if store_id is not None:
        movements = movements.filter(stock__store_id=store_id)
    net: dict[str, dict[tuple[int, int], int]] = defaultdict(lambda: defaultdict(int))
    released_refs = set()
    for reference, store, sku_id, reason, total in (
        movements.values_list("reference", "stock__store_id", "stock__sku_id", "reason")
        .annotate(total=Sum("delta")).values_list("reference", "stock__store_id", "stock__sku_id", "reason", "total")
    ):
        if reason == MovementReason.ORDER_RELEASE:
            released_refs.add(reference)
        else:
            net[reference][(store, sku_id)] += total
    taken = {reference: {key: -total for key, total in items.items() if total < 0}
             for reference, items in net.items()}
    return {reference: items for reference, items in taken.items() if items}, released_refs


def stock_release(*, store_id: int, reference: str) -> dict[int, int]:
    """Give back everything ``reference`` took with reason ``order`` (cancel,
    expiry, reject). Idempotent: a second call finds it already released.
    Returns sku_id -> quantity given back."""
    released = stock_release_many(references=[reference], store_id=store_id)
    return {sku_id: qty for (_store, sku_id), qty in released.items()}


def stock_release_many(*, references: list[str], store_id: int | None = None) -> dict[tuple[int, int], int]:
    """``stock_release`` for many references at once (the expiry sweep): a
    fixed number of queries whatever their number. Returns
    (store_id, sku_id) -> quantity given back.

    Joins the caller's transaction without a savepoint (it never catches and
    continues). Stock rows are locked in (store, sku) order; the "already
    released" check is repeated under those locks, so two concurrent releases
    of one reference give back once."""
    taken, released_refs = _taken_by_references(references=references, store_id=store_id)
    pending = {ref: items for ref, items in taken.items() if ref not in released_refs}
    if not pending:
        return {}
    with transaction.atomic(savepoint=False):
        keys = sorted({key for items in pending.values() for key in items})
        condition = Q()
        for store, sku_id in keys:
            condition |= Q(store_id=store, sku_id=sku_id)
        stocks = {(row.store_id, row.sku_id): row for row in
                  Stock.objects.select_for_update().filter(condition).order_by("store_id", "sku_id")}
        already = set(StockMovement.objects.filter(reference__in=list(pending), reason=MovementReason.ORDER_RELEASE)
                      .values_list("reference", flat=True))
        give_back: dict[tuple[int, int], int] = defaultdict(int)
        rows = []
        for reference, items in sorted(pending.items()):
            if reference in already:
                continue  # a concurrent release committed while we waited for the locks
            for key, qty in sorted(items.items()):
                rows.append(StockMovement(stock=stocks[key], delta=qty, reason=MovementReason.ORDER_RELEASE,
                                          reference=reference))
                give_back[key] += qty
        StockMovement.objects.bulk_create(rows)
        by_store: dict[int, dict[int, int]] = defaultdict(dict)
        for (store, sku_id), qty in give_back.items():
            by_store[store][sku_id] = qty
        for store, deltas in sorted(by_store.items()):
            _apply_deltas(store_id=store, deltas=deltas, guard=False)
            _stock_flips(store_id=store, changes=[
                (sku_id, stocks[(store, sku_id)].on_hand, stocks[(store, sku_id)].on_hand + qty)
                for sku_id, qty in sorted(deltas.items())])
    return dict(give_back)


def stock_restock(*, store_id: int, quantities: dict[int, int], reference: str,
                  reason: str = MovementReason.RETURN) -> None:
    """Put returned goods back (a return = refund plus restock)."""
    with transaction.atomic():
        stocks = _locked_stocks(store_id=store_id, sku_ids=list(quantities))
        tracked = {k: v for k, v in quantities.items() if k in stocks and v > 0}
        StockMovement.objects.bulk_create([
            StockMovement(stock=stocks[sku_id], delta=qty, reason=reason, reference=reference)
            for sku_id, qty in sorted(tracked.items())
        ])
        _apply_deltas(store_id=store_id, deltas=tracked, guard=False)
        _stock_flips(store_id=store_id, changes=[(sku_id, stocks[sku_id].on_hand, stocks[sku_id].on_hand + qty)
                                                 for sku_id, qty in sorted(tracked.items())])


def stock_give_back_part(*, store_id: int, reference: str, quantities: dict[int, int], note: str = "") -> dict[int, int]:
    """Some units of an order (``reference``) are refunded before they were prepared:
    give back at most what the order still holds of each SKU (``order_part_release``
    rows), so a later whole release (``stock_release``) gives back only the rest.
    Returns sku_id -> units given back. Locks the stock rows in sku order."""
    wanted = {sku_id: qty for sku_id, qty in quantities.items() if qty > 0}
    if not wanted:
        return {}
    with transaction.atomic():
        stocks = _locked_stocks(store_id=store_id, sku_ids=list(wanted))
        taken, released = _taken_by_references(references=[reference], store_id=store_id)
        if reference in released:
            return {}
        held = taken.get(reference, {})
        give = {sku_id: min(qty, held.get((store_id, sku_id), 0)) for sku_id, qty in wanted.items()
                if sku_id in stocks}
        give = {sku_id: qty for sku_id, qty in give.items() if qty > 0}
        StockMovement.objects.bulk_create([
            StockMovement(stock=stocks[sku_id], delta=qty, reason=MovementReason.ORDER_PART_RELEASE,
                          reference=reference, note=note[:255])
            for sku_id, qty in sorted(give.items())
        ])
        _apply_deltas(store_id=store_id, deltas=give, guard=False)
        _stock_flips(store_id=store_id, changes=[(sku_id, stocks[sku_id].on_hand, stocks[sku_id].on_hand + qty)
                                                 for sku_id, qty in sorted(give.items())])
    return give


def stock_write_off(*, store_id: int, quantities: dict[int, int], reference: str, note: str = "") -> None:
    """Returned goods the store throws away: a ledger row per SKU (``write_off``, the
    units in ``written_off``), on-hand unchanged (the units left the stock when sold)."""
    with transaction.atomic():
        stocks = _locked_stocks(store_id=store_id, sku_ids=list(quantities))
        StockMovement.objects.bulk_create([
            StockMovement(stock=stocks[sku_id], delta=0, written_off=qty, reason=MovementReason.WRITE_OFF,
                          reference=reference, note=note[:255])
            for sku_id, qty in sorted(quantities.items()) if sku_id in stocks and qty > 0
        ])


def stock_set(*, store_id: int, sku_id: int, on_hand: int, note: str = "") -> Stock:
    """Count the stock: start tracking (initial movement) or adjust to ``on_hand``."""
    if on_hand < 0:
        raise InvalidInput(_("Stock cannot be negative."), code="invalid_quantity")
    with transaction.atomic():
        stock, created = Stock.objects.get_or_create(store_id=store_id, sku_id=sku_id)
        stock = Stock.objects.select_for_update().get(pk=stock.pk)
        before = stock.on_hand
        delta = on_hand - before
        if created or delta:
            StockMovement.objects.create(
                stock=stock, delta=delta, note=note,
                reason=MovementReason.INITIAL if created else MovementReason.ADJUSTMENT,
            )
            Stock.objects.filter(pk=stock.pk).update(on_hand=F("on_hand") + delta)
            stock.refresh_from_db()
            if created:  # a first count: whatever it is, make the channels' state match it
                before = 0 if on_hand > 0 else 1
            _stock_flips(store_id=store_id, changes=[(sku_id, before, on_hand)])
    return stock


def stock_ledger_mismatches() -> list[dict]:
    """Stock rows whose on_hand differs from the sum of their movements."""
    sums = defaultdict(int)
    for stock_id, total in StockMovement.objects.values_list("stock_id").annotate(t=Sum("delta")).values_list(
        "stock_id", "t"
    ):
        sums[stock_id] = total or 0
    mismatches = []
    for stock_id, store_id, sku_id, on_hand in Stock.objects.values_list("id", "store_id", "sku_id", "on_hand"):
        if sums[stock_id] != on_hand:
            mismatches.append({"stock_id": stock_id, "store_id": store_id, "sku_id": sku_id,
                               "on_hand": on_hand, "ledger": sums[stock_id]})
    return mismatches
