"""Thin Celery wrappers around promotions.services (periodic jobs)."""

from celery import shared_task
from django.utils import timezone

from promotions.services import coupon_expire_overdue


@shared_task(name="promotions.expire_coupons")
def expire_coupons_task() -> int:
    """Available coupons past their validity become expired (idempotent)."""
    return coupon_expire_overdue(now=timezone.now())
