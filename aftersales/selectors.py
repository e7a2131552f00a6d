"""Reads of after-sales requests. Callers scope them: a customer's orders, a
terminal's store, a staff member's tenant scope."""

from django.db.models import Prefetch, QuerySet

from aftersales.models import AfterSalesLine, AfterSalesRequest


def aftersales_list(*, order_id: int | None = None, store_id: int | None = None, customer_id: int | None = None,
                    status: str | None = None) -> QuerySet[AfterSalesRequest]:
    """Requests, newest first, with their order and lines (no query per request)."""
    requests = (AfterSalesRequest.objects.select_related("order")
                .prefetch_related(Prefetch("lines", queryset=AfterSalesLine.objects.select_related("order_line")
                                           .order_by("order_line__line_no")))
                .order_by("-id"))
    if order_id is not None:
        requests = requests.filter(order_id=order_id)
    if store_id is not None:
        requests = requests.filter(store_id=store_id)
    if customer_id is not None:
        requests = requests.filter(order__customer_id=customer_id)
    if status:
        requests = requests.filter(status=status)
    return requests


def aftersales_get(*, request_id: int, store_id: int | None = None, customer_id: int | None = None,
                   order_id: int | None = None) -> AfterSalesRequest | None:
    """One request, or None when it is not there or not the caller's (store, customer, order)."""
    return aftersales_list(store_id=store_id, customer_id=customer_id, order_id=order_id).filter(
        pk=request_id).first()
