"""Customer API v1 (/api/v1/) for the mini-program and the App.

Auth: ``Authorization: Bearer <token>`` from POST auth/token (see
docs/customer-api.md). A customer sees only their own orders; another
customer's order number answers 404. Views are thin: validate, call a
service, serialize.
"""

from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from accounts.authentication import CustomerPrincipal, CustomerTokenAuthentication
from accounts.services import (
    LoginCodesLimited,
    customer_login_start,
    customer_login_verify,
    otp_dev_echo_enabled,
)
from aftersales.serializers import AfterSalesOutput
from aftersales.services import LineAsk, aftersales_refund_outcome, aftersales_request_create, aftersales_withdraw
from catalog.selectors import store_sku_list
from core.actors import Actor, ActorKind
from core.api import BaseAPIView, DefaultPagination
from core.clientip import client_ip
from core.errors import InvalidInput, NotFound
from core.schema import error_response
from inventory.selectors import stock_levels
from storefront.serializers import (
    CartInput,
    ContactInput,
    CustomerOrderOutput,
    MenuOutput,
    PaymentNotifyInput,
    PaymentStartOutput,
    QuoteOutput,
    RefundRequestInput,
    cart_input_plain,
    new_order_answer,
    price_fields_in,
)
from orders.models import Channel, Order, OrderAction, OrderReasonCode, OrderType
from orders.services import order_contact_update, order_transition
from orders.services.cart import Cart, CartItem, cart_price
from orders.services.checkout import order_place
from orders.services.payment import order_payable_check, order_payment_confirm
from payments.selectors import refunds_by_order
from payments.services import PaymentResult, payment_start, provider_notify_record
from promotions.selectors import promotions_active_for_store
from storefront.selectors import (
    aftersales_for_customer_order,
    aftersales_get_for_customer,
    order_list_for_customer,
    store_get_for_brand,
)


class IsCustomer(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, CustomerPrincipal)


class CustomerAPIView(BaseAPIView):
    authentication_classes = [CustomerTokenAuthentication]
    permission_classes = [IsCustomer]
    throttle_classes = [UserRateThrottle]

    @property
    def customer(self):
        return self.request.user.customer

    def customer_orders(self, *, voucher_codes: bool = True, after_sales: bool = True):
        """The one place customer order querysets come from: always their own.
        ``voucher_codes=False`` / ``after_sales=False`` skip those reads (an order known
        not to have any)."""
        return order_list_for_customer(customer_id=self.customer.pk, voucher_codes=voucher_codes,
                                       after_sales=after_sales)

    def get_order(self, order_no: str) -> Order:
        try:
            return self.customer_orders().get(order_no=order_no)
        except Order.DoesNotExist:
            raise NotFound(_("Order not found."), code="order_not_found") from None

    def order_response(self, order_no: str, *, status_code: int = 200) -> Response:
        order = self.get_order(order_no)
        context = {"refunds": refunds_by_order(order_refs=[order.order_no])}
        return Response(CustomerOrderOutput(order, context=context).data, status=status_code)

    def created_response(self, order: Order) -> Response:
        """The 201 answer to a create: what ``order_response`` gives, built from the order
        just written (it carries its store, lines and discounts: no read back) and without
        the reads a new order cannot need (no refunds or after-sales requests yet; voucher
        codes only for voucher orders, issued after payment). Byte for byte the answer a
        GET of the order gives at that moment (tests/storefront/test_created_answer.py)."""
        if "lines" in getattr(order, "_prefetched_objects_cache", {}) and order.order_type != OrderType.VOUCHER:
            return Response(new_order_answer(order), status=status.HTTP_201_CREATED)
        fresh = self.customer_orders(voucher_codes=order.order_type == OrderType.VOUCHER,
                                     after_sales=False).get(pk=order.pk)
        return Response(CustomerOrderOutput(fresh, context={"refunds": {}, "after_sales": False}).data,
                        status=status.HTTP_201_CREATED)


def _cart_from(request) -> Cart:
    if not isinstance(request.data, dict):
        raise InvalidInput(_("The body must be a JSON object."), code="malformed_request")
    sent_prices = price_fields_in(request.data)
    if sent_prices:
        raise InvalidInput(_("Prices are computed by the server; do not send them."),
                           code="price_fields_not_accepted", detail={"fields": sent_prices})
    v = cart_input_plain(request.data)
    if v is None:
        data = CartInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
    address = v.get("address") or {}
    return Cart(
        store_id=v["store"], order_type=v["order_type"],
        items=tuple(CartItem(sku_code=line["sku"], qty=line["qty"]) for line in v["lines"]),
        coupon_codes=tuple(v["coupon_codes"]),
        address={k: str(val) for k, val in address.items()}, note=v["note"],
        contact_name=v["contact_name"], contact_phone=v["contact_phone"],
    )


# --- auth -------------------------------------------------------------------
class LoginCodeApi(BaseAPIView):
    """Sends a login code. Beyond the anonymous throttle, sending is limited per phone
    and per client address (LOGIN_CODE_PHONE_RATES, LOGIN_CODE_IP_RATES): 429 throttled
    with Retry-After."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    class Input(serializers.Serializer):
        brand = serializers.SlugField()
        phone = serializers.CharField(max_length=20)

    @extend_schema(request=Input, operation_id="customer_login_code", responses={
        200: inline_serializer("LoginCodeSent", {
            "sent": serializers.BooleanField(),
            "dev_code": serializers.CharField(required=False, help_text="Only with CUSTOMER_OTP_DEV_ECHO on.")}),
        404: error_response("Unknown brand (`brand_not_found`)."),
    })
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            code = customer_login_start(brand_code=data.validated_data["brand"], phone=data.validated_data["phone"],
                                        ip=client_ip(request))
        except LoginCodesLimited as exc:
            throttled = Throttled(detail=exc.message)  # the message already says how long
            throttled.wait = exc.retry_after  # the Retry-After header
            raise throttled from None
        body = {"sent": True}
        if otp_dev_echo_enabled():
            body["dev_code"] = code
        return Response(body)


class TokenApi(BaseAPIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]

    class Input(serializers.Serializer):
        brand = serializers.SlugField()
        phone = serializers.CharField(max_length=20)
        code = serializers.RegexField(r"^\d{6}$")

    @extend_schema(request=Input, operation_id="customer_token", responses={
        201: inline_serializer("CustomerToken", {"token": serializers.CharField(),
                                                 "customer_id": serializers.CharField()}),
        401: error_response("Wrong, expired or used-up code (`login_failed`)."),
        404: error_response("Unknown brand (`brand_not_found`)."),
    })
    def post(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        issued = customer_login_verify(brand_code=data.validated_data["brand"], phone=data.validated_data["phone"],
                                       code=data.validated_data["code"], ip=client_ip(request))
        return Response({"token": issued.token, "customer_id": str(issued.customer.pk)},
                        status=status.HTTP_201_CREATED)


# --- menu and quote -----------------------------------------------------------
class MenuApi(CustomerAPIView):
    @extend_schema(operation_id="customer_store_menu", responses=MenuOutput)
    def get(self, request, store_id: int):
        store = store_get_for_brand(brand_id=self.customer.brand_id, store_id=store_id)
        if store is None:
            raise NotFound(_("Store not found."), code="store_not_found")
        rows = list(store_sku_list(store_id=store.pk))
        levels = stock_levels(store_id=store.pk)
        categories: dict[int, dict] = {}
        products: dict[int, dict] = {}
        for row in rows:
            sku, product, category = row.sku, row.sku.product, row.sku.product.category
            cat = categories.setdefault(category.pk, {"id": str(category.pk), "name": category.name, "items": []})
            if product.pk not in products:
                products[product.pk] = {"id": str(product.pk), "name": product.name,
                                        "description": product.description, "skus": []}
                cat["items"].append(products[product.pk])
            stock = levels.get(sku.pk)
            products[product.pk]["skus"].append({
                "sku": sku.code, "spec": sku.spec, "price": f"{row.effective_price:.2f}",
                "packaging_fee": f"{sku.packaging_fee:.2f}",
                "available": row.is_available and (stock is None or stock > 0),
                "sold_out": (not row.is_available) or stock == 0, "stock": stock,
            })
        promotions = [
            {"id": str(p.pk), "name": p.name, "kind": p.kind}
            for p in promotions_active_for_store(brand_id=store.brand_id, store_id=store.pk, now=timezone.now())
        ]
        now = timezone.now()
        next_opening = store.next_opening_at(now)
        return Response({"store": {"id": str(store.pk), "name": store.name, "mode": store.mode,
                                   "accepting_orders": store.open_at(now), "busy_minutes": store.busy_minutes,
                                   "next_opening_at": timezone.localtime(next_opening).isoformat()
                                   if next_opening else None,
                                   "business_hours": store.business_hours or []},
                         "categories": list(categories.values()), "promotions": promotions})


class QuoteApi(CustomerAPIView):
    @extend_schema(request=CartInput, operation_id="customer_order_quote", responses={
        200: QuoteOutput, 404: error_response("Unknown store (`store_not_found`).")})
    def post(self, request):
        priced = cart_price(customer=self.customer, cart=_cart_from(request))
        quote = priced.quote
        codes = {sku_id: row.sku.code for sku_id, row in priced.store_skus.items()}

        def money(value: Decimal) -> str:
            return f"{value:.2f}"

        return Response({
            "lines": [{"sku": codes[line.sku_id], "qty": line.quantity, "unit_price": money(line.unit_price),
                       "subtotal": money(line.subtotal), "discount": money(line.discount),
                       "total": money(line.total)} for line in quote.lines],
            "discounts": [{"kind": d.kind, "name": str(d.name), "amount": money(d.amount),
                           "explanation": str(d.explanation)} for d in quote.discounts],
            "rejected_coupons": quote.rejected_coupons,
            "subtotal": money(quote.subtotal), "discount": money(quote.discount_total),
            "delivery_fee": money(quote.delivery_fee), "delivery_fee_discount": money(quote.delivery_fee_discount),
            "packaging_fee": money(priced.packaging_fee), "total": money(priced.total),
        })


# --- orders -----------------------------------------------------------------
class OrderListCreateApi(CustomerAPIView):
    pagination_class = DefaultPagination

    @extend_schema(responses=CustomerOrderOutput(many=True), operation_id="customer_order_list")
    def get(self, request):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(self.customer_orders().order_by("-placed_at", "-id"), request, view=self)
        context = {"refunds": refunds_by_order(order_refs=[order.order_no for order in page])}
        return paginator.get_paginated_response(CustomerOrderOutput(page, many=True, context=context).data)

    # The order and its Idempotency-Key answer are written in order_place's own transaction
    # (core.idempotency), so the store's day-number row is drawn in autocommit, not held
    # for the whole request.
    idempotency_atomic = False

    @extend_schema(request=CartInput, operation_id="customer_order_create", responses={
        201: CustomerOrderOutput, 404: error_response("Unknown store (`store_not_found`).")})
    def post(self, request):
        channel = Channel.APP if request.headers.get("X-Client", "").lower() == "app" else Channel.MINIAPP
        answered: list[Response] = []

        def answer(order: Order) -> None:
            response = self.created_response(order)
            self.idempotency_answer(response)
            answered.append(response)

        order_place(customer=self.customer, cart=_cart_from(request), channel=channel, on_created=answer)
        return answered[-1]  # a batch that failed and was replayed one by one answered twice


class OrderDetailApi(CustomerAPIView):
    @extend_schema(responses=CustomerOrderOutput, operation_id="customer_order_detail")
    def get(self, request, order_no: str):
        return self.order_response(order_no)


class OrderPayApi(CustomerAPIView):
    # payment_start calls the provider over HTTP and is idempotent per order itself:
    # never inside the Idempotency-Key transaction (core.idempotency).
    idempotency_atomic = False

    class Input(serializers.Serializer):
        provider = serializers.ChoiceField(choices=["wxpay"])

    @extend_schema(request=Input, operation_id="customer_order_pay", responses={
        200: PaymentStartOutput,
        502: error_response("The payment provider failed or refused (`payment_provider_error`, "
                            "`payment_provider_rejected`); retry later."),
        504: error_response("The payment provider did not answer in time (`payment_provider_timeout`); retry later."),
    })
    def post(self, request, order_no: str):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        order = self.get_order(order_no)
        order_payable_check(order=order)
        started = payment_start(order_ref=order.order_no, brand_id=order.brand_id, store_id=order.store_id,
                                amount=order.total, description=f"{order.store.name} {order.order_no}",
                                provider=data.validated_data["provider"])
        return Response({"order_no": order.order_no, **started})


class OrderCancelApi(CustomerAPIView):
    class Input(serializers.Serializer):
        reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")

    @extend_schema(request=Input, responses=CustomerOrderOutput, operation_id="customer_order_cancel")
    def post(self, request, order_no: str):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        order = self.get_order(order_no)
        order_transition(order_id=order.pk, action=OrderAction.CANCEL,
                         actor=Actor(kind=ActorKind.CUSTOMER, id=str(self.customer.pk)),
                         reason_code=OrderReasonCode.CUSTOMER_CANCELLED, reason=data.validated_data["reason"])
        return self.order_response(order_no)


class OrderContactApi(CustomerAPIView):
    @extend_schema(request=ContactInput, responses=CustomerOrderOutput, operation_id="customer_order_contact")
    def patch(self, request, order_no: str):
        data = ContactInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        order = self.get_order(order_no)
        address = v.get("address")
        order_contact_update(
            order_id=order.pk, actor=Actor(kind=ActorKind.CUSTOMER, id=str(self.customer.pk)),
            contact_name=v.get("contact_name"), contact_phone=v.get("contact_phone"),
            address={k: str(val) for k, val in address.items()} if address is not None else None,
            note=v.get("note"),
        )
        return self.order_response(order_no)


# --- after-sales ---------------------------------------------------------------
class _AfterSalesApi(CustomerAPIView):
    def _customer_actor(self) -> Actor:
        return Actor(kind=ActorKind.CUSTOMER, id=str(self.customer.pk), name=self.customer.name)


class OrderRefundsApi(_AfterSalesApi):
    """The customer's refund and return requests of one of their orders."""

    @extend_schema(responses=AfterSalesOutput(many=True), operation_id="customer_order_refund_list")
    def get(self, request, order_no: str):
        order = self.get_order(order_no)
        requests = aftersales_for_customer_order(customer_id=self.customer.pk, order_id=order.pk)
        return Response(AfterSalesOutput(requests, many=True, context={"actor_kind": ActorKind.CUSTOMER}).data)

    @extend_schema(request=RefundRequestInput, operation_id="customer_order_refund_create", responses={
        201: AfterSalesOutput,
        400: error_response("Invalid input, a line of another order (`line_not_in_order`), prices sent "
                            "(`price_fields_not_accepted`)."),
        404: error_response("Not the customer's order (`order_not_found`)."),
        409: error_response("Not refundable now: `order_not_refundable` (unpaid, cancelled, fully refunded), "
                            "`after_sales_window_closed`, `after_sales_already_open` (an open request has these "
                            "lines), `quantity_exceeds_refundable`, `amount_exceeds_refundable`, "
                            "`nothing_left_to_refund`, `return_not_applicable`, `platform_order`.")},
        description="Ask back the whole order (no `lines`) or some units of some lines, money only (`refund`) "
                    "or goods back then money (`return`). The amount is computed from the order's apportioned "
                    "line amounts (docs/after-sales.md); the store decides before its deadline.")
    def post(self, request, order_no: str):
        if not isinstance(request.data, dict):
            raise InvalidInput(_("The body must be a JSON object."), code="malformed_request")
        sent_prices = price_fields_in(request.data)
        if sent_prices:
            raise InvalidInput(_("Prices are computed by the server; do not send them."),
                               code="price_fields_not_accepted", detail={"fields": sent_prices})
        data = RefundRequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        order = self.get_order(order_no)
        created = aftersales_request_create(
            order_id=order.pk, actor=self._customer_actor(), kind=v["type"], reason_code=v["reason_code"],
            reason=v["reason"], customer_id=self.customer.pk,
            lines=[LineAsk(line_id=line["line_id"], quantity=line["qty"]) for line in v["lines"]] or None)
        fresh = aftersales_get_for_customer(customer_id=self.customer.pk, order_id=order.pk, request_id=created.pk)
        return Response(AfterSalesOutput(fresh, context={"actor_kind": ActorKind.CUSTOMER}).data,
                        status=status.HTTP_201_CREATED)


class OrderRefundWithdrawApi(_AfterSalesApi):
    @extend_schema(request=None, responses={
        200: AfterSalesOutput, 404: error_response("Not the customer's order or request."),
        409: error_response("Already decided (`transition_not_allowed`, `detail.status`).")},
        operation_id="customer_order_refund_withdraw")
    def post(self, request, order_no: str, request_id: int):
        if request.data and not isinstance(request.data, dict):  # the body is read (and bounded) like every POST's
            raise InvalidInput(_("The body must be a JSON object."), code="malformed_request")
        order = self.get_order(order_no)
        if aftersales_get_for_customer(customer_id=self.customer.pk, order_id=order.pk, request_id=request_id) is None:
            raise NotFound(_("After-sales request not found."), code="after_sales_not_found")
        aftersales_withdraw(request_id=request_id, actor=self._customer_actor(), customer_id=self.customer.pk)
        fresh = aftersales_get_for_customer(customer_id=self.customer.pk, order_id=order.pk, request_id=request_id)
        return Response(AfterSalesOutput(fresh, context={"actor_kind": ActorKind.CUSTOMER}).data)


NOTIFY_HEADERS = (
    ("Wechatpay-Timestamp", "Unix time in seconds; at most 300 s off."),
    ("Wechatpay-Nonce", "Random string of the provider."),
    ("Wechatpay-Signature", 'Lowercase hex HMAC-SHA256 (merchant API key) of timestamp + "\\n" + nonce + '
                            '"\\n" + body + "\\n".'),
)


class PaymentNotifyApi(BaseAPIView):
    """The provider's signed callback. Verified by signature, not by session; not
    throttled (a flash sale sends hundreds of notifies a minute from the provider's
    few addresses, and a refused notify is only sent again later)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(
        request=PaymentNotifyInput, operation_id="payment_notify",
        parameters=[OpenApiParameter(name, str, OpenApiParameter.HEADER, required=True, description=text)
                    for name, text in NOTIFY_HEADERS],
        responses={200: inline_serializer("NotifyAck", {"code": serializers.CharField()}),
                   400: error_response("Missing headers, a stale timestamp or a malformed body."),
                   401: error_response("Bad signature (`bad_signature`)."),
                   403: error_response("About a payment made to a brand's own merchant account "
                                       "(`payment_account_mismatch`): nothing changes."),
                   404: error_response("No payment or refund of ours has this number.")},
        description="The payment provider's signed notification (PLATFORMS.md): verified by its "
                    "signature over the exact body, not by a session. A replay is answered the same.")
    def post(self, request, provider: str, account: str | None = None):
        # ``account``: a brand's merchant account (its brand code), else the environment's.
        result = provider_notify_record(provider=provider, headers=request.headers, body=request.body,
                                        brand_code=account)
        # A replay (first_time False) is answered the same and changes nothing;
        # order_payment_confirm is itself idempotent per transaction id.
        if isinstance(result, PaymentResult):
            order_payment_confirm(order_no=result.order_ref, provider=provider,
                                  transaction_id=result.transaction_id, amount=result.amount,
                                  paid_at=result.paid_at)
        else:  # a refund's outcome: the after-sales request it belongs to (if any) follows, once
            aftersales_refund_outcome(refund_ref=result.refund_ref, status=result.status)
        return Response({"code": "SUCCESS"})


class PaymentAccountNotifyApi(PaymentNotifyApi):
    """The notify URL of a brand's own merchant account (``/<brand code>``): verified with
    that account's key, and only about payments made to it (payments.accounts)."""

    @extend_schema(
        request=PaymentNotifyInput, operation_id="payment_notify_account",
        parameters=[OpenApiParameter(name, str, OpenApiParameter.HEADER, required=True, description=text)
                    for name, text in NOTIFY_HEADERS],
        responses={200: inline_serializer("NotifyAccountAck", {"code": serializers.CharField()}),
                   400: error_response("Missing headers, a stale timestamp or a malformed body."),
                   401: error_response("Bad signature for this account's key (`bad_signature`)."),
                   403: error_response("About a payment made to another merchant account "
                                       "(`payment_account_mismatch`): nothing changes."),
                   404: error_response("No merchant account for this brand code (`payment_account_not_found`), "
                                       "or no payment or refund of ours has this number.")},
        description="A brand's own merchant account's notify URL (the environment's notify URL plus the brand "
                    "code): verified with that account's API key.")
    def post(self, request, provider: str, account: str | None = None):
        return super().post(request, provider, account)
