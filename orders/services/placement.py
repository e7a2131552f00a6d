"""Batched own-channel placement: what makes a flash sale fast.

A placement is mostly fixed costs: reading the store's rows and promotions,
building the order, a transaction and its COMMIT. When many buyers order at
once (a flash sale, a lunch peak), the placements that arrive in one web
process while a batch is being written wait for it and then go together as
the next batch (group commit, leader/follower):

- one read of the store's rows, stock and promotions per store in the batch,
  one read of the buyers' flash-sale counters; each cart is then priced by the
  pure engine (``quote_compute_from_rules``), exactly as ``cart_price`` would;
- in one transaction: the orders are written with one INSERT per table and
  their ``on_created`` hooks run; then, last (so the hot rows are held only for
  the admission, two UPDATEs and the COMMIT, as in a single placement), the
  flash-sale counters and the stock rows are locked in the order every single
  placement locks them in (counters by promotion and customer, then stock by
  store and SKU: no deadlock with single placements or other batches), and the
  carts are admitted in arrival order against what is left: one UPDATE for the
  stock, one for the counters. A cart that does not fit gets the refusal a
  single placement gives (``out_of_stock``, ``purchase_limit_exceeded``); the
  transaction is then rolled back and the admitted carts written again (a
  sell-out happens once per SKU, so this is rare);
- each buyer is answered after the COMMIT.

Carts with coupons are placed one by one (the coupon rules stay in one place),
as is everything inside a caller's transaction or on SQLite. If a batch fails
as a whole (an ``on_created`` hook raised, a database error), its carts are
placed again one by one, so one bad request never fails the others; the day
numbers the batch drew are then gaps, like any failed placement's.
"""

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation

from accounts.models import Customer
from core.errors import DomainError
from inventory.services import OutOfStock, stock_take_locked, stocks_lock
from orders.models import Order
from orders.services.checkout import (
    Cart,
    PlacementPlan,
    cart_check,
    cart_price_from_rows,
    cart_rows,
    order_place_one,
    placement_plan,
)
from orders.services.core import day_seq_next_many, order_draft, order_drafts_save
from promotions.engine import quote_compute_from_rules
from promotions.models import PromotionKind
from promotions.rules import PromotionRule
from promotions.selectors import flash_sale_used_by_customers, promotions_active_for_store
from promotions.services import (
    flash_sale_limits_reserve_locked,
    flash_sale_usages_ensure,
    flash_sale_usages_lock,
    purchase_limit_exceeded,
)

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class PlacementRequest:
    customer: Customer
    cart: Cart
    channel: str
    now: datetime
    on_created: Callable[[Order], None] | None = None
    # The submitting thread's language and time zone: hooks run in the leader's thread.
    language: str | None = field(default_factory=translation.get_language)
    time_zone: object = field(default_factory=timezone.get_current_timezone)
    flash_limits: dict[int, int | None] = field(default_factory=dict)  # flash sale id -> per-customer limit
    order: Order | None = None
    error: BaseException | None = None
    finished: bool = False
    lead: bool = False
    wake: threading.Event = field(default_factory=threading.Event)

    def place_alone(self) -> None:
        try:
            with self._context():
                self.order = order_place_one(customer=self.customer, cart=self.cart, channel=self.channel,
                                             now=self.now, on_created=self.on_created)
            self.error = None
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, which raises it
            self.order, self.error = None, exc

    def created(self, order: Order) -> None:
        if self.on_created is not None:
            with self._context():
                self.on_created(order)

    def _context(self):
        return _Overrides(self.language, self.time_zone)

    def outcome(self) -> Order:
        if self.error is not None:
            raise self.error
        return self.order


class _Overrides:
    def __init__(self, language, time_zone):
        self._language = translation.override(language)
        self._time_zone = timezone.override(time_zone)

    def __enter__(self):
        self._language.__enter__()
        self._time_zone.__enter__()

    def __exit__(self, *exc):
        self._time_zone.__exit__(*exc)
        self._language.__exit__(*exc)


def placement_submit(*, customer: Customer, cart: Cart, channel: str, now: datetime,
                     on_created: Callable[[Order], None] | None = None) -> Order:
    """Place one cart, batched with the placements arriving at the same time
    when batching applies (see the module docstring), else on its own."""
    request = PlacementRequest(customer=customer, cart=cart, channel=channel, now=now, on_created=on_created)
    if _batch_max() < 2 or connection.vendor != "postgresql" or connection.in_atomic_block:
        request.place_alone()
        return request.outcome()
    return _COMBINER.submit(request)


def _batch_max() -> int:
    return int(getattr(settings, "ORDER_PLACEMENT_BATCH_MAX", 1))


class _Combiner:
    """Leader/follower group commit: the first placement to arrive while no
    batch is running leads; the others queue and wait. The leader writes the
    queue's head as one batch, answers it, and hands the lead to the first
    placement still queued (which is in the next batch), so no thread writes
    more than the batch it is in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[PlacementRequest] = []
        self._busy = False
        self.batches = 0  # batches written by this process, and the placements in them
        self.placements = 0

    def submit(self, request: PlacementRequest) -> Order:
        with self._lock:
            self._queue.append(request)
            lead = not self._busy
            self._busy = True
        if not lead:
            request.wake.wait()
            lead = not request.finished
        if lead:
            self._lead()
        return request.outcome()

    def _lead(self) -> None:
        with self._lock:
            size = max(1, _batch_max())
            batch, self._queue = self._queue[:size], self._queue[size:]
            self.batches += 1
            self.placements += len(batch)
        try:
            orders_place_batch(batch)
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                if successor is None:
                    self._busy = False
            for request in batch:
                if request.order is None and request.error is None:  # the batch itself was interrupted
                    request.error = RuntimeError("order placement batch interrupted")
                request.finished = True
                request.wake.set()
            if successor is not None:
                successor.wake.set()


_COMBINER = _Combiner()


def placement_batch_stats() -> dict:
    """Batches this process has written through the combiner so far (benchmarks, diagnostics)."""
    return {"batches": _COMBINER.batches, "placements": _COMBINER.placements}


def orders_place_batch(requests: list[PlacementRequest]) -> None:
    """Place the carts of ``requests`` together; each request gets its order or
    its error (see the module docstring). Call outside a transaction."""
    alone = [r for r in requests if r.cart.coupon_codes]
    together = [r for r in requests if not r.cart.coupon_codes]
    if len(together) == 1:
        alone, together = requests, []
    planned = _price(together) if together else []
    if planned:
        try:
            _write(planned)
        except Exception:  # noqa: BLE001 - placed again one by one: the failing one gets its own error
            logger.warning("placement batch of %s failed; placing one by one", len(planned), exc_info=True)
            alone += [request for request, _plan in planned]
    for request in alone:
        request.place_alone()


def _price(requests: list[PlacementRequest]) -> list[tuple[PlacementRequest, PlacementPlan]]:
    """Price every cart with one read per store; refusals known before any
    write are set on their requests here."""
    carts: dict[tuple[int, int], list[tuple[PlacementRequest, dict]]] = defaultdict(list)
    for request in requests:
        try:
            carts[(request.cart.store_id, request.customer.brand_id)].append((request, cart_check(request.cart)))
        except DomainError as exc:
            request.error = exc
    planned = []
    for (store_id, brand_id), group in carts.items():
        codes = sorted({code for _request, by_code in group for code in by_code})
        rows = cart_rows(store_id=store_id, brand_id=brand_id, sku_codes=codes)
        nows = [request.now for request, _by_code in group]
        rules = [PromotionRule.from_model(p) for p in promotions_active_for_store(
            brand_id=brand_id, store_id=store_id, now=min(nows), until=max(nows))] if rows else []
        flash_limits = {rule.id: rule.purchase_limit for rule in rules if rule.kind == PromotionKind.FLASH_SALE}
        used = flash_sale_used_by_customers(customer_ids={r.customer.pk for r, _c in group},
                                            promotion_ids=[p for p, limit in flash_limits.items() if limit is not None])
        for request, by_code in group:
            request.flash_limits = flash_limits
            def quoter(*, lines, context, _used=used.get(request.customer.pk, {})):
                return quote_compute_from_rules(lines=lines, context=context, promotions=rules, coupons=[],
                                                flash_used=_used)
            try:
                priced = cart_price_from_rows(customer=request.customer, cart=request.cart, by_code=by_code,
                                              rows=rows, now=request.now, quoter=quoter)
                planned.append((request, placement_plan(customer=request.customer, cart=request.cart,
                                                        channel=request.channel, priced=priced, now=request.now)))
            except DomainError as exc:
                request.error = exc
    return planned


def _write(planned: list[tuple[PlacementRequest, PlacementPlan]]) -> None:
    # Day numbers first, in autocommit (each store's counter row is held for one
    # statement); a refused cart leaves a gap, as a refused single placement does.
    numbered: dict[tuple[int, object], list] = defaultdict(list)
    for request, plan in planned:
        numbered[(plan.order_fields["store"].pk, plan.business_date)].append(request)
    day_seqs: dict[int, int] = {}
    for (store_id, business_date), group in numbered.items():
        for request, seq in zip(group, day_seq_next_many(store_id=store_id, business_date=business_date,
                                                          count=len(group))):
            day_seqs[id(request)] = seq
    # (promotion, customer) -> the flash sale's per-customer limit, for the limited ones.
    limits = {(promotion_id, request.customer.pk): request.flash_limits[promotion_id]
              for request, plan in planned for promotion_id in plan.flash_sale_units
              if request.flash_limits.get(promotion_id) is not None}
    flash_sale_usages_ensure(limits=limits)  # autocommit: never waited for under our locks
    candidates = planned
    for _attempt in range(WRITE_ATTEMPTS):
        try:
            orders = _write_attempt(candidates, day_seqs=day_seqs, limits=limits)
        except _SomeRefused as refused:
            # Rolled back; the refused carts keep their errors, the others go again.
            candidates = refused.admitted
            if not candidates:
                return
            continue
        for (request, _plan), order in zip(candidates, orders):
            request.order = order
        return
    raise RuntimeError("placement batch: refusals kept changing")  # placed one by one instead


WRITE_ATTEMPTS = 3


class _SomeRefused(Exception):
    def __init__(self, admitted):
        super().__init__("some carts of the batch were refused")
        self.admitted = admitted


def _write_attempt(candidates, *, day_seqs, limits) -> list[Order]:
    """One transaction: write every candidate's order and run its hook, then
    lock the flash-sale counters and the stock rows and admit. The hot rows are
    locked last, as a single placement locks them, so they are held for the
    admission, two UPDATEs and the COMMIT only. If a cart does not fit (a sell-out
    or a limit reached: rare), the transaction is rolled back and the caller
    writes the admitted carts again (``_SomeRefused``)."""
    with transaction.atomic():
        drafts = [order_draft(day_seq=day_seqs[id(request)], **plan.order_fields) for request, plan in candidates]
        orders = order_drafts_save(drafts=drafts)
        for (request, _plan), order in zip(candidates, orders):
            request.created(order)
        usages = flash_sale_usages_lock(limits=limits)
        stocks = stocks_lock(keys=sorted({(plan.order_fields["store"].pk, sku_id)
                                          for _request, plan in candidates for sku_id in plan.on_order}))
        admitted = _admit(candidates, usages=usages, limits=limits, stocks=stocks)
        if len(admitted) != len(candidates):
            raise _SomeRefused(admitted)
        flash_sale_limits_reserve_locked(usages=usages, limits=limits, reservations=[
            (promotion_id, request.customer.pk, units, order.order_no)
            for (request, plan), order in zip(candidates, orders) for promotion_id, units in plan.flash_sale_units.items()
        ])
        stock_take_locked(stocks=stocks, takes=[
            (order.order_no, order.store_id, plan.on_order)
            for (_request, plan), order in zip(candidates, orders) if plan.on_order
        ])
    return orders


def _admit(planned, *, usages, limits, stocks) -> list[tuple[PlacementRequest, PlacementPlan]]:
    """Admit the carts in arrival order against what the locked rows hold; the
    others get the refusal a single placement would give. Nothing is written."""
    held = {key: usage.used for key, usage in usages.items()}
    left = {key: stock.on_hand for key, stock in stocks.items()}
    admitted = []
    for request, plan in planned:
        customer_id, store_id = request.customer.pk, plan.order_fields["store"].pk
        over = next(((key, units) for promotion_id, units in plan.flash_sale_units.items()
                     if (key := (promotion_id, customer_id)) in limits and held[key] + units > limits[key]), None)
        if over is not None:
            request.error = purchase_limit_exceeded(limit=limits[over[0]], already=held[over[0]])
            continue
        short = {str(sku_id): {"wanted": qty, "on_hand": left[(store_id, sku_id)]}
                 for sku_id, qty in sorted(plan.on_order.items())
                 if (store_id, sku_id) in left and left[(store_id, sku_id)] < qty}
        if short:
            request.error = OutOfStock(detail={"skus": short})
            continue
        for promotion_id, units in plan.flash_sale_units.items():
            if (promotion_id, customer_id) in limits:
                held[(promotion_id, customer_id)] += units
        for sku_id, qty in plan.on_order.items():
            if (store_id, sku_id) in left:
                left[(store_id, sku_id)] -= qty
        admitted.append((request, plan))
    return admitted
