"""Reads of the back-office API: every order query goes through the staff member's scope."""

from django.db.models import F, Prefetch, Q, QuerySet

from accounts.models import Store
from aftersales.models import AfterSalesRequest
from aftersales.selectors import aftersales_list
from catalog.models import StoreSku
from accounts.selectors import scope_for_user
from core.errors import NotFound
from core.models import OutboxMessage, OutboxStatus
from core.tenancy import TenantScope, scope_queryset
from inventory.selectors import stock_on_hand_subquery
from orders.models import Order


def order_list_for_staff(*, scope: TenantScope) -> QuerySet[Order]:
    """The orders ``scope`` reaches, with their store, newest first."""
    return scope_queryset(Order.objects.select_related("store"), scope).order_by("-placed_at", "-id")


def order_get_for_staff(*, scope: TenantScope, order_no: str) -> Order:
    """``access_*`` style fetch of one order with its store, lines and events: an
    order outside ``scope`` is not found (NotFound ``order_not_found``)."""
    queryset = scope_queryset(Order.objects.select_related("store"), scope).prefetch_related("lines", "events")
    try:
        return queryset.get(order_no=order_no)
    except Order.DoesNotExist:
        raise NotFound(code="order_not_found") from None


# --- the workspace -----------------------------------------------------------------------


def workspace_stores(*, user) -> QuerySet[Store]:
    """The stores a back-office user works at (a brand admin: every store of the brand)."""
    return scope_queryset(Store.objects.select_related("brand"), scope_for_user(user=user)).order_by(
        "brand_id", "code")


def workspace_store(*, user, store_id) -> Store:
    """One of ``workspace_stores``; anything else (another brand's, not a number) is not found."""
    try:
        return workspace_stores(user=user).get(pk=int(store_id))
    except (Store.DoesNotExist, TypeError, ValueError):
        raise NotFound(code="store_not_found") from None


def workspace_order(*, store: Store, order_no: str) -> Order:
    order = Order.objects.filter(store_id=store.pk, order_no=order_no).first()
    if order is None:
        raise NotFound(code="order_not_found")
    return order


def workspace_failed_call(*, store: Store, message_id: int) -> OutboxMessage:
    """A platform call about one of ``store``'s orders that failed for good (a dead letter)."""
    message = OutboxMessage.objects.filter(pk=message_id, status=OutboxStatus.DEAD, brand_id=store.brand_id).first()
    if message is None or not Order.objects.filter(store_id=store.pk, order_no=message.key).exists():
        raise NotFound(code="message_not_found")
    return message


SKU_STATES = ("all", "on_sale", "by_hand", "out_of_stock")


def workspace_store_skus(*, store: Store, query: str = "", state: str = "all") -> QuerySet[StoreSku]:
    """The SKUs ``store`` sells, for the sold-out controls: searched by name or merchant code,
    filtered by what the channels show (on sale, sold out by hand, out of stock), each with its
    on-hand stock (``on_hand``, None when untracked). One query."""
    rows = (StoreSku.objects.filter(store_id=store.pk).select_related("sku__product__category")
            .annotate(on_hand=stock_on_hand_subquery())
            .order_by("sku__product__category__sort_order", "sku__product__sort_order", "sku__code"))
    query = query.strip()[:40]
    if query:
        rows = rows.filter(Q(sku__code__icontains=query) | Q(sku__product__name__icontains=query)
                           | Q(sku__spec__icontains=query))
    if state == "on_sale":
        rows = rows.filter(is_available=True, stock_out=False)
    elif state == "by_hand":
        rows = rows.filter(is_available=False)
    elif state == "out_of_stock":
        rows = rows.filter(stock_out=True)
    return rows


AFTER_SALES_OPEN = ("requested", "approved", "awaiting_goods", "refunding", "failed")
AFTER_SALES_DECIDED = ("refunded", "rejected", "withdrawn")


def workspace_after_sales(*, user, tab: str = "open", store_id: int | None = None, channel: str = "",
                          limit: int = 200) -> list[AfterSalesRequest]:
    """The after-sales queue of a back-office user's stores: open requests (waiting for a
    decision, the goods or the money; oldest deadline first) or decided ones (newest first),
    with order, store and lines. Three queries."""
    requests = scope_queryset(aftersales_list(), scope_for_user(user=user)).select_related("store")
    if tab == "decided":
        requests = requests.filter(status__in=AFTER_SALES_DECIDED).order_by("-updated_at", "-id")
    else:
        requests = requests.filter(status__in=AFTER_SALES_OPEN).order_by(
            F("deadline").asc(nulls_last=True), "id")
    if store_id is not None:
        requests = requests.filter(store_id=store_id)
    if channel:
        requests = requests.filter(order__channel=channel)
    return list(requests[:limit])


def workspace_after_sales_request(*, user, request_id: int) -> AfterSalesRequest:
    request = scope_queryset(aftersales_list(), scope_for_user(user=user)).filter(pk=request_id).first()
    if request is None:
        raise NotFound(code="after_sales_not_found")
    return request


def workspace_orders_search(*, user, q: str = "", store_id: int | None = None, limit: int = 50) -> list[Order]:
    """Orders of the user's stores found by what a person has at hand: the order number, the
    last 4 digits of the customer's phone, the platform's order id, or the pickup code;
    without a query, the latest orders. Newest first, one query."""
    orders = scope_queryset(Order.objects.select_related("store"), scope_for_user(user=user))
    if store_id is not None:
        orders = orders.filter(store_id=store_id)
    q = q.strip()[:40]
    if q:
        match = Q(order_no=q) | Q(channel_order_id=q) | Q(channel_order_no=q) | Q(pickup_code__iexact=q)
        if len(q) == 4 and q.isdigit():
            match |= Q(contact_phone__endswith=q)
        orders = orders.filter(match)
    return list(orders.order_by("-placed_at", "-id")[:limit])


def workspace_order_page(*, user, order_no: str) -> Order:
    """One order of the user's stores with everything its page shows (lines, discounts, the
    timeline, after-sales requests with their lines): a fixed number of queries."""
    order = (scope_queryset(Order.objects.select_related("store", "customer"), scope_for_user(user=user))
             .prefetch_related("lines", "discounts", "events",
                               Prefetch("after_sales", queryset=aftersales_list().order_by("id")))
             .filter(order_no=order_no).first())
    if order is None:
        raise NotFound(code="order_not_found")
    return order
