"""Platform orders in: ingest (idempotent, forward-only) and pushes.

See channels/services/__init__.py for the rules.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import NoReturn

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from aftersales.models import AfterSalesScope, AfterSalesStatus
from aftersales.services import (
    PlatformAsk,
    aftersales_platform_closed,
    aftersales_platform_latest,
    aftersales_platform_record,
    aftersales_platform_refunded,
)
from catalog.selectors import skus_resolve_platform_codes
from catalog.services import platform_codes_learn
from channels.adapters import adapter_for
from channels.adapters.base import (
    ZERO,
    BindingMismatch,
    ParsedOrder,
    ParsedRefund,
    PlatformError,
    PlatformPayloadError,
    PushEvent,
    PushKind,
    RefundState,
)
from channels.models import StoreBinding
from channels.selectors import order_by_channel_id
from core.actors import Actor, ActorKind
from core.errors import InvalidInput, TransitionNotAllowed
from core.groupcommit import GroupCommits, Submitted
from core.logging import request_id_var
from inventory.services import stock_deduct_in_turn
from orders.models import Order, OrderAction, OrderFlagKind, OrderReasonCode, OrderStatus
from orders.models.machines import machine_graph
from orders.services import DiscountInput, LineInput, order_transition
from orders.services.acceptance import orders_auto_accept_if_enabled
from orders.services.creation import (
    business_date_of,
    day_seq_next_many,
    order_draft,
    order_drafts_save,
)
from orders.services.sync import order_flag, order_last_flag
from orders.status_map import platform_status_to_system
from promotions.apportion import apportion

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
ORDER_ID_MAX_LENGTH = 64  # Order.channel_order_id
REVERSE_ACTIONS = frozenset({OrderAction.CANCEL, OrderAction.REJECT, OrderAction.REFUND, OrderAction.PAY})
CLOSED_STATUSES = frozenset({OrderStatus.CANCELLED, OrderStatus.REFUNDED})
CONFIRMED_STATUSES = {OrderStatus.DELIVERED, OrderStatus.PICKED_UP}

# The flag kinds around a platform refund application (orders.models.OrderFlagKind).
REFUND_KINDS = [OrderFlagKind.REFUND_REQUESTED, OrderFlagKind.REFUND_REJECTED, OrderFlagKind.REFUND_WITHDRAWN]


class PageNotWhole(Exception):
    """A page of pulled payloads holds one to refuse: ingest them one at a time."""


# What makes a page (pulled or pushed) be written again one order at a time.
PAGE_FALLBACK_ERRORS = (PageNotWhole, BindingMismatch, PlatformError, PlatformPayloadError, InvalidInput,
                        IntegrityError, DataError)


@dataclass
class IngestResult:
    order: Order
    created: bool
    applied: list[str] = field(default_factory=list)  # actions applied to the order by this payload


@dataclass
class PullResult:
    binding_id: int
    pulled: int = 0
    created: int = 0
    errors: list[str] = field(default_factory=list)
    skipped: bool = False  # another pull of this binding was running


def _reread(order: Order) -> Order:
    """A fresh copy of ``order``. (django-fsm's refresh_from_db lifts the field's
    protection for every thread while it runs, so it is not used here.)"""
    return Order.objects.get(pk=order.pk)


def _platform_actor(platform: str) -> Actor:
    return Actor.platform(platform)


# --- Ingest ---------------------------------------------------------------------------------


def platform_order_ingest(*, binding: StoreBinding, payload: dict) -> IngestResult:
    """Create the order of ``payload`` once; apply its platform state forward only.

    Only an order of ``binding``'s shop and store: a payload naming another shop, or
    whose order is another store's, raises ``BindingMismatch`` (logged) and changes
    nothing. Safe against concurrent duplicates: the unique (channel,
    channel_order_id) index decides, and the loser returns the winner's order.
    """
    parsed = _order_parse(binding=binding, payload=payload)
    if parsed.shop_code != binding.shop_code:
        _refuse_foreign(binding=binding, shop_code=parsed.shop_code, order_id=parsed.order_id,
                        message=f"shop {parsed.shop_code!r} is not this binding's")
    existing = order_by_channel_id(platform=binding.platform, channel_order_id=parsed.order_id)
    if existing is not None:
        return _ingest_known(binding=binding, order=existing, parsed=parsed)
    try:
        with transaction.atomic():
            order = _order_create_from_platform(binding=binding, parsed=parsed, payload=payload)
    except IntegrityError:
        existing = order_by_channel_id(platform=binding.platform, channel_order_id=parsed.order_id)
        if existing is None:
            raise
        return _ingest_known(binding=binding, order=existing, parsed=parsed)
    except DataError as exc:
        # A value no column holds (a 70-character code, an amount past 10 digits): malformed.
        raise PlatformPayloadError(f"order {parsed.order_id}: a value does not fit: {exc}"[:300]) from None
    applied = _apply_platform_state(order=order, parsed=parsed)
    order = _reread(order)
    return IngestResult(order=order, created=True, applied=applied)


def _order_parse(*, binding: StoreBinding, payload: dict) -> ParsedOrder:
    """The adapter's reading of ``payload``. Parsing is pure, so any error it raises
    means the payload is malformed: PlatformPayloadError, never a server error."""
    try:
        parsed = adapter_for(binding.platform).parse_order(binding, payload)
    except PlatformPayloadError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise PlatformPayloadError(f"malformed order: {type(exc).__name__}: {exc}"[:300]) from None
    if not parsed.order_id or len(parsed.order_id) > ORDER_ID_MAX_LENGTH:
        raise PlatformPayloadError(f"the order id is empty or longer than {ORDER_ID_MAX_LENGTH} characters")
    return parsed


def _refuse_foreign(*, binding: StoreBinding, shop_code: str, order_id: str, message: str) -> NoReturn:
    """A payload or push about another shop's or store's order: log it and change nothing."""
    logger.warning("platform order of another shop or store refused", extra={
        "binding": binding.pk, "platform": binding.platform, "shop": shop_code[:64], "order_id": order_id[:64],
        "binding_shop": binding.shop_code, "error": message})
    raise BindingMismatch(message, binding_id=binding.pk, platform=binding.platform, shop_code=shop_code[:64],
                          order_id=order_id[:64])


def _ingest_known(*, binding: StoreBinding, order: Order, parsed: ParsedOrder) -> IngestResult:
    if order.store_id != binding.store_id:
        _refuse_foreign(binding=binding, shop_code=parsed.shop_code, order_id=parsed.order_id,
                        message=f"order {parsed.order_id} is not this shop's")
    applied = _apply_platform_state(order=order, parsed=parsed)
    order = _reread(order)
    return IngestResult(order=order, created=False, applied=applied)


def _line_discounts(*, amount: Decimal, grosses: list[Decimal]) -> list[Decimal]:
    """The order's platform discount apportioned to its lines by promotions.apportion,
    with the answers platform intake has always given (its own copy, before issue 11):

    - no discount, or lines adding up to nothing: no line is discounted;
    - a cent left over goes first to the line whose share leaves the largest fraction
      of a cent *as computed in Decimal* (28 digits: two shares whose exact fractions
      are equal may differ in the last digit), then to the larger line, then the
      earlier. promotions.apportion gives ties to the earlier position, so the lines
      are handed to it in that order and its parts put back in theirs.

    ``amount`` is at most the lines' sum and the lines are not negative (the caller's
    checks); the amounts are whole cents (channels.adapters.base.money)."""
    total = sum(grosses, ZERO)
    if amount <= 0 or total <= 0:
        return [ZERO for _gross in grosses]
    shares = [amount * gross / total for gross in grosses]
    fractions = [share - share.quantize(CENT, rounding=ROUND_DOWN) for share in shares]
    order = sorted(range(len(grosses)), key=lambda i: (fractions[i], grosses[i]), reverse=True)
    parts = apportion(amount=amount, weights=[grosses[i] for i in order])
    discounts = [ZERO] * len(grosses)
    for position, index in enumerate(order):
        discounts[index] = parts[position]
    return discounts


@dataclass
class _CreatePlan:
    """What a new platform order will be, worked out before anything is written."""

    parsed: ParsedOrder
    create: dict  # order_create's / order_draft's keyword arguments, but the store and the day number
    quantities: dict[int, int]  # sku id -> units to take from stock
    issues: list[tuple[str, str, dict]]  # (flag kind, reason, data) to flag the order with
    learn: list[tuple[int, str, str]]  # platform_codes_learn's ``seen``


def _create_plan(*, binding: StoreBinding, parsed: ParsedOrder, payload: dict, skus: list) -> _CreatePlan:
    """The order of a new platform payload, its stock and its flags, from the payload and
    our SKUs of its lines (``skus``: one per line, None when unknown). Reads and writes
    nothing; a payload we cannot take raises ``PlatformPayloadError``."""
    issues: list[tuple[str, str, dict]] = []
    resolved = []
    unknown = []
    for line, sku in zip(parsed.lines, skus, strict=True):
        if sku is None:
            unknown.append(line.merchant_code or line.platform_sku_id or line.name)
        resolved.append((line, sku))
    if not resolved:
        raise PlatformPayloadError(f"order {parsed.order_id} has no lines")

    grosses = [line.unit_price * line.quantity for line, _sku in resolved]
    subtotal = sum(grosses, ZERO)
    discount_total = parsed.discount_total
    discounts = [DiscountInput(kind="platform", name=d.name or d.reference, amount=d.amount,
                               merchant_part=d.merchant_part, platform_part=d.platform_part, reference=d.reference)
                 for d in parsed.discounts]
    if discount_total > subtotal:
        issues.append((OrderFlagKind.AMOUNT_MISMATCH, _("platform discounts exceed the items; not applied"),
                       {"discount": str(discount_total), "subtotal": str(subtotal)}))
        discounts, discount_total = [], ZERO
    if discount_total > 0 and any(gross < 0 for gross in grosses):
        # Refused before as well, by order_create or a CHECK constraint (line totals and
        # discounts are never negative); a discount cannot be shared over such a line.
        raise PlatformPayloadError(f"order {parsed.order_id}: a line has a negative price")
    line_discounts = _line_discounts(amount=discount_total, grosses=grosses)
    lines = []
    for index, ((line, sku), discount) in enumerate(zip(resolved, line_discounts, strict=True)):
        packaging = line.packaging_fee + (parsed.packaging_fee if index == 0 else ZERO)
        lines.append(LineInput(
            name=line.name or (sku.display_name if sku else "?"), unit_price=line.unit_price, quantity=line.quantity,
            sku_id=sku.pk if sku else None, sku_code=sku.code if sku else (line.merchant_code or line.platform_sku_id),
            spec=line.spec, discount=discount, packaging_fee=packaging,
            platform_food_code=line.platform_food_code, platform_sku_id=line.platform_sku_id,
        ))
    computed = subtotal - discount_total + parsed.delivery_fee + sum((ln.packaging_fee for ln in lines), ZERO)
    if parsed.total and computed != parsed.total:
        issues.append((OrderFlagKind.AMOUNT_MISMATCH, _("platform total %(platform)s differs from %(computed)s")
                       % {"platform": parsed.total, "computed": computed},
                       {"platform_total": str(parsed.total), "computed_total": str(computed)}))
    if unknown:
        issues.insert(0, (OrderFlagKind.UNKNOWN_SKU, _("unknown SKU: %(codes)s") % {"codes": ", ".join(unknown)},
                          {"codes": unknown}))
    quantities: dict[int, int] = defaultdict(int)
    for line, sku in resolved:
        if sku is not None:
            quantities[sku.pk] += line.quantity
    create = dict(
        channel=binding.platform, order_type=parsed.order_type, lines=lines, actor=_platform_actor(binding.platform),
        channel_order_id=parsed.order_id, channel_order_no=parsed.view_no, channel_day_seq=parsed.day_seq,
        contact_name=parsed.contact_name, contact_phone=parsed.contact_phone, address=parsed.address,
        customer_note=parsed.note, discounts=discounts, delivery_fee=parsed.delivery_fee, paid=True,
        payment_provider=binding.platform, placed_at=parsed.placed_at, expected_at=parsed.expected_at,
        raw_payload=payload,
        # Flagged from the start, so the store's auto-accept leaves it to a person.
        needs_attention=bool(issues), attention_reason=str(issues[0][1])[:255] if issues else "",
    )
    # The platform's own codes of lines we matched by our merchant code: learnt, so sold-out
    # reaches the platform for SKUs nobody mapped by hand.
    learn = [(sku.pk, line.platform_sku_id, line.platform_food_code) for line, sku in resolved
             if sku is not None and line.platform_sku_id and line.merchant_code == sku.code]
    return _CreatePlan(parsed=parsed, create=create, quantities=dict(quantities), issues=issues, learn=learn)


def _lines_check(parsed: ParsedOrder) -> None:
    for line in parsed.lines:
        if line.quantity <= 0:
            raise PlatformPayloadError(f"order {parsed.order_id}: a line has quantity {line.quantity}")


def _skus_of(*, binding: StoreBinding, parsed_orders: list[ParsedOrder]) -> list[list]:
    """Our SKU of every line of ``parsed_orders`` (None when unknown), per order: one
    resolution for all of them."""
    store = binding.store
    found = iter(skus_resolve_platform_codes(
        brand_id=store.brand_id, store_id=store.pk, platform=binding.platform,
        lines=[(line.merchant_code, line.platform_sku_id) for parsed in parsed_orders for line in parsed.lines]))
    return [[next(found) for _line in parsed.lines] for parsed in parsed_orders]


def _plan_flags(*, order: Order, plan: _CreatePlan, shortfall: dict[int, int]) -> Order:
    """Flag a new order with its plan's issues and its stock shortfall (if any)."""
    issues = list(plan.issues)
    if shortfall:
        issues.append((OrderFlagKind.STOCK_SHORTFALL, _("stock shortfall"),
                       {"skus": {str(k): v for k, v in sorted(shortfall.items())}}))
    actor = _platform_actor(order.channel)
    for kind, reason, data in issues:
        order = order_flag(order_id=order.pk, actor=actor, reason=reason, kind=kind, data=data)
    return order


def _order_create_from_platform(*, binding: StoreBinding, parsed: ParsedOrder, payload: dict) -> Order:
    """Create, take stock, flag. Runs inside the caller's transaction."""
    return _orders_create_from_platform(binding=binding, parsed_orders=[parsed], payloads=[payload])[0]


def platform_orders_ingest_page(*, binding: StoreBinding, payloads: list[dict]) -> list[IngestResult]:
    """``platform_order_ingest`` for a page of pulled payloads at once; its results, in order.

    Runs inside the caller's transaction, all or nothing: any error raises, and the
    caller rolls the page back (the pull then ingests the page one payload at a time,
    which finds the one at fault and keeps the others). The page's new orders are
    written together, with what one at a time would write (numbers, rows, events,
    feed rows, ledger and shortfall rows, flags, learnt codes): their SKUs resolved in
    one query, their day numbers drawn in one statement per business day, one INSERT
    per table, their stock taken under one lock in page order, the store's auto-accept
    read once. Payloads of orders we know, or of an order already in the page, go
    through ``platform_order_ingest`` one by one after them. A payload of another shop,
    or of another store's order, raises ``PageNotWhole`` before anything is written.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("platform_orders_ingest_page runs inside the caller's transaction")
    parsed_all = [_order_parse(binding=binding, payload=payload) for payload in payloads]
    known = dict(Order.objects.filter(channel=binding.platform,
                                      channel_order_id__in=[parsed.order_id for parsed in parsed_all])
                 .values_list("channel_order_id", "store_id"))
    if any(parsed.shop_code != binding.shop_code or known.get(parsed.order_id, binding.store_id) != binding.store_id
           for parsed in parsed_all):
        raise PageNotWhole("a payload of the page is of another shop or store")  # refused one at a time, once
    new: dict[str, int] = {}  # order id -> its place in the page
    for index, parsed in enumerate(parsed_all):
        if parsed.order_id not in known and parsed.order_id not in new:
            new[parsed.order_id] = index
    results: list[IngestResult | None] = [None] * len(payloads)
    places = list(new.values())
    created = _orders_create_from_platform(binding=binding, parsed_orders=[parsed_all[i] for i in places],
                                           payloads=[payloads[i] for i in places])
    for index, order in zip(places, created, strict=True):
        # Fresh: written in this transaction, nobody else can have changed it.
        results[index] = IngestResult(order=order, created=True,
                                      applied=_apply_platform_state(order=order, parsed=parsed_all[index], fresh=True))
    for index, payload in enumerate(payloads):
        if results[index] is None:
            results[index] = platform_order_ingest(binding=binding, payload=payload)
    return results


def _orders_create_from_platform(*, binding: StoreBinding, parsed_orders: list[ParsedOrder],
                                 payloads: list[dict]) -> list[Order]:
    """New platform orders of one binding, written together: created (paid), auto-accepted
    where the store does, stock taken in turn, flagged, their platform codes learnt. Runs
    inside the caller's transaction: an order refused by ``order_draft`` rolls back the
    day numbers drawn with it, so bad input leaves no gap."""
    if not parsed_orders:
        return []
    store = binding.store
    for parsed in parsed_orders:
        _lines_check(parsed)
    plans = [_create_plan(binding=binding, parsed=parsed, payload=payload, skus=skus)
             for parsed, payload, skus in zip(parsed_orders, payloads,
                                              _skus_of(binding=binding, parsed_orders=parsed_orders), strict=True)]
    now = timezone.now()
    for plan in plans:
        plan.create["placed_at"] = plan.create["placed_at"] or now
    by_date: dict = defaultdict(list)
    for index, plan in enumerate(plans):
        by_date[business_date_of(plan.create["placed_at"])].append(index)
    day_seqs: dict[int, int] = {}
    for business_date, indexes in sorted(by_date.items()):
        numbers = day_seq_next_many(store_id=store.pk, business_date=business_date, count=len(indexes))
        day_seqs.update(zip(indexes, numbers, strict=True))
    orders = order_drafts_save(drafts=[order_draft(store=store, day_seq=day_seqs[index], **plan.create)
                                       for index, plan in enumerate(plans)])
    orders = orders_auto_accept_if_enabled(orders=orders)  # created paid: the store's to handle now
    shortfalls = stock_deduct_in_turn(store_id=store.pk, deductions=[
        (order.order_no, plan.quantities) for order, plan in zip(orders, plans, strict=True)])
    orders = [_plan_flags(order=order, plan=plan, shortfall=shortfall)
              for order, plan, shortfall in zip(orders, plans, shortfalls, strict=True)]
    platform_codes_learn(brand_id=store.brand_id, store_id=store.pk, platform=binding.platform,
                         seen=[seen for plan in plans for seen in plan.learn])
    return orders


# --- Applying the platform's state to a known order (forward only) ------------------------


def _forward_path(order: Order, targets: set[str]) -> list[str]:
    """The shortest chain of forward actions from the order's status to one of ``targets``
    (empty when it is there already, or when the targets lie behind it)."""
    if not targets or order.status in targets:
        return []
    if targets == {OrderStatus.COMPLETED}:
        # The platform settled the order; completing it is our after-sales job's
        # call, so being confirmed is as far as a platform moves it.
        targets = CONFIRMED_STATUSES
        if order.status in targets or order.status == OrderStatus.COMPLETED:
            return []
    edges = defaultdict(list)
    for source, action, target in machine_graph(order.order_type):
        if action not in REVERSE_ACTIONS and action != OrderAction.COMPLETE:
            edges[source].append((action, target))
    queue = deque([(order.status, [])])
    seen = {order.status}
    while queue:
        status, path = queue.popleft()
        for action, target in edges[status]:
            if target in seen:
                continue
            if target in targets:
                return [*path, action]
            seen.add(target)
            queue.append((target, [*path, action]))
    return []


def _transition_quietly(*, order: Order, action: str, actor: Actor, **kwargs) -> bool:
    try:
        order_transition(order_id=order.pk, action=action, actor=actor, **kwargs)
    except TransitionNotAllowed:
        return False  # a concurrent change got there first; the next payload re-evaluates
    return True


def _apply_platform_state(*, order: Order, parsed: ParsedOrder, fresh: bool = False) -> list[str]:
    """``fresh``: ``order`` is as its row is (written in this transaction), no need to read it."""
    if not fresh:
        order = _reread(order)
    if parsed.cancelled:
        latest = aftersales_platform_latest(order_id=order.pk)
        if parsed.refund_state == RefundState.AGREED and latest is not None and latest.status in (
                AfterSalesStatus.REQUESTED, AfterSalesStatus.APPROVED, AfterSalesStatus.REFUNDING):
            # Cancelled because the refund went through: the application is refunded too.
            return _platform_refund_agreed(order=order, reason=parsed.refund_reason)
        return _platform_cancel(order=order, reason=parsed.refund_reason or _("cancelled on the platform"))
    applied = []
    if parsed.refund_state == RefundState.AGREED:
        applied += _platform_refund_agreed(order=order, reason=parsed.refund_reason)
        order = _reread(order)
        if order.status in CLOSED_STATUSES:
            return applied  # the whole order was refunded; a partial refund leaves it going
    if order.status not in CLOSED_STATUSES:
        targets = set(platform_status_to_system(platform=parsed.platform, order_type=order.order_type,
                                                code=parsed.status_code))
        actor = _platform_actor(parsed.platform)
        for action in _forward_path(order, targets):
            if not _transition_quietly(order=order, action=action, actor=actor):
                break
            applied.append(action)
            order = _reread(order)
    applied += _refund_state_note(order=order, state=parsed.refund_state, reason=parsed.refund_reason,
                                  platform=parsed.platform)
    return applied


def _platform_cancel(*, order: Order, reason: str, reason_code: str = OrderReasonCode.PLATFORM_CANCELLED) -> list[str]:
    """The platform cancelled: cancel (stock comes back through orders) or, once
    dispatched, refund. Already closed: nothing."""
    actor = _platform_actor(order.channel)
    for _attempt in range(3):
        order = _reread(order)
        if order.status in CLOSED_STATUSES:
            return []
        allowed = order.available_actions(actor_kind=ActorKind.PLATFORM)
        action = next((a for a in (OrderAction.CANCEL, OrderAction.REFUND) if a in allowed), None)
        if action is None:
            order_flag(order_id=order.pk, actor=actor, kind=OrderFlagKind.PLATFORM_CONFLICT,
                       reason=_("cancelled on the platform in status %(status)s") % {"status": order.status})
            return [OrderAction.FLAG.value]
        if _transition_quietly(order=order, action=action, actor=actor, reason_code=reason_code,
                               reason=str(reason)[:255]):
            return [action.value]
    return []


def _platform_ask(*, order: Order, reason: str, refund: ParsedRefund | None, refund_id: str) -> PlatformAsk:
    """The platform's application in after-sales' terms; a partial amount below zero or
    above the order's total is the platform's error (refused, nothing recorded)."""
    refund = refund or ParsedRefund()
    if refund.partial and refund.amount is not None and not ZERO <= refund.amount <= order.total:
        raise PlatformPayloadError(f"partial refund of {refund.amount} outside the order total {order.total}")
    return PlatformAsk(refund_id=str(refund_id)[:64], reason=str(reason)[:255], partial=refund.partial,
                       amount=refund.amount, lines=tuple(refund.lines))


def _platform_refund_agreed(*, order: Order, reason: str, refund: ParsedRefund | None = None,
                            refund_id: str = "") -> list[str]:
    """The platform agreed a refund (its own decision, its arbitration, or its word on
    the merchant's agree): the after-sales request becomes refunded, once
    (aftersales.services.aftersales_platform_refunded). Whole order: then cancel or
    refund the order. A partial refund (this push says so, or the application was
    partial) leaves the order going."""
    latest = aftersales_platform_latest(order_id=order.pk)
    partial = bool(refund and refund.partial) or (
        latest is not None and latest.scope == AfterSalesScope.LINES and latest.status in (
            AfterSalesStatus.REQUESTED, AfterSalesStatus.APPROVED, AfterSalesStatus.REFUNDING,
            AfterSalesStatus.REFUNDED))
    if partial and refund is None and latest is not None and latest.status == AfterSalesStatus.REFUNDED:
        return []  # a pulled "agreed" of the partial refund we know
    if order.status in CLOSED_STATUSES and (latest is None or latest.status == AfterSalesStatus.REFUNDED):
        return []
    actor = _platform_actor(order.channel)
    _request, moved = aftersales_platform_refunded(
        order=order, ask=_platform_ask(order=order, reason=reason, refund=refund, refund_id=refund_id),
        actor=actor)
    if partial:
        return [OrderAction.FLAG.value] if moved else []
    return _platform_cancel(order=order, reason=reason or _("refund agreed on the platform"),
                            reason_code=OrderReasonCode.PLATFORM_REFUND)


def _refund_applied(*, order: Order, reason: str, platform: str, refund_id: str,
                    refund: ParsedRefund | None, pushed: bool) -> list[str]:
    """A refund application: recorded once as an after-sales request (with the order's
    ``refund_requested`` flag and the POS feed events in the same transaction). A
    pulled "applied" state after the merchant answered is the platform not having
    caught up."""
    if order.status in CLOSED_STATUSES:
        return []
    ask = _platform_ask(order=order, reason=reason, refund=refund, refund_id=refund_id)
    actor = _platform_actor(platform)
    latest = aftersales_platform_latest(order_id=order.pk)
    if latest is not None:
        if latest.status == AfterSalesStatus.REQUESTED:
            aftersales_platform_record(order=order, ask=ask, actor=actor)  # more detail
            return []
        if refund_id and latest.platform_refund_id == refund_id:
            return []  # the application already answered
        if not pushed:
            return []  # answered; the platform's pulled state has not caught up
    elif not refund_id:
        last = order_last_flag(order_id=order.pk, kinds=REFUND_KINDS)
        if last is not None and last.reason_code == OrderFlagKind.REFUND_REQUESTED:
            return []  # flagged before applications were recorded
    try:
        with transaction.atomic():
            _request, created = aftersales_platform_record(order=order, ask=ask, actor=actor)
    except IntegrityError:
        return []  # the same application, recorded at the same moment by a concurrent push or pull
    # Not created: recorded since we read (a concurrent push or pull committed it
    # first); its flag and POS events are that one's.
    return [OrderAction.FLAG.value] if created else []


def _refund_state_note(*, order: Order, state: str, reason: str, platform: str, refund_id: str = "",
                       refund: ParsedRefund | None = None, pushed: bool = False) -> list[str]:
    """Record a refund application (needs a person) or its end on the platform
    (rejected there, or withdrawn by the customer); never twice."""
    if state == RefundState.APPLIED:
        return _refund_applied(order=order, reason=reason, platform=platform, refund_id=refund_id, refund=refund,
                               pushed=pushed)
    status = {RefundState.REJECTED: AfterSalesStatus.REJECTED,
              RefundState.CANCELLED: AfterSalesStatus.WITHDRAWN}.get(state)
    if status is None:
        return []
    closed = aftersales_platform_closed(order_id=order.pk, status=status, actor=_platform_actor(platform),
                                        reason=reason)
    return [OrderAction.FLAG.value] if closed is not None else []


# --- Pushes -------------------------------------------------------------------------------------


def platform_push_handle(*, binding: StoreBinding, event: PushEvent,
                         same_credentials: Sequence[StoreBinding] = ()) -> IngestResult | None:
    """Apply one verified push.

    ``binding`` verified the push's signature; ``same_credentials``: other enabled
    bindings holding the same app id and secret (one platform app serving several of
    our shops), which verify it just as well. The push acts through the one of these
    whose shop it names and whose store holds its order, never through another
    binding: a push naming another shop, or about another store's order, raises
    ``BindingMismatch`` (logged) and changes nothing. An event about an order we do
    not know yet (a cancellation overtaking its creation) fetches the order with that
    binding first; the fetched order must be the pushed one, of one of these shops.
    """
    if event.kind == PushKind.IGNORED:
        return None
    verified = [binding, *same_credentials]
    if event.kind == PushKind.ORDER_CREATED:
        return pushed_order_ingest(binding=_push_binding(verified=verified, event=event),
                                   payload=event.order_payload or {})
    order = order_by_channel_id(platform=binding.platform, channel_order_id=event.order_id)
    acting = _push_binding(verified=verified, event=event, store_id=order.store_id if order else None)
    result = None
    if order is None or event.kind == PushKind.ORDER_COMPLETED:
        payload = adapter_for(acting.platform).fetch_order(acting, event.order_id)
        parsed = _order_parse(binding=acting, payload=payload)
        if parsed.order_id != event.order_id:
            raise PlatformPayloadError(f"asked for order {event.order_id}, the platform answered {parsed.order_id}")
        if order is None:  # its shop is known only now
            acting = _push_binding(verified=verified, event=replace(event, shop_code=parsed.shop_code))
        result = platform_order_ingest(binding=acting, payload=payload)
        order = result.order
    result = result or IngestResult(order=order, created=False)
    if event.kind == PushKind.ORDER_CANCELLED:
        result.applied += _platform_cancel(order=order, reason=event.reason or _("cancelled on the platform"))
    elif event.kind == PushKind.REFUND_AGREED:
        result.applied += _platform_refund_agreed(order=_reread(order), reason=event.reason, refund=event.refund,
                                                  refund_id=event.refund_id)
    elif event.kind in (PushKind.REFUND_APPLIED, PushKind.REFUND_REJECTED, PushKind.REFUND_CANCELLED):
        state = {PushKind.REFUND_APPLIED: RefundState.APPLIED, PushKind.REFUND_REJECTED: RefundState.REJECTED,
                 PushKind.REFUND_CANCELLED: RefundState.CANCELLED}[event.kind]
        order = _reread(order)
        result.applied += _refund_state_note(order=order, state=state, reason=event.reason,
                                             platform=acting.platform, refund_id=event.refund_id,
                                             refund=event.refund, pushed=True)
    result.order = _reread(result.order)
    return result


@dataclass(eq=False)
class _PushedOrder(Submitted):
    binding: StoreBinding | None = None
    payload: dict = field(default_factory=dict)
    request_id: str = field(default_factory=request_id_var.get)
    language: str | None = field(default_factory=translation.get_language)


def pushed_order_ingest(*, binding: StoreBinding, payload: dict) -> IngestResult:
    """``platform_order_ingest`` of a pushed order, written together with the orders of the
    same binding pushed to this process at the same moment (``core.groupcommit``: up to
    ``CHANNELS_PUSH_BATCH_MAX`` as one page, ``platform_orders_ingest_page``). Returns once
    this order is stored (the push is answered after that, as always). A page that cannot
    be written whole is written one order at a time, each with its own outcome; on
    SQLite, inside a transaction or with batching off, one at a time from the start."""
    if (settings.CHANNELS_PUSH_BATCH_MAX < 2 or connection.vendor != "postgresql"
            or connection.in_atomic_block):
        return platform_order_ingest(binding=binding, payload=payload)
    return _PUSH_COMBINERS.for_key(binding.pk).submit(_PushedOrder(binding=binding, payload=payload))


def _pushed_orders_write(batch: list[_PushedOrder]) -> None:
    # Flags are written in the pushing request's language: a page holds one language.
    if len(batch) > 1 and len({item.language for item in batch}) == 1:
        try:
            with translation.override(batch[0].language), transaction.atomic():
                results = platform_orders_ingest_page(binding=batch[0].binding,
                                                      payloads=[item.payload for item in batch])
        except PAGE_FALLBACK_ERRORS:
            pass  # one at a time below: each push gets its own answer
        else:
            for item, result in zip(batch, results, strict=True):
                item.result = result
            return
    for item in batch:
        token = request_id_var.set(item.request_id)  # its logs under its own request's id
        try:
            with translation.override(item.language):
                item.result = platform_order_ingest(binding=item.binding, payload=item.payload)
        except Exception as exc:  # noqa: BLE001 - raised in the pushing thread, by its push view
            item.error = exc
        finally:
            request_id_var.reset(token)


_PUSH_COMBINERS = GroupCommits(_pushed_orders_write, size=lambda: settings.CHANNELS_PUSH_BATCH_MAX)


def _push_binding(*, verified: list[StoreBinding], event: PushEvent, store_id: int | None = None) -> StoreBinding:
    """The verified binding a push acts through: of the shop(s) it names, and of the store
    of its order when we know the order. None of them: ``BindingMismatch``."""
    candidates = verified
    for shop_code in dict.fromkeys(code for code in (event.shop_code, event.message_shop_code) if code):
        candidates = [candidate for candidate in candidates if candidate.shop_code == shop_code]
        if not candidates:
            _refuse_foreign(binding=verified[0], shop_code=shop_code, order_id=event.order_id,
                            message=f"shop {shop_code!r} is not this binding's")
    if store_id is not None:
        of_store = [candidate for candidate in candidates if candidate.store_id == store_id]
        if not of_store:
            _refuse_foreign(binding=candidates[0], shop_code=event.shop_code, order_id=event.order_id,
                            message=f"order {event.order_id} is not this shop's")
        candidates = of_store
    return candidates[0]


def binding_create(*, store, platform: str, shop_code: str, app_id: str, secret: str, base_url: str,
                   token: str = "", pull_interval_seconds: int = 30, enabled: bool = True) -> StoreBinding:
    """Bind a store to a platform (the admin form does the same with validation)."""
    return StoreBinding.objects.create(
        store=store, platform=platform, shop_code=shop_code, app_id=app_id, secret=secret, token=token,
        base_url=base_url, pull_interval_seconds=pull_interval_seconds, enabled=enabled,
    )
