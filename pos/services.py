"""Writes of the POS side: terminals and their tokens, and what a terminal does
to its store's orders and stock. Every order change goes through
orders.services (row lock, audit event, outbox, feed in one transaction); a
terminal only ever reaches orders of its own store (``expected_store_id``).
"""

import hashlib
import secrets
from collections import defaultdict
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Store
from accounts.store_state import store_state_set
from aftersales.models import AfterSalesRequest
from aftersales.services import aftersales_approve, aftersales_goods_received, aftersales_reject
from catalog.models import Sku
from catalog.services import store_sku_set_availability
from core.actors import Actor, ActorKind
from core.errors import Conflict, InvalidInput, PermissionDenied, TransitionNotAllowed
from inventory.models import MovementReason
from inventory.services import stock_deduct
from orders.locks import order_lock
from orders.models import Order, OrderAction, OrderType
from orders.services import order_confirm, order_transition
from orders.services.feed import feed_ack
from orders.services.acceptance import prep_minutes_for
from orders.services.vouchers import VoucherRedemption, voucher_code_redeem
from pos.models import PosTerminal, TerminalRole, WalkInSale

TOKEN_PREFIX = "pos_"


def terminal_token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedTerminalToken:
    terminal: PosTerminal
    token: str  # shown once; only its hash is stored


def _new_token() -> tuple[str, str, str]:
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return raw, terminal_token_hash(raw), raw[: len(TOKEN_PREFIX) + 6]


def pos_terminal_create(*, store: Store, name: str, role: str = TerminalRole.CASHIER) -> IssuedTerminalToken:
    """A new terminal of ``store``; the raw token is returned once and never stored."""
    if role not in TerminalRole.values:
        raise InvalidInput(_("Unknown terminal role."), code="invalid_role")
    raw, key_hash, prefix = _new_token()
    terminal = PosTerminal.objects.create(store=store, name=name, role=role, key_hash=key_hash, prefix=prefix)
    return IssuedTerminalToken(terminal=terminal, token=raw)


def pos_terminal_rotate(*, terminal_id: int) -> IssuedTerminalToken:
    """A new token for the terminal; the old one stops working at once. A
    revoked terminal cannot be rotated (create a new one)."""
    with transaction.atomic():
        terminal = PosTerminal.objects.select_for_update().get(pk=terminal_id)
        if terminal.revoked_at is not None:
            raise Conflict(_("This terminal is revoked."), code="terminal_revoked")
        raw, terminal.key_hash, terminal.prefix = _new_token()
        terminal.rotated_at = timezone.now()
        terminal.save(update_fields=["key_hash", "prefix", "rotated_at"])
    return IssuedTerminalToken(terminal=terminal, token=raw)


def pos_terminal_revoke(*, terminal_id: int) -> PosTerminal:
    """The terminal's token stops working for good. Revoking twice is harmless."""
    with transaction.atomic():
        terminal = PosTerminal.objects.select_for_update().get(pk=terminal_id)
        if terminal.revoked_at is None:
            terminal.revoked_at = timezone.now()
            terminal.save(update_fields=["revoked_at"])
    return terminal


def terminal_actor(terminal: PosTerminal) -> Actor:
    return Actor(kind=ActorKind.POS, id=str(terminal.pk), name=terminal.name)


def _check_role(terminal: PosTerminal, verb: str) -> None:
    if not terminal.may(verb):
        raise PermissionDenied(_("This terminal's role may not do this."), code="terminal_role_not_allowed",
                               detail={"action": verb, "role": terminal.role})


# --- orders -----------------------------------------------------------------------


def pos_order_accept(*, terminal: PosTerminal, order_id: int, prep_minutes: int | None = None) -> Order:
    """Accept with the cashier's estimate, or the store's default (plus the busy
    extra while the store is busy)."""
    _check_role(terminal, "accept")
    minutes = prep_minutes_for(store=terminal.store, requested=prep_minutes)
    return order_transition(order_id=order_id, action=OrderAction.ACCEPT, actor=terminal_actor(terminal),
                            expected_store_id=terminal.store_id, prep_minutes=minutes)


def pos_order_reject(*, terminal: PosTerminal, order_id: int, reason_code: str, reason: str = "") -> Order:
    """Turn a new order away (manager terminals only); a paid own-channel order
    is refunded by the cancel path of orders.services."""
    _check_role(terminal, "reject")
    return order_transition(order_id=order_id, action=OrderAction.REJECT, actor=terminal_actor(terminal),
                            expected_store_id=terminal.store_id, reason_code=reason_code, reason=reason)


def pos_order_dispatch(*, terminal: PosTerminal, order_id: int, courier_name: str = "",
                       courier_phone: str = "") -> Order:
    _check_role(terminal, "dispatch")
    return order_transition(order_id=order_id, action=OrderAction.DISPATCH, actor=terminal_actor(terminal),
                            expected_store_id=terminal.store_id, courier_name=courier_name,
                            courier_phone=courier_phone)


def pos_order_complete(*, terminal: PosTerminal, order_id: int) -> Order:
    """Picked up, delivered or served. Vouchers are redeemed by code instead."""
    _check_role(terminal, "complete")
    with transaction.atomic():
        order = order_lock(order_id=order_id, store_id=terminal.store_id)
        if order.order_type == OrderType.VOUCHER:
            raise _pos_not_allowed(order, "complete")
        return order_confirm(order_id=order.pk, order_type=order.order_type, actor=terminal_actor(terminal),
                             expected_store_id=terminal.store_id)


# Letters of generated pickup codes (no I or O: they read as 1 and 0).
PICKUP_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def pickup_code_generate(*, order: Order) -> str:
    """A + 3 digits from the order's day sequence number (B after 999, ...):
    unique per store per business day because the day sequence is; a code a
    POS chose by hand for another order is skipped."""
    taken = set(
        Order.objects.filter(store_id=order.store_id, business_date=order.business_date)
        .exclude(pk=order.pk).exclude(pickup_code="").values_list("pickup_code", flat=True)
    )
    capacity = len(PICKUP_LETTERS) * 1000
    for step in range(capacity):
        number = (order.day_seq + step) % capacity
        code = f"{PICKUP_LETTERS[number // 1000]}{number % 1000:03d}"
        if code not in taken:
            return code
    raise Conflict(_("No pickup code is left for today."), code="pickup_codes_exhausted")


def pos_order_ready(*, terminal: PosTerminal, order_id: int, pickup_code: str = "") -> Order:
    """Meal ready. The pickup code is the POS's (must be free for the store's
    day), else the order's existing one, else a generated one."""
    _check_role(terminal, "ready")
    with transaction.atomic():
        order = order_lock(order_id=order_id, store_id=terminal.store_id)
        if pickup_code:
            clash = (Order.objects.filter(store_id=order.store_id, business_date=order.business_date,
                                          pickup_code=pickup_code).exclude(pk=order.pk).exists())
            if clash:
                raise Conflict(_("This pickup code is already used today."), code="pickup_code_taken",
                               detail={"pickup_code": pickup_code, "status": order.status})
            code = pickup_code
        else:
            code = order.pickup_code or pickup_code_generate(order=order)
        return order_transition(order_id=order.pk, action=OrderAction.MARK_READY, actor=terminal_actor(terminal),
                                expected_store_id=terminal.store_id, pickup_code=code)


def pos_voucher_redeem(*, terminal: PosTerminal, code: str) -> VoucherRedemption:
    """Redeem an e-voucher code the OMS issued for an order of this store
    (orders.services.vouchers): another store's code is 404 ``voucher_not_found``,
    a code redeemed before is 409 ``voucher_already_redeemed``. The order becomes
    ``redeemed`` with its last code."""
    _check_role(terminal, "redeem")
    return voucher_code_redeem(code=code, actor=terminal_actor(terminal), store_id=terminal.store_id)


def pos_verbs_for(order: Order, terminal: PosTerminal | None = None) -> list[str]:
    """The machine's actions a POS may trigger now, as API verbs (and, given a
    terminal, only those its role allows)."""
    verbs = []
    for action in order.available_actions(actor_kind=ActorKind.POS):
        verb = ACTION_VERBS.get(action)
        if order.order_type == OrderType.VOUCHER and verb == OrderAction.COMPLETE:
            continue
        if verb and verb not in verbs and (terminal is None or terminal.may(verb)):
            verbs.append(verb)
    return verbs


ACTION_VERBS = {
    OrderAction.ACCEPT: "accept", OrderAction.REJECT: "reject", OrderAction.MARK_READY: "ready",
    OrderAction.DISPATCH: "dispatch", OrderAction.DELIVER: "complete", OrderAction.PICK_UP: "complete",
    OrderAction.SERVE: "complete",
}


def _pos_not_allowed(order: Order, verb: str) -> TransitionNotAllowed:
    return TransitionNotAllowed(
        _("The order cannot do “%(action)s” in status “%(status)s”.") % {"action": verb, "status": order.status},
        detail={"order_no": order.order_no, "status": order.status, "action": verb,
                "allowed_actions": pos_verbs_for(order)},
    )


# --- feed -------------------------------------------------------------------------


def pos_events_ack(*, terminal: PosTerminal, event_ids: list[int]) -> int:
    return feed_ack(store_id=terminal.store_id, event_ids=event_ids, acked_by=str(terminal.pk))


# --- stock and menu ---------------------------------------------------------------


def _skus_by_code(*, brand_id: int, codes: set[str]) -> dict[str, int]:
    found = dict(Sku.objects.filter(brand_id=brand_id, code__in=codes).values_list("code", "id"))
    unknown = sorted(codes - found.keys())
    if unknown:
        raise InvalidInput(_("Unknown SKU."), code="unknown_sku", detail={"skus": unknown})
    return found


def pos_walk_in_sale_record(*, terminal: PosTerminal, receipt_no: str, lines: list[dict]) -> tuple[WalkInSale, bool]:
    """A counter sale takes shared stock, once per receipt number.

    ``lines`` is ``[{"sku": code, "qty": n}]``. The same receipt again returns
    the stored sale (created False) and changes nothing; the same receipt
    number with other lines is a 409. The goods are already gone, so a
    shortfall does not refuse the sale: stock stays >= 0 and the missing units
    are recorded (inventory's StockShortfall) and returned with the sale.
    """
    lines = [{"sku": str(line["sku"]), "qty": int(line["qty"])} for line in lines]
    skus = _skus_by_code(brand_id=terminal.store.brand_id, codes={line["sku"] for line in lines})
    quantities: dict[int, int] = defaultdict(int)
    for line in lines:
        quantities[skus[line["sku"]]] += line["qty"]
    with transaction.atomic():
        try:
            with transaction.atomic():
                sale = WalkInSale.objects.create(store_id=terminal.store_id, terminal=terminal,
                                                 receipt_no=receipt_no, lines=lines)
        except IntegrityError:
            existing = WalkInSale.objects.get(store_id=terminal.store_id, receipt_no=receipt_no)
            if existing.lines != lines:
                raise Conflict(_("This receipt number was already reported with other lines."),
                               code="receipt_conflict", detail={"receipt_no": receipt_no}) from None
            return existing, False
        shortfall = stock_deduct(store_id=terminal.store_id, quantities=dict(quantities), reference=receipt_no,
                                 reason=MovementReason.WALK_IN_SALE, allow_shortfall=True)
        if shortfall:
            codes = {sku_id: code for code, sku_id in skus.items()}
            sale.shortfall = {codes[sku_id]: qty for sku_id, qty in sorted(shortfall.items())}
            sale.save(update_fields=["shortfall"])
    return sale, True


def pos_sku_set_availability(*, terminal: PosTerminal, sku_code: str, available: bool) -> None:
    """Sold out / back on sale at this store, synced to every channel (catalog
    writes the platform outbox message in the same transaction)."""
    sku_id = _skus_by_code(brand_id=terminal.store.brand_id, codes={sku_code})[sku_code]
    store_sku_set_availability(store_id=terminal.store_id, sku_id=sku_id, available=available,
                               actor=terminal_actor(terminal))


def pos_store_state_set(*, terminal: PosTerminal, mode: str | None, busy_minutes: int | None) -> Store:
    """Open / busy (+ minutes) / paused from the counter: this terminal's store only,
    reaching every platform the store is bound to (accounts.store_state)."""
    return store_state_set(store_id=terminal.store_id, actor=terminal_actor(terminal), mode=mode,
                           busy_minutes=busy_minutes)


# --- after-sales ------------------------------------------------------------------


def pos_after_sales_approve(*, terminal: PosTerminal, request_id: int) -> AfterSalesRequest:
    """Approve a refund or return request of this store (manager terminals only)."""
    _check_role(terminal, "after_sales_approve")
    return aftersales_approve(request_id=request_id, actor=terminal_actor(terminal), store_id=terminal.store_id)


def pos_after_sales_reject(*, terminal: PosTerminal, request_id: int, reason: str) -> AfterSalesRequest:
    """Reject with a reason (manager terminals only)."""
    _check_role(terminal, "after_sales_reject")
    return aftersales_reject(request_id=request_id, actor=terminal_actor(terminal), reason=reason,
                             store_id=terminal.store_id)


def pos_after_sales_goods_received(*, terminal: PosTerminal, request_id: int, restock: bool) -> AfterSalesRequest:
    """A return's goods are back: restocked or written off; the money goes out (manager terminals only)."""
    _check_role(terminal, "after_sales_goods_received")
    return aftersales_goods_received(request_id=request_id, actor=terminal_actor(terminal), restock=restock,
                                     store_id=terminal.store_id)
