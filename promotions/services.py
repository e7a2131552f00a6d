"""Writes of the promotion center: coupons and flash-sale purchase limits.

Every state change is one conditional UPDATE whose WHERE clause is the
precondition, so two concurrent callers cannot both pass a check that only one
of them may pass. Several coupon rows are locked in primary-key order first, so
callers locking overlapping sets cannot deadlock. Each service runs in its own
``transaction.atomic`` (a savepoint inside the caller's transaction): when it
raises, nothing it did remains.
"""

import secrets
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer
from core.errors import Conflict, InvalidInput, NotFound
from promotions.models import (
    Coupon,
    CouponStatus,
    CouponTemplate,
    FlashSaleReservation,
    FlashSaleUsage,
    Promotion,
    PromotionKind,
)

# No 0/O, 1/I/L: codes are read aloud and typed on phones.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 10
CODE_ATTEMPTS = 5


def _coupons_lock(*, coupon_ids: list[int]) -> list[int]:
    """SELECT ... FOR UPDATE the coupons in primary-key order; returns the ids found."""
    return list(
        Coupon.objects.select_for_update().filter(pk__in=coupon_ids).order_by("pk").values_list("pk", flat=True)
    )


def _reserved_coupon_ids(*, order_ref: str) -> list[int]:
    return list(Coupon.objects.filter(order_ref=order_ref, status=CouponStatus.RESERVED).values_list("pk", flat=True))


def coupon_reserve(*, coupon_ids: list[int], customer_id: int, order_ref: str) -> None:
    """Hold the coupons for the order ``order_ref`` (available -> reserved).

    All or nothing: every coupon must belong to the customer, be available (or
    already reserved for this same order: a retry is harmless) and be valid
    now; otherwise Conflict ``coupon_unavailable`` and no coupon changes.
    Call inside the order placement transaction.
    """
    if not order_ref:
        raise InvalidInput(_("An order reference is required."), code="order_ref_required")
    ids = sorted(set(coupon_ids))
    if not ids:
        return
    now = timezone.now()
    with transaction.atomic():
        _coupons_lock(coupon_ids=ids)
        changed = Coupon.objects.filter(
            Q(status=CouponStatus.AVAILABLE) | Q(status=CouponStatus.RESERVED, order_ref=order_ref),
            pk__in=ids, customer_id=customer_id, valid_from__lte=now, valid_until__gt=now,
        ).update(status=CouponStatus.RESERVED, order_ref=order_ref, reserved_at=now)
        if changed != len(ids):
            raise Conflict(
                _("A coupon of this order is no longer available."), code="coupon_unavailable",
                detail={"coupon_ids": ids},
            )


def coupon_use(*, order_ref: str) -> int:
    """The order is paid: its reserved coupons become used. Returns how many; idempotent."""
    if not order_ref:
        return 0
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # nothing here is caught and continued from
        ids = _reserved_coupon_ids(order_ref=order_ref)
        if not ids:
            return 0
        _coupons_lock(coupon_ids=ids)
        return Coupon.objects.filter(pk__in=ids, order_ref=order_ref, status=CouponStatus.RESERVED).update(
            status=CouponStatus.USED, used_at=now)


def coupon_release(*, order_ref: str) -> int:
    """The order is cancelled or expired unpaid: give its reserved coupons back.

    A coupon whose validity ended meanwhile goes to ``expired`` rather than
    ``available``. Used coupons are not touched (refunds do not return
    coupons). Returns how many were released; idempotent.
    """
    if not order_ref:
        return 0
    return coupons_release_for_orders(order_refs=[order_ref])


def coupons_release_for_orders(*, order_refs: list[str]) -> int:
    """``coupon_release`` for many orders at once (the expiry sweep): one lock
    query and one UPDATE whatever the number of orders."""
    refs = [ref for ref in order_refs if ref]
    if not refs:
        return 0
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # nothing here is caught and continued from
        ids = _coupons_lock(coupon_ids=Coupon.objects.filter(order_ref__in=refs, status=CouponStatus.RESERVED)
                            .values("pk"))
        if not ids:
            return 0
        return Coupon.objects.filter(pk__in=ids, order_ref__in=refs, status=CouponStatus.RESERVED).update(
            status=Case(When(valid_until__lte=now, then=Value(CouponStatus.EXPIRED)),
                        default=Value(CouponStatus.AVAILABLE)),
            order_ref="", reserved_at=None,
        )


def coupon_return(*, order_ref: str) -> int:
    """The paid order was cancelled or refunded in full: its coupons come back, the
    used ones too (``available`` while still valid, ``expired`` otherwise), as
    ``coupon_release`` gives back a reserved one. Returns how many; idempotent."""
    if not order_ref:
        return 0
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # nothing here is caught and continued from
        ids = _coupons_lock(coupon_ids=Coupon.objects.filter(
            order_ref=order_ref, status__in=(CouponStatus.RESERVED, CouponStatus.USED)).values("pk"))
        if not ids:
            return 0
        return Coupon.objects.filter(pk__in=ids, order_ref=order_ref,
                                     status__in=(CouponStatus.RESERVED, CouponStatus.USED)).update(
            status=Case(When(valid_until__lte=now, then=Value(CouponStatus.EXPIRED)),
                        default=Value(CouponStatus.AVAILABLE)),
            order_ref="", reserved_at=None, used_at=None,
        )


def coupon_expire_overdue(*, now: datetime) -> int:
    """Periodic job: available coupons past their validity become expired. Returns how many."""
    return Coupon.objects.filter(status=CouponStatus.AVAILABLE, valid_until__lte=now).update(
        status=CouponStatus.EXPIRED)


def coupon_issue(*, template_id: int, customer_id: int, now: datetime) -> Coupon:
    """Issue one coupon of the template to the customer, with a fresh unique code.

    The template must be active and of the customer's brand. Validity: from
    ``now`` for ``valid_days`` days, or the template's fixed window.
    """
    try:
        template = CouponTemplate.objects.get(pk=template_id)
    except CouponTemplate.DoesNotExist:
        raise NotFound(_("No such coupon template."), code="coupon_template_not_found") from None
    customer_brand_id = Customer.objects.filter(pk=customer_id).values_list("brand_id", flat=True).first()
    if customer_brand_id is None or customer_brand_id != template.brand_id:
        raise NotFound(_("No such customer."), code="customer_not_found")
    if not template.is_active:
        raise Conflict(_("This coupon template no longer issues coupons."), code="coupon_template_inactive")
    if template.valid_days is not None:
        valid_from, valid_until = now, now + timedelta(days=template.valid_days)
    else:
        valid_from, valid_until = template.valid_from, template.valid_until
    if valid_until <= now:
        raise Conflict(_("This coupon template's validity has ended."), code="coupon_template_expired")
    for attempt in range(CODE_ATTEMPTS):
        try:
            with transaction.atomic():
                return Coupon.objects.create(
                    template=template, customer_id=customer_id, code=coupon_code_generate(),
                    valid_from=valid_from, valid_until=valid_until, issued_at=now,
                )
        except IntegrityError:
            if attempt == CODE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def coupon_code_generate() -> str:
    """10 characters of a 31-letter alphabet: ~8e14 codes, unguessable and easy to type."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def purchase_limit_exceeded(*, limit: int, already: int) -> Conflict:
    return Conflict(
        _("Purchase limit reached: at most %(limit)s per customer, %(already)s already bought or held.")
        % {"limit": limit, "already": already},
        code="purchase_limit_exceeded", detail={"limit": limit, "already": already},
    )


def flash_sale_usages_lock(*, limits: dict[tuple[int, int], int]) -> dict[tuple[int, int], FlashSaleUsage]:
    """Batched placement: lock the per-customer counter rows of ``limits``
    ((promotion id, customer id) -> the promotion's limit) in (promotion,
    customer) order, the order ``flash_sale_limit_reserve`` locks them in (rows
    of other pairs of the same promotions and customers may be locked too). Call
    inside the placement transaction, after ``flash_sale_usages_ensure`` created
    the missing rows in a statement of their own (autocommit, so two batches
    never wait on each other's uncommitted inserts); the caller decides under
    these locks and writes with ``flash_sale_limits_reserve_locked``."""
    if not limits:
        return {}
    pairs = sorted(limits)
    rows = (FlashSaleUsage.objects.select_for_update()
            .filter(promotion_id__in={p for p, _c in pairs}, customer_id__in={c for _p, c in pairs})
            .order_by("promotion_id", "customer_id"))
    return {(row.promotion_id, row.customer_id): row for row in rows if (row.promotion_id, row.customer_id) in limits}


def flash_sale_usages_ensure(*, limits: dict[tuple[int, int], int]) -> None:
    """Create the missing counter rows of ``limits`` (used 0); one statement."""
    if limits:
        FlashSaleUsage.objects.bulk_create(
            [FlashSaleUsage(promotion_id=p, customer_id=c, used=0, limit=limit)
             for (p, c), limit in sorted(limits.items())],
            ignore_conflicts=True,
        )


def flash_sale_limits_reserve_locked(*, usages: dict[tuple[int, int], FlashSaleUsage],
                                     limits: dict[tuple[int, int], int],
                                     reservations: list[tuple[int, int, int, str]]) -> None:
    """Write what a batch decided under ``flash_sale_usages_lock``:
    ``reservations`` are (promotion id, customer id, units, order_ref) that fit
    the limits. One INSERT of reservations and one UPDATE of the counters; the
    CHECK ``used <= limit`` still guards the result."""
    if not reservations:
        return
    FlashSaleReservation.objects.bulk_create([
        FlashSaleReservation(promotion_id=p, customer_id=c, order_ref=ref, quantity=units)
        for p, c, units, ref in reservations
    ])
    now = timezone.now()
    changed = []
    for p, c, units, _ref in reservations:
        usage = usages.get((p, c))
        if usage is not None:
            usage.used += units
            usage.limit = limits[(p, c)]
            usage.updated_at = now
            changed.append(usage)
    if changed:
        FlashSaleUsage.objects.bulk_update(list({id(u): u for u in changed}.values()),
                                           ["used", "limit", "updated_at"])


def flash_sale_limit_reserve(*, promotion_id: int, customer_id: int, quantity: int, order_ref: str) -> None:
    """Hold ``quantity`` flash-price units of the promotion for the customer's order.

    The per-customer counter row is created if missing (INSERT ... ON CONFLICT
    DO NOTHING), then raised by ``UPDATE ... SET used = used + q WHERE
    used + q <= limit``: under any concurrency the customer never holds more
    than the limit. Raises Conflict ``purchase_limit_exceeded`` with detail
    ``{"limit", "already"}``. A second call for the same (promotion,
    order_ref) changes nothing. Promotions without a limit only record the
    reservation. Call inside the order placement transaction.
    """
    if quantity < 1:
        raise InvalidInput(_("The quantity must be at least 1."), code="invalid_quantity")
    if not order_ref:
        raise InvalidInput(_("An order reference is required."), code="order_ref_required")
    promotion = Promotion.objects.filter(pk=promotion_id, kind=PromotionKind.FLASH_SALE).first()
    if promotion is None:
        raise NotFound(_("No such flash sale."), code="promotion_not_found")
    limit = promotion.purchase_limit
    try:
        with transaction.atomic():
            # The reservation row first: its unique (promotion, order_ref) makes a concurrent
            # call for the same order wait for this one, then fail here and be treated as a retry.
            FlashSaleReservation.objects.create(
                promotion_id=promotion_id, customer_id=customer_id, order_ref=order_ref, quantity=quantity)
            if limit is None:
                return
            FlashSaleUsage.objects.bulk_create(
                [FlashSaleUsage(promotion_id=promotion_id, customer_id=customer_id, used=0, limit=limit)],
                ignore_conflicts=True,
            )
            raised = FlashSaleUsage.objects.filter(
                promotion_id=promotion_id, customer_id=customer_id, used__lte=limit - quantity,
            ).update(used=F("used") + quantity, limit=limit, updated_at=timezone.now())
            if raised != 1:
                already = (FlashSaleUsage.objects.filter(promotion_id=promotion_id, customer_id=customer_id)
                           .values_list("used", flat=True).first()) or 0
                raise purchase_limit_exceeded(limit=limit, already=already)
    except IntegrityError:
        earlier = FlashSaleReservation.objects.filter(promotion_id=promotion_id, order_ref=order_ref).first()
        if earlier is None:
            raise
        if (earlier.customer_id, earlier.quantity, earlier.released) != (customer_id, quantity, False):
            raise Conflict(
                _("This order already holds a different flash-sale reservation."),
                code="flash_sale_reservation_mismatch",
                detail={"quantity": earlier.quantity, "released": earlier.released},
            ) from None


def flash_sale_limit_release(*, order_ref: str) -> int:
    """The order is cancelled or expired unpaid: give its flash-sale units back.

    Each reservation is released by ``UPDATE ... WHERE released = false``, so
    concurrent or repeated calls give each unit back once. Returns the number
    of reservations released.
    """
    if not order_ref:
        return 0
    return flash_sale_limits_release_for_orders(order_refs=[order_ref])


def flash_sale_limit_release_units(*, order_ref: str, quantities: dict[int, int]) -> int:
    """Some units of a paid order were refunded (sku id -> units): give back that many
    of its flash-sale units for those SKUs' flash sales (never more than the order
    holds; a reservation left with none is released). Returns the units given back.
    Locks the reservations, then the usage rows, as the whole release does."""
    wanted = {sku_id: qty for sku_id, qty in quantities.items() if qty > 0}
    if not order_ref or not wanted:
        return 0
    now = timezone.now()
    given = 0
    with transaction.atomic(savepoint=False):  # nothing here is caught and continued from
        reservations = list(FlashSaleReservation.objects.select_for_update()
                            .filter(order_ref=order_ref, released=False).order_by("pk"))
        targets = defaultdict(set)
        for promotion_id, sku_id in Promotion.target_skus.through.objects.filter(
                promotion_id__in=[r.promotion_id for r in reservations]).values_list("promotion_id", "sku_id"):
            targets[promotion_id].add(sku_id)
        for reservation in reservations:
            units = 0
            for sku_id in sorted(targets[reservation.promotion_id] & set(wanted)):
                take = min(wanted[sku_id], reservation.quantity - units)
                wanted[sku_id] -= take
                units += take
            if not units:
                continue
            if units >= reservation.quantity:
                FlashSaleReservation.objects.filter(pk=reservation.pk).update(released=True, released_at=now)
            else:
                FlashSaleReservation.objects.filter(pk=reservation.pk).update(quantity=F("quantity") - units)
            FlashSaleUsage.objects.filter(promotion_id=reservation.promotion_id, customer_id=reservation.customer_id,
                                          used__gte=units).update(used=F("used") - units, updated_at=now)
            given += units
    return given


def flash_sale_limits_release_for_orders(*, order_refs: list[str]) -> int:
    """``flash_sale_limit_release`` for many orders at once (the expiry sweep)."""
    refs = [ref for ref in order_refs if ref]
    if not refs:
        return 0
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # nothing here is caught and continued from
        reservations = list(
            FlashSaleReservation.objects.select_for_update().filter(order_ref__in=refs, released=False)
            .order_by("pk").values_list("pk", "promotion_id", "customer_id", "quantity")
        )
        if not reservations:
            return 0
        FlashSaleReservation.objects.filter(pk__in=[r[0] for r in reservations], released=False).update(
            released=True, released_at=now)
        give_back: dict[tuple[int, int], int] = {}
        for _pk, promotion_id, customer_id, quantity in reservations:
            give_back[(promotion_id, customer_id)] = give_back.get((promotion_id, customer_id), 0) + quantity
        for (promotion_id, customer_id), quantity in sorted(give_back.items()):
            FlashSaleUsage.objects.filter(
                promotion_id=promotion_id, customer_id=customer_id, used__gte=quantity,
            ).update(used=F("used") - quantity, updated_at=now)
    return len(reservations)
