"""Own-channel carts (mini-program, App): checked, priced on the server, planned,
and placed one at a time.

Prices are computed here and only here; a client never sends one. Stock is
taken at order time for on-order SKUs (and flash-sale lines) and at payment
time for on-payment SKUs (orders.services.payment); coupons are reserved by the
unpaid order, used on payment and released on cancel or expiry.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer, Store
from catalog.models import StockDeductionMode, StoreSku
from core.actors import Actor, ActorKind
from core.errors import Conflict, InvalidInput, NotFound
from inventory.services import stock_deduct
from orders.models import Order, OrderType
from orders.selectors import cart_rows
from orders.services.creation import (
    ORDER_TYPES,
    DiscountInput,
    LineInput,
    business_date_of,
    day_seq_next,
    order_create,
)
from promotions.engine import CartLine, PricingContext, Quote, quote_compute
from promotions.services import coupon_reserve, flash_sale_limit_reserve

MAX_LINES = 50
MAX_QTY_PER_LINE = 99
ZERO = Decimal("0.00")


class StoreNotAccepting(Conflict):
    code = "store_not_accepting_orders"
    default_message = _("The store is not taking orders right now.")

    @classmethod
    def for_store(cls, store: Store, *, now: datetime) -> "StoreNotAccepting":
        """Paused by the store, or outside its business hours: then with the next opening
        (ISO 8601, local time) in the detail and the message."""
        next_opening = store.next_opening_at(now)
        detail = {"store_mode": store.mode, "open_now": False,
                  "next_opening_at": timezone.localtime(next_opening).isoformat() if next_opening else None}
        if next_opening is None:
            return cls(_("The store has paused taking orders."), detail=detail)
        return cls(_("The store is closed now; it opens again at %(time)s.")
                   % {"time": timezone.localtime(next_opening).strftime("%Y-%m-%d %H:%M")}, detail=detail)


@dataclass(frozen=True)
class CartItem:
    sku_code: str
    qty: int


@dataclass(frozen=True)
class Cart:
    store_id: int
    order_type: str
    items: tuple[CartItem, ...]
    coupon_codes: tuple[str, ...] = ()
    address: dict = field(default_factory=dict)
    note: str = ""
    contact_name: str = ""
    contact_phone: str = ""


@dataclass
class PricedCart:
    store: Store
    store_skus: dict[int, StoreSku]  # sku_id -> StoreSku (with sku, product)
    quantities: dict[int, int]  # sku_id -> qty
    quote: Quote
    packaging_fee: Decimal
    stock: dict[int, int]  # sku_id -> on hand (tracked SKUs only)

    @property
    def total(self) -> Decimal:
        return self.quote.total_goods + self.quote.delivery_fee + self.packaging_fee


def cart_check(cart: Cart) -> dict[str, int]:
    if cart.order_type not in ORDER_TYPES:
        raise InvalidInput(_("Unknown order type."), code="unknown_order_type")
    if not cart.items:
        raise InvalidInput(_("The cart is empty."), code="empty_cart")
    if len(cart.items) > MAX_LINES:
        raise InvalidInput(_("Too many lines in one order."), code="too_many_lines", detail={"max": MAX_LINES})
    quantities: dict[str, int] = defaultdict(int)
    for item in cart.items:
        if not isinstance(item.qty, int) or isinstance(item.qty, bool) or item.qty <= 0:
            raise InvalidInput(_("Quantities must be whole numbers above zero."), code="invalid_quantity",
                               detail={"sku": item.sku_code})
        quantities[item.sku_code] += item.qty
        if quantities[item.sku_code] > MAX_QTY_PER_LINE:
            raise InvalidInput(_("Quantity too large."), code="quantity_too_large",
                               detail={"sku": item.sku_code, "max": MAX_QTY_PER_LINE})
    if cart.order_type == OrderType.DELIVERY and not cart.address:
        raise InvalidInput(_("A delivery order needs an address."), code="address_required")
    return dict(quantities)


def cart_price(*, customer: Customer, cart: Cart, now: datetime | None = None) -> PricedCart:
    """Validate a cart and price it on the server. Raises 400/404 domain errors;
    writes nothing. A store of another brand is simply not found."""
    now = now or timezone.now()
    by_code = cart_check(cart)
    rows = cart_rows(store_id=cart.store_id, brand_id=customer.brand_id, sku_codes=list(by_code))
    return cart_price_from_rows(customer=customer, cart=cart, by_code=by_code, rows=rows, now=now,
                                quoter=quote_compute)


def cart_price_from_rows(*, customer: Customer, cart: Cart, by_code: dict[str, int], rows: list[StoreSku],
                         now: datetime, quoter: Callable[..., Quote]) -> PricedCart:
    """``cart_price`` on rows already read (``cart_rows``; rows of other codes
    are ignored). ``quoter(lines=, context=)`` prices the lines: ``quote_compute``,
    or a pure ``quote_compute_from_rules`` on snapshots a batch read once."""
    rows = [row for row in rows if row.sku.code in by_code]
    # The store alone is read only when none of the codes is known (to tell the errors apart).
    store = rows[0].store if rows else (
        Store.objects.select_related("brand").filter(pk=cart.store_id, brand_id=customer.brand_id).first())
    if store is None:
        raise NotFound(_("Store not found."), code="store_not_found")
    found = {row.sku.code: row for row in rows}
    unknown = sorted(set(by_code) - set(found))
    if unknown:
        raise InvalidInput(_("Unknown SKU for this store."), code="unknown_sku", detail={"skus": unknown})
    unavailable = sorted(code for code, row in found.items()
                         if not (row.is_available and row.sku.is_active and row.sku.product.is_active))
    if unavailable:
        raise InvalidInput(_("Some items are not available."), code="sku_unavailable", detail={"skus": unavailable})
    store_skus = {row.sku_id: row for row in rows}
    quantities = {found[code].sku_id: qty for code, qty in by_code.items()}
    stock = {row.sku_id: row.on_hand for row in rows if row.on_hand is not None}
    sold_out = sorted(store_skus[sku_id].sku.code for sku_id, on_hand in stock.items() if on_hand <= 0)
    if sold_out:
        raise InvalidInput(_("Some items are sold out."), code="sku_unavailable", detail={"skus": sold_out})

    tier = customer.tier
    delivery_fee = store.delivery_fee if cart.order_type == OrderType.DELIVERY else ZERO
    context = PricingContext(
        brand_id=store.brand_id, store_id=store.pk, customer_id=customer.pk, order_type=cart.order_type,
        member_price_rate=tier.price_rate if tier else Decimal("1.000"),
        member_free_delivery=bool(tier and tier.free_delivery), delivery_fee=delivery_fee,
        coupon_codes=tuple(cart.coupon_codes), now=now,
    )
    lines = [
        CartLine(sku_id=sku_id, sku_code=row.sku.code, name=row.sku.display_name,
                 category_id=row.sku.product.category_id, unit_price=row.effective_price,
                 quantity=quantities[sku_id])
        for sku_id, row in sorted(store_skus.items())
    ]
    quote = quoter(lines=lines, context=context)
    packaging = ZERO
    if cart.order_type in (OrderType.DELIVERY, OrderType.PICKUP):
        packaging = sum((store_skus[s].sku.packaging_fee * q for s, q in quantities.items()), ZERO)
    return PricedCart(store=store, store_skus=store_skus, quantities=quantities, quote=quote,
                      packaging_fee=packaging, stock=stock)


def _stock_mode_for(priced: PricedCart, sku_id: int) -> str:
    if sku_id not in priced.stock:
        return ""  # not tracked
    if sku_id in priced.quote.flash_sale_lines:
        return StockDeductionMode.ON_ORDER
    return priced.store_skus[sku_id].sku.stock_mode


@dataclass
class PlacementPlan:
    """What placing a priced cart writes: the ``order_draft`` arguments (all
    but ``day_seq``) and the reservations the order must win."""

    order_fields: dict
    coupon_ids: list[int]
    flash_sale_units: dict[int, int]  # promotion id -> units
    on_order: dict[int, int]  # sku id -> units taken at order time

    @property
    def business_date(self):
        return business_date_of(self.order_fields["placed_at"])


def placement_plan(*, customer: Customer, cart: Cart, channel: str, priced: PricedCart,
                   now: datetime) -> PlacementPlan:
    """Turn a priced cart into what ``order_place`` writes. Raises the refusals
    known before any write (store closed, a coupon that cannot be used)."""
    if not priced.store.open_at(now):
        raise StoreNotAccepting.for_store(priced.store, now=now)
    if priced.quote.rejected_coupons:
        raise InvalidInput(_("A coupon cannot be used."), code=priced.quote.rejected_coupons[0]["reason_code"],
                           detail={"coupons": priced.quote.rejected_coupons})
    quote = priced.quote
    by_sku = {line.sku_id: line for line in quote.lines}
    lines = []
    for sku_id, row in sorted(priced.store_skus.items()):
        quoted = by_sku[sku_id]
        with_fee = priced.packaging_fee and row.sku.packaging_fee
        lines.append(LineInput(
            sku_id=sku_id, sku_code=row.sku.code, name=row.sku.product.name, spec=row.sku.spec,
            unit_price=quoted.unit_price, quantity=quoted.quantity, discount=quoted.discount,
            packaging_fee=row.sku.packaging_fee * quoted.quantity if with_fee else ZERO,
            stock_mode=_stock_mode_for(priced, sku_id),
        ))
    discounts = [
        DiscountInput(kind=d.kind, name=str(d.name)[:120], amount=d.amount, merchant_part=d.amount,
                      reference=d.reference[:64])
        for d in quote.discounts if d.amount > 0
    ]
    order_fields = {
        "store": priced.store, "channel": channel, "order_type": cart.order_type, "lines": lines,
        "actor": Actor(kind=ActorKind.CUSTOMER, id=str(customer.pk)), "customer_id": customer.pk,
        "contact_name": cart.contact_name or customer.name, "contact_phone": cart.contact_phone or customer.phone,
        "address": cart.address, "customer_note": cart.note, "discounts": discounts,
        "delivery_fee": quote.delivery_fee, "placed_at": now,
        "expires_at": now + timedelta(minutes=priced.store.brand.unpaid_timeout_minutes),
        "raw_payload": {"pricing": quote_as_dict(quote)},
    }
    return PlacementPlan(
        order_fields=order_fields,
        coupon_ids=[d.coupon_id for d in quote.discounts if d.coupon_id],
        flash_sale_units=dict(sorted(quote.flash_sale_units.items())),
        on_order={line.sku_id: line.quantity for line in lines if line.stock_mode == StockDeductionMode.ON_ORDER},
    )


def order_place_one(*, customer: Customer, cart: Cart, channel: str, now: datetime,
                    on_created: Callable[[Order], None] | None = None) -> Order:
    """``order_place`` for one cart in its own transaction (or the caller's)."""
    priced = cart_price(customer=customer, cart=cart, now=now)
    plan = placement_plan(customer=customer, cart=cart, channel=channel, priced=priced, now=now)
    # Drawn before the transaction: in autocommit the store's counter row is
    # locked for this statement only, not until our COMMIT (a failed placement
    # leaves a gap). Inside a caller's transaction it is held as before.
    day_seq = day_seq_next(store_id=priced.store.pk, business_date=plan.business_date)
    with transaction.atomic():
        order = order_create(day_seq=day_seq, **plan.order_fields)
        if on_created is not None:
            on_created(order)
        if plan.coupon_ids:
            coupon_reserve(coupon_ids=plan.coupon_ids, customer_id=customer.pk, order_ref=order.order_no)
        # Per promotion (a flash sale may cover several SKUs): one reservation per order.
        for promotion_id, units in plan.flash_sale_units.items():
            flash_sale_limit_reserve(promotion_id=promotion_id, customer_id=customer.pk,
                                     quantity=units, order_ref=order.order_no)
        if plan.on_order:
            # Last, so the hot stock rows are locked for the shortest time.
            stock_deduct(store_id=priced.store.pk, quantities=plan.on_order, reference=order.order_no)
    return order


def quote_as_dict(quote: Quote) -> dict:
    return {
        "subtotal": str(quote.subtotal), "discount_total": str(quote.discount_total),
        "delivery_fee": str(quote.delivery_fee), "delivery_fee_discount": str(quote.delivery_fee_discount),
        "discounts": [{"kind": d.kind, "name": str(d.name), "reference": d.reference, "amount": str(d.amount),
                       "explanation": str(d.explanation)} for d in quote.discounts],
    }
