"""JSON nested 2,000 levels deep gets a 4xx from every JSON endpoint, never a 500.

The endpoints are read from the URL configuration (config.urls), not listed by hand:
every DRF view, and the platform push receivers. A new endpoint is met here without
anyone remembering it; one that takes a body this test does not know how to sign
fails ``test_every_json_endpoint_is_covered``. Each request carries valid credentials
(a customer token, a POS terminal token, a staff session, or a valid signature over
the exact body), so the deep JSON reaches the parsing and is not stopped at the door.
"""

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from accounts.models import StaffRole
from accounts.services import customer_token_issue
from aftersales.services import aftersales_request_create
from channels.adapters.meituan import PUSH_PATHS as MEITUAN_PUSH_PATHS
from core.actors import Actor
from payments.models import PaymentAccount
from simulator.testing import eleme_push_signature, meituan_sig
from tests.factories import CustomerFactory, StoreBindingFactory, StoreFactory, pos_terminal, staff_user
from tests.order_helpers import make_order

pytestmark = pytest.mark.django_db

DEPTH = 2000
DEEP = "[" * DEPTH + "]" * DEPTH
DEEP_BODY = ('{"a": ' + DEEP + "}").encode()
WRITE_METHODS = ("post", "put", "patch")
WXPAY_KEY, OMS_KEY, OMS_SECRET = "deep-wxpay-key", "deep-oms", "deep-oms-secret"
WXPAY_ACCOUNT_KEY = "deep-brand-account-key"
MT_APP, MT_SECRET, ELEME_APP, ELEME_SECRET = "7001", "deep-mt-secret", "8001", "deep-eleme-secret"
PUSH_PREFIX = "channels/push/"  # the platform push receivers (plain Django views)
# The form fields of a Meituan push that carry JSON (channels.adapters.meituan), by push path.
MEITUAN_JSON_FIELDS = {"create_order": ("detail", "extras"), "refund_order": ("food",)}


def _patterns(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            space = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _patterns(entry, prefix + str(entry.pattern), space)
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), f"{namespace}{entry.name}", entry.callback


def json_endpoints() -> list[tuple[str, str, str]]:
    """(route, URL name, method) of every write a JSON endpoint takes: each method a DRF view
    implements, and POST to every platform push receiver."""
    found = []
    for route, name, callback in _patterns(get_resolver()):
        view_class = getattr(callback, "cls", None)
        if isinstance(view_class, type) and issubclass(view_class, APIView):
            found += [(route, name, method) for method in WRITE_METHODS
                      if method in view_class.http_method_names and hasattr(view_class, method)]
        elif route.startswith(PUSH_PREFIX):
            found.append((route, name, "post"))
    return found


@pytest.fixture
def world(settings):
    settings.PAYMENT_PROVIDERS = {"wxpay": {**settings.PAYMENT_PROVIDERS["wxpay"], "api_key": WXPAY_KEY}}
    settings.OMS = {**settings.OMS, "app_key": OMS_KEY, "app_secret": OMS_SECRET}
    store = StoreFactory()
    customer = CustomerFactory(brand=store.brand)
    PaymentAccount.objects.create(brand=store.brand, mchid="1900000555", appid="wx0deep0000001",
                                  api_key=WXPAY_ACCOUNT_KEY)
    StoreBindingFactory(store=store, platform="meituan", app_id=MT_APP, secret=MT_SECRET, shop_code="mt-deep")
    StoreBindingFactory(store=store, platform="eleme", app_id=ELEME_APP, secret=ELEME_SECRET, shop_code="el-deep")
    staff = Client()
    staff.force_login(staff_user(role=StaffRole.BRAND_ADMIN, brand=store.brand))
    order = make_order(store=store, customer_id=customer.pk, paid=True)
    asked = aftersales_request_create(order_id=order.pk, actor=Actor(kind="customer", id=str(customer.pk)),
                                      customer_id=customer.pk, reason_code="other")
    return {
        "store": store,
        "order_no": order.order_no,
        "request_id": str(asked.pk),
        "customer": {"HTTP_AUTHORIZATION": f"Bearer {customer_token_issue(customer=customer).token}"},
        "pos": {"HTTP_AUTHORIZATION": f"Token {pos_terminal(store=store, role='manager')[1]}"},
        "staff": staff,
    }


def _path(route: str, world) -> str:
    values = {"<str:order_no>": world["order_no"], "<int:store_id>": str(world["store"].pk),
              "<str:provider>": "wxpay", "<int:request_id>": world["request_id"],
              "<slug:account>": world["store"].brand.code}
    for placeholder, value in values.items():
        route = route.replace(placeholder, value)
    return "/" + route


def _signed_headers(body: bytes, *, secret: str, prefix: str, extra: dict) -> dict:
    timestamp, nonce = str(int(time.time())), "n0nce"
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {**extra, f"HTTP_{prefix}_TIMESTAMP": timestamp, f"HTTP_{prefix}_NONCE": nonce,
            f"HTTP_{prefix}_SIGNATURE": signature}


def deep_requests(route: str, name: str, method: str, world) -> list[dict]:
    """The request(s) that bring the deep JSON to ``name`` with valid credentials, each with the
    statuses it may get and the shape of its error body."""
    path = _path(route, world)
    api = {"method": method, "path": path, "data": DEEP_BODY, "content_type": "application/json",
           "statuses": {400}, "shape": "api"}
    if name == "payment-notify":
        return [{**api, "headers": _signed_headers(DEEP_BODY, secret=WXPAY_KEY, prefix="WECHATPAY", extra={})}]
    if name == "payment-notify-account":  # a brand's own merchant account, verified with its key
        return [{**api, "headers": _signed_headers(DEEP_BODY, secret=WXPAY_ACCOUNT_KEY, prefix="WECHATPAY",
                                                   extra={})}]
    if name == "oms-callback":
        return [{**api, "headers": _signed_headers(DEEP_BODY, secret=OMS_SECRET, prefix="X_OMS",
                                                   extra={"HTTP_X_OMS_APP_KEY": OMS_KEY})}]
    if name == "channels:push-meituan":
        requests = []
        for push_path in sorted(MEITUAN_PUSH_PATHS):
            url = path.replace("<str:path>", push_path)
            # A bare deep body, unsigned: refused before anything reads it.
            requests.append({"method": "post", "path": url, "data": DEEP_BODY, "content_type": "application/json",
                             "statuses": {400, 401}, "shape": "meituan"})
            if push_path not in MEITUAN_JSON_FIELDS:
                continue  # a form without JSON in it (cancel_order): the deep JSON would be ignored
            # Every field Meituan fills with JSON carries the deep JSON; the form is signed.
            params = {"app_id": MT_APP, "timestamp": str(int(time.time())), "app_poi_code": "mt-deep",
                      "order_id": "9001", "notify_type": "part", "money": "1.00", "refund_id": "77",
                      **{field: DEEP for field in MEITUAN_JSON_FIELDS[push_path]}}
            params["sig"] = meituan_sig(f"http://testserver{url}", params, MT_SECRET)
            requests.append({"method": "post", "path": url, "data": urlencode(params),
                             "content_type": "application/x-www-form-urlencoded", "statuses": {400},
                             "shape": "meituan"})
        return requests
    if name == "channels:push-eleme":
        fields = {"appId": ELEME_APP, "message": DEEP, "requestId": "r-1", "shopId": "el-deep",
                  "timestamp": int(time.time() * 1000), "type": 10, "userId": "u-1"}
        fields["signature"] = eleme_push_signature(fields, ELEME_SECRET)
        return [
            {"method": "post", "path": path, "data": json.dumps(fields).encode(), "content_type": "application/json",
             "statuses": {400}, "shape": "eleme"},
            {"method": "post", "path": path, "data": DEEP_BODY, "content_type": "application/json",
             "statuses": {400, 401}, "shape": "eleme"},
        ]
    if path.startswith("/api/pos/"):
        return [{**api, "headers": world["pos"]}]
    if path.startswith("/api/backoffice/"):
        return [{**api, "headers": {}, "client": world["staff"]}]
    if path.startswith("/api/v1/"):
        return [{**api, "headers": world["customer"]}]
    return []


def _error_shape(shape: str, body) -> bool:
    if shape == "api":
        error = body.get("error") if isinstance(body, dict) else None
        return (set(body) == {"error"} and set(error) == {"code", "message", "detail"}
                and isinstance(error["code"], str) and isinstance(error["detail"], dict))
    if shape == "meituan":
        return body.get("data") == "ng" and set(body["error"]) == {"code", "msg"}
    return set(body) == {"message"} and body["message"] != "ok"  # Ele.me


def test_every_json_endpoint_is_covered(world):
    endpoints = json_endpoints()
    uncovered = [(route, name, method) for route, name, method in endpoints
                 if not deep_requests(route, name, method, world)]

    assert uncovered == []
    assert {name for _route, name, _method in endpoints} >= {
        "customer-orders", "pos-order-accept", "backoffice-order-transition", "payment-notify",
        "oms-callback", "channels:push-meituan", "channels:push-eleme"}


@pytest.mark.parametrize(("route", "name", "method"), json_endpoints(), ids=lambda value: str(value))
def test_json_nested_2000_deep_is_a_4xx_in_the_error_shape(world, route, name, method):
    for spec in deep_requests(route, name, method, world):
        client = spec.get("client") or Client()

        answer = getattr(client, spec["method"])(spec["path"], data=spec["data"], content_type=spec["content_type"],
                                                 **spec.get("headers", {}))

        assert (spec["path"], answer.status_code) in {(spec["path"], status) for status in spec["statuses"]}
        assert answer["Content-Type"].startswith("application/json")
        assert _error_shape(spec["shape"], answer.json()), answer.json()


def test_an_api_path_that_names_no_endpoint_is_a_404_in_the_error_shape(world):
    answer = Client().get("/api/v1/stores/not-a-number/menu", **world["customer"])

    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": "not_found", "message": "Not found.", "detail": {}}}


def test_a_body_django_refuses_before_the_view_is_a_400_in_the_error_shape(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    answer = Client().post("/api/v1/orders", data=b'{"note": "' + b"x" * 2000 + b'"}',
                           content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1", **world["customer"])

    assert answer.status_code == 400
    assert answer.json() == {"error": {"code": "malformed_request", "message": "The request could not be processed.",
                                       "detail": {}}}


# --- NUL characters: PostgreSQL neither stores nor compares text holding one -----------------


def _routes_with_a_text_parameter():
    for route, name, callback in _patterns(get_resolver()):
        view_class = getattr(callback, "cls", None)
        if "<str:" in route and isinstance(view_class, type) and issubclass(view_class, APIView):
            method = "get" if hasattr(view_class, "get") and "get" in view_class.http_method_names else "post"
            yield route, name, method


@pytest.mark.parametrize(("route", "name", "method"), list(_routes_with_a_text_parameter()),
                         ids=lambda value: str(value))
def test_a_nul_character_in_a_path_parameter_names_nothing(world, route, name, method):
    credentials = deep_requests(route, name, method, world)[0]
    path = _path(route.replace("<str:", "<nul:"), world).replace("<nul:order_no>", "2612010001%00")
    path = path.replace("<nul:provider>", "wx%00pay")
    client = credentials.get("client") or Client()
    headers = {k: v for k, v in credentials.get("headers", {}).items() if k == "HTTP_AUTHORIZATION"}

    answer = getattr(client, method)(path, data={}, content_type="application/json", **headers)

    assert answer.status_code == 404
    assert _error_shape("api", answer.json()), answer.json()


def _signed_callback(name: str, body: dict) -> tuple[str, bytes, dict]:
    raw = json.dumps(body).encode()
    if name == "payment-notify":
        return "/api/v1/payments/notify/wxpay", raw, _signed_headers(raw, secret=WXPAY_KEY, prefix="WECHATPAY",
                                                                      extra={})
    return "/api/v1/fulfilment/oms/callback", raw, _signed_headers(raw, secret=OMS_SECRET, prefix="X_OMS",
                                                                    extra={"HTTP_X_OMS_APP_KEY": OMS_KEY})


@pytest.mark.parametrize(("name", "body", "code"), [
    ("payment-notify", {"id": "evt-1", "event_type": "TRANSACTION.SUCCESS", "resource": {
        "out_trade_no": "pay\u0000", "transaction_id": "t-1", "trade_state": "SUCCESS",
        "success_time": "2026-12-01T12:00:00+08:00", "amount": {"total": 100}}}, "malformed_notify"),
    ("payment-notify", {"id": "evt-2", "event_type": "REFUND.SUCCESS", "resource": {
        "out_refund_no": "r-1", "refund_id": "x-1", "refund_status": "SUCCESS", "note\u0000": "key"}},
     "malformed_notify"),
    ("oms-callback", {"event": "voucher.redeemed", "event_id": "e-1", "code": "EV\u0000",
                      "order_no": "2612010001", "redeemed_at": "2026-12-01T12:00:00+08:00"}, "malformed_callback"),
])
def test_a_signed_callback_carrying_a_nul_character_is_a_400(world, name, body, code):
    path, raw, headers = _signed_callback(name, body)

    answer = Client().post(path, data=raw, content_type="application/json", **headers)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == code


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("post", "/api/pos/v1/events/ack", {"ids": [3, 10**19]}, "ids"),
    ("post", "/api/v1/orders/quote", {"store": 10**19, "order_type": "pickup", "lines": [{"sku": "A", "qty": 1}]},
     "store"),
    ("get", f"/api/backoffice/v1/orders?store={10**19}", None, "store"),
])
def test_an_id_past_the_largest_bigint_is_a_400(world, method, path, body, field):
    """SQLite binds no integer past 2**63 - 1 (an OverflowError): the input stops it first."""
    client = world["staff"] if "/backoffice/" in path else Client()
    credentials = world["pos"] if "/pos/" in path else {} if "/backoffice/" in path else world["customer"]
    kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}

    answer = getattr(client, method)(path, **kwargs, **credentials)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_input"
    assert list(answer.json()["error"]["detail"]) == [field]
