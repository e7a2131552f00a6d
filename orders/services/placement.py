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
  flash-sale counters and the stock rows are locked in the order everything
  locks them in (counters by promotion and customer, then stock by store and
  SKU; cancels and the expiry sweep release in that order too: no wait cycle
  with single placements, other batches or releases), and the
  carts are admitted in arrival order against what is left: one UPDATE for the
  stock, one for the counters. A cart that does not fit gets the refusal a
  single placement gives (``out_of_stock``, ``purchase_limit_exceeded``); the
  transaction is then rolled back and the admitted carts written again (a
  sell-out happens once per SKU, so this is rare);
- each buyer is answered after the COMMIT.

Batches are per store (one combiner per store and process), so a batch waiting
for a lock at one store holds up no other store. Each cart is priced, refused
and answered in its buyer's language, time zone and request id. Carts with
coupons are placed one by one (the coupon rules stay in one place), as is
everything inside a caller's transaction or on SQLite. If a batch fails inside
its transaction (an ``on_created`` hook raised, a database error), its carts
are placed again one by one, so one bad request never fails the others; the day
numbers the batch drew are then gaps, like any failed placement's.
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone, translation

from accounts.models import Customer
from core.errors import DomainError
from core.groupcommit import GroupCommits, Submitted
from core.idempotency import idempotency_answers_together
from core.logging import request_id_var
from inventory.services import OutOfStock, stock_take_locked, stocks_lock
from orders.models import Order
from orders.services.cart import (
    Cart,
    PlacementPlan,
    cart_check,
    cart_price_from_rows,
    order_place_one,
    placement_plan,
)
from orders.selectors import cart_rows
from orders.services.creation import day_seq_next_many, order_draft, order_drafts_save
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


@dataclass(eq=False, kw_only=True)
class PlacementRequest(Submitted):
    """One cart to place; its ``result`` (``order``) or ``error`` is set by the batch."""

    customer: Customer
    cart: Cart
    channel: str
    now: datetime
    on_created: Callable[[Order], None] | None = None
    # The submitting thread's language, time zone and request id: its cart is
    # priced, refused and answered in the leader's thread, under these.
    language: str | None = field(default_factory=translation.get_language)
    time_zone: tzinfo = field(default_factory=timezone.get_current_timezone)
    request_id: str = field(default_factory=request_id_var.get)
    flash_limits: dict[int, int | None] = field(default_factory=dict)  # flash sale id -> per-customer limit

    @property
    def order(self) -> Order | None:
        return self.result

    @order.setter
    def order(self, order: Order | None) -> None:
        self.result = order

    @contextmanager
    def as_submitted(self):
        """Run as the submitting thread would: its language, time zone and request id."""
        # Only what differs is switched (in a batch the leader's language and time zone are
        # usually the submitter's already; the request id never is).
        with ExitStack() as stack:
            if translation.get_language() != self.language:
                stack.enter_context(translation.override(self.language))
            if timezone.get_current_timezone() != self.time_zone:
                stack.enter_context(timezone.override(self.time_zone))
            if request_id_var.get() != self.request_id:
                token = request_id_var.set(self.request_id)
                stack.callback(request_id_var.reset, token)
            yield

    def place_alone(self) -> None:
        try:
            with self.as_submitted():
                self.order = order_place_one(customer=self.customer, cart=self.cart, channel=self.channel,
                                             now=self.now, on_created=self.on_created)
            self.error = None
        except Exception as exc:  # noqa: BLE001 - handed to the submitting thread, which raises it
            self.order, self.error = None, exc

    def created(self, order: Order) -> None:
        if self.on_created is not None:
            with self.as_submitted():
                self.on_created(order)


def placement_submit(*, customer: Customer, cart: Cart, channel: str, now: datetime,
                     on_created: Callable[[Order], None] | None = None) -> Order:
    """Place one cart, batched with the placements arriving at the same time
    when batching applies (see the module docstring), else on its own."""
    request = PlacementRequest(customer=customer, cart=cart, channel=channel, now=now, on_created=on_created)
    if _batch_max() < 2 or connection.vendor != "postgresql" or connection.in_atomic_block:
        request.place_alone()
        return request.outcome()
    return _COMBINERS.for_key(cart.store_id).submit(request)


def _batch_max() -> int:
    return int(settings.ORDER_PLACEMENT_BATCH_MAX)


def placement_batch_stats() -> dict:
    """Batches this process has written through the combiners so far (benchmarks, diagnostics)."""
    combiners = _COMBINERS.all().values()
    return {"batches": sum(c.batches for c in combiners), "placements": sum(c.items for c in combiners)}


def orders_place_batch(requests: list[PlacementRequest]) -> None:
    """Place the carts of ``requests`` together; each request gets its order or
    its error (see the module docstring). Call outside a transaction."""
    alone = [r for r in requests if r.cart.coupon_codes]
    together = [r for r in requests if not r.cart.coupon_codes]
    if len(together) == 1:
        alone, together = requests, []
    try:
        planned = _price(together, fallback=alone)
        if planned:
            try:
                _write(planned)
            except _BatchFailed:  # rolled back: placed again one by one, the failing one gets its own error
                logger.warning("placement batch of %s failed; placing one by one", len(planned), exc_info=True)
                alone += [request for request, _plan in planned]
    finally:
        for request in alone:
            request.place_alone()


def _price(requests: list[PlacementRequest], *, fallback: list[PlacementRequest],
           ) -> list[tuple[PlacementRequest, PlacementPlan]]:
    """Price every cart with one read per store, each in its buyer's language;
    refusals known before any write are set on their requests here. Carts whose
    reads or pricing fail otherwise go to ``fallback`` (placed one by one)."""
    carts: dict[tuple[int, int], list[tuple[PlacementRequest, dict]]] = defaultdict(list)
    for request in requests:
        try:
            carts[(request.cart.store_id, request.customer.brand_id)].append((request, cart_check(request.cart)))
        except DomainError as exc:
            request.error = exc
    planned = []
    for (store_id, brand_id), group in carts.items():
        try:
            rules, rows, used = _store_snapshot(store_id=store_id, brand_id=brand_id, group=group)
        except Exception:  # noqa: BLE001 - each cart then meets the error (or not) on its own
            logger.warning("placement batch: reading store %s failed; placing one by one", store_id, exc_info=True)
            fallback += [request for request, _by_code in group]
            continue
        flash_limits = {rule.id: rule.purchase_limit for rule in rules if rule.kind == PromotionKind.FLASH_SALE}
        for request, by_code in group:
            request.flash_limits = flash_limits

            def quoter(*, lines, context, _used=used.get(request.customer.pk, {})):
                return quote_compute_from_rules(lines=lines, context=context, promotions=rules, coupons=[],
                                                flash_used=_used)

            try:
                with request.as_submitted():  # the engine writes names and explanations in this language
                    priced = cart_price_from_rows(customer=request.customer, cart=request.cart, by_code=by_code,
                                                  rows=rows, now=request.now, quoter=quoter)
                    plan = placement_plan(customer=request.customer, cart=request.cart, channel=request.channel,
                                          priced=priced, now=request.now)
            except DomainError as exc:
                request.error = exc
            except Exception:  # noqa: BLE001 - not a refusal: the single path gives this cart its own error
                fallback.append(request)
            else:
                planned.append((request, plan))
    return planned


def _store_snapshot(*, store_id: int, brand_id: int, group) -> tuple[list[PromotionRule], list, dict]:
    """One read of what the batch's carts at one store are priced with: the
    store's rows of their SKUs with stock, the live promotions over the carts'
    moments, and the buyers' flash-sale counters."""
    codes = sorted({code for _request, by_code in group for code in by_code})
    rows = cart_rows(store_id=store_id, brand_id=brand_id, sku_codes=codes)
    nows = [request.now for request, _by_code in group]
    rules = [PromotionRule.from_model(p) for p in promotions_active_for_store(
        brand_id=brand_id, store_id=store_id, now=min(nows), until=max(nows))] if rows else []
    limited = [rule.id for rule in rules if rule.kind == PromotionKind.FLASH_SALE and rule.purchase_limit is not None]
    used = flash_sale_used_by_customers(customer_ids={r.customer.pk for r, _c in group}, promotion_ids=limited)
    return rules, rows, used


WRITE_ATTEMPTS = 3  # a sell-out inside a batch needs 2; a third means the stock moved meanwhile


def _day_seqs(planned) -> dict[int, int]:
    """Day numbers first, in autocommit (each store's counter row is held for
    one statement); a refused cart leaves a gap, as a refused single placement does."""
    numbered: dict[tuple[int, object], list] = defaultdict(list)
    for request, plan in planned:
        numbered[(plan.order_fields["store"].pk, plan.business_date)].append(request)
    day_seqs: dict[int, int] = {}
    for (store_id, business_date), group in numbered.items():
        for request, seq in zip(group, day_seq_next_many(store_id=store_id, business_date=business_date,
                                                          count=len(group))):
            day_seqs[id(request)] = seq
    return day_seqs


def _write(planned: list[tuple[PlacementRequest, PlacementPlan]]) -> None:
    try:
        day_seqs = _day_seqs(planned)
        # (promotion, customer) -> the flash sale's per-customer limit, for the limited ones.
        limits = {(promotion_id, request.customer.pk): request.flash_limits[promotion_id]
                  for request, plan in planned for promotion_id in plan.flash_sale_units
                  if request.flash_limits.get(promotion_id) is not None}
        flash_sale_usages_ensure(limits=limits)  # autocommit: never waited for under our locks
    except Exception as exc:  # nothing but day numbers and empty counters is written yet
        raise _BatchFailed(str(exc)) from exc
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
    raise _BatchFailed("refusals kept changing")  # placed one by one instead


class _SomeRefused(Exception):
    def __init__(self, admitted):
        super().__init__("some carts of the batch were refused")
        self.admitted = admitted


class _BatchFailed(Exception):
    """The batch's transaction was rolled back for a reason other than a refusal."""


def _write_attempt(candidates, *, day_seqs, limits) -> list[Order]:
    """One transaction: write every candidate's order and run its hook, then
    lock the flash-sale counters and the stock rows and admit. The hot rows are
    locked last, as a single placement locks them, so they are held for the
    admission, two UPDATEs and the COMMIT only. If a cart does not fit (a sell-out
    or a limit reached: rare), the transaction is rolled back and the caller
    writes the admitted carts again (``_SomeRefused``). Any other error inside
    the transaction rolls it back and becomes ``_BatchFailed``; one raised after
    the COMMIT (an on-commit callback) is not caught: the orders are written and
    must not be placed twice."""
    with transaction.atomic():
        return _write_in_transaction(candidates, day_seqs=day_seqs, limits=limits)


def _write_in_transaction(candidates, *, day_seqs, limits) -> list[Order]:
    try:
        drafts = [order_draft(day_seq=day_seqs[id(request)], **plan.order_fields) for request, plan in candidates]
        orders = order_drafts_save(drafts=drafts)
        with idempotency_answers_together():  # the hooks' Idempotency-Key answers: one UPDATE
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
    except _SomeRefused:
        raise
    except Exception as exc:  # rolled back by the caller's atomic(): nothing of the batch is written
        raise _BatchFailed(str(exc)) from exc
    return orders


def _admit(planned, *, usages, limits, stocks) -> list[tuple[PlacementRequest, PlacementPlan]]:
    """Admit the carts in arrival order against what the locked rows hold; the
    others get the refusal a single placement would give. Nothing is written.

    Deciding in Python is safe here because every row decided on is locked
    (``FOR UPDATE``) until COMMIT; the writes are still guarded (``on_hand >= 0``
    in the UPDATE, the CHECKs on stock and counters), so a mistake here fails the
    batch instead of overselling."""
    held = {key: usage.used for key, usage in usages.items()}
    left = {key: stock.on_hand for key, stock in stocks.items()}
    admitted = []
    for request, plan in planned:
        customer_id, store_id = request.customer.pk, plan.order_fields["store"].pk
        over = next(((key, units) for promotion_id, units in plan.flash_sale_units.items()
                     if (key := (promotion_id, customer_id)) in limits and held[key] + units > limits[key]), None)
        if over is not None:
            with request.as_submitted():  # its message is formatted now
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


# One group commit per store (core.groupcommit): a batch waiting for a lock at one store
# holds up no other store.
_COMBINERS = GroupCommits(lambda batch: orders_place_batch(batch), size=_batch_max)  # looked up at each batch
