"""Reads of the promotion center. Keyword-only, ``<entity>_<verb>``."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Q, QuerySet

from promotions.models import Coupon, CouponStatus, FlashSaleUsage, Promotion
from promotions.rules import normalize_coupon_code


def promotions_active_for_store(*, brand_id: int, store_id: int, now: datetime,
                                until: datetime | None = None) -> list[Promotion]:
    """Active promotions of the brand whose window holds ``now`` (or, with
    ``until``, overlaps ``[now, until]``: a batch priced at several moments;
    the engine checks each cart's own moment) and which cover the store.

    Three queries whatever the number of promotions (targets prefetched).
    Order types are not filtered here: the engine does it per order.
    """
    store_ids = Promotion.stores.through.objects.filter(store_id=store_id).values("promotion_id")
    return list(
        Promotion.objects.filter(brand_id=brand_id, is_active=True, starts_at__lte=until or now, ends_at__gt=now)
        .filter(Q(all_stores=True) | Q(pk__in=store_ids))
        .prefetch_related("target_skus", "target_categories")
        .order_by("-priority", "id")
    )


def coupon_list_by_codes(*, brand_id: int, customer_id: int | None, codes: Iterable[str]) -> list[Coupon]:
    """The customer's coupons of this brand among ``codes`` (any status).

    Codes of another customer or brand are simply not returned: to the caller
    they do not exist.
    """
    normalized = {normalize_coupon_code(code) for code in codes if code and code.strip()}
    if customer_id is None or not normalized:
        return []
    return list(
        Coupon.objects.select_related("template")
        .filter(code__in=normalized, customer_id=customer_id, template__brand_id=brand_id)
    )


def coupon_list_available(*, customer_id: int, now: datetime) -> QuerySet[Coupon]:
    """The customer's coupons usable now ("my coupons"), soonest to expire first."""
    return (
        Coupon.objects.select_related("template")
        .filter(customer_id=customer_id, status=CouponStatus.AVAILABLE, valid_from__lte=now, valid_until__gt=now)
        .order_by("valid_until", "id")
    )


def flash_sale_used_by_customers(*, customer_ids: Iterable[int], promotion_ids: Iterable[int],
                                 ) -> dict[int, dict[int, int]]:
    """customer id -> ``flash_sale_used_by_customer`` for many customers in one query."""
    used: dict[int, dict[int, int]] = {}
    ids, customers = list(promotion_ids), list(customer_ids)
    if ids and customers:
        for customer_id, promotion_id, units in (
            FlashSaleUsage.objects.filter(customer_id__in=customers, promotion_id__in=ids)
            .values_list("customer_id", "promotion_id", "used")
        ):
            used.setdefault(customer_id, {})[promotion_id] = units
    return used


def flash_sale_used_by_customer(*, customer_id: int, promotion_ids: Iterable[int]) -> dict[int, int]:
    """promotion id -> flash-price units the customer already holds (paid or reserved)."""
    return flash_sale_used_by_customers(customer_ids=[customer_id], promotion_ids=promotion_ids).get(customer_id, {})
