"""Reads of the customer API: every order query is scoped to the customer."""

from django.db.models import Prefetch, QuerySet

from accounts.models import Store
from aftersales.models import AfterSalesRequest
from aftersales.selectors import aftersales_list
from orders.models import Order, OrderLine, VoucherCode


def order_list_for_customer(*, customer_id: int, voucher_codes: bool = True, after_sales: bool = True
                            ) -> QuerySet[Order]:
    """The customer's own orders (the one place customer order querysets come from),
    with their store, lines in line order, discounts, after-sales requests and voucher
    codes; ``voucher_codes=False`` / ``after_sales=False`` skip those reads (an order
    known not to have any: one just created)."""
    orders = (
        Order.objects.filter(customer_id=customer_id)
        .select_related("store")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("line_no")), "discounts")
    )
    if after_sales:
        orders = orders.prefetch_related(Prefetch("after_sales", queryset=aftersales_list()))
    if voucher_codes:
        orders = orders.prefetch_related(
            Prefetch("voucher_codes", queryset=VoucherCode.objects.order_by("line_no", "id")))
    return orders


def store_get_for_brand(*, brand_id: int, store_id: int) -> Store | None:
    """The brand's store ``store_id``; None when there is none (or it is another brand's)."""
    return Store.objects.filter(pk=store_id, brand_id=brand_id).first()


def aftersales_for_customer_order(*, customer_id: int, order_id: int) -> list[AfterSalesRequest]:
    """The after-sales requests of one of the customer's orders, newest first."""
    return list(aftersales_list(order_id=order_id, customer_id=customer_id))


def aftersales_get_for_customer(*, customer_id: int, order_id: int, request_id: int) -> AfterSalesRequest | None:
    return aftersales_list(order_id=order_id, customer_id=customer_id).filter(pk=request_id).first()
