"""Reads of the promotion center. Keyword-only, ``<entity>_<verb>``."""

from collections.abc import Iterable
from datetime import datetime

from functools import lru_cache

from django.db import connection
from django.db.models import QuerySet

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
    moment = connection.ops.adapt_datetimefield_value  # what the ORM does to a datetime parameter
    return list(Promotion.objects.raw(_active_sql(connection.vendor), [brand_id, moment(until or now), moment(now),
                                                                        store_id])
                .prefetch_related("target_skus", "target_categories"))


@lru_cache(maxsize=2)
def _active_sql(vendor: str) -> str:
    """``Promotion.objects.filter(brand_id=, is_active=True, starts_at__lte=, ends_at__gt=)
    .filter(Q(all_stores=True) | Q(pk__in=<the store's promotions>)).order_by("-priority", "id")``
    as SQL built once: every cart is priced with it, and building the ORM query cost more
    than running it (bench/order_create.py). The target prefetches stay the ORM's."""
    q = connection.ops.quote_name
    through = Promotion.stores.through._meta
    return (f"SELECT * FROM {q(Promotion._meta.db_table)} WHERE {q('brand_id')} = %s AND {q('is_active')} "
            f"AND {q('starts_at')} <= %s AND {q('ends_at')} > %s AND ({q('all_stores')} OR {q('id')} IN "
            f"(SELECT {q('promotion_id')} FROM {q(through.db_table)} WHERE {q('store_id')} = %s)) "
            f"ORDER BY {q('priority')} DESC, {q('id')} ASC")


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
