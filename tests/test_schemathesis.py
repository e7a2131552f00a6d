"""schemathesis over the customer, POS and back-office APIs, with real credentials.

The schema is the one the project serves (``/api/schema/``). The requests go through
the project's WSGI application in this process and commit as in production (no test
transaction around them, connections kept for CONN_MAX_AGE); the payment provider and
the OMS are the simulator. Every answer, to valid and to invalid input alike, must be
no server error and match the schema: a documented status code, the documented
content type and headers, a body that validates.

Bounded and repeatable: the coverage phase's fixed cases (boundary and invalid values,
unexpected methods) plus at most MAX_EXAMPLES generated examples per operation and
generation mode (valid and invalid input), derandomized with a fixed seed. One world
(brand, store, menu, customer, terminal, staff) serves every operation, each with
fresh orders: one pytest item, one subtest per operation.
"""

import hashlib
import hmac
import json
import secrets
import time
from collections import Counter

import pytest
import schemathesis
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import connections
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.core import NotSet

from accounts.models import StaffRole
from accounts.services import customer_token_issue
from catalog.models import StockDeductionMode
from inventory.services import stock_set
from simulator.testing import running_simulator
from tests.factories import CustomerFactory, SkuFactory, StoreFactory, StoreSkuFactory, pos_terminal, staff_user
from tests.order_helpers import make_order

MAX_EXAMPLES = 25
SEED = 20261204
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance")
WXPAY_KEY, OMS_KEY, OMS_SECRET = "schemathesis-wxpay-key", "schemathesis-oms", "schemathesis-oms-secret"

CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True,
                   "with-security-parameters": False},
    "phases": {"stateful": {"enabled": False}},
    "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
})
answers: list[tuple[str, int]] = []  # (operation, status) of every request sent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(settings):
    """One brand, one store with a menu and stock, a customer, a manager's POS terminal, a
    brand admin, and orders in the states the verbs act on; the payment provider and the OMS
    simulated. Committed: the WSGI application runs outside any test transaction."""
    with running_simulator(wxpay_api_key=WXPAY_KEY) as sim:
        settings.PAYMENT_PROVIDERS = {"wxpay": {**settings.PAYMENT_PROVIDERS["wxpay"], "base_url": sim.base_url,
                                                "api_key": WXPAY_KEY}}
        settings.OMS = {**settings.OMS, "base_url": sim.base_url, "app_key": OMS_KEY, "app_secret": OMS_SECRET}
        yield _world_build()


@pytest.fixture
def api_schema(world, request):
    """The served schema of the three APIs, requests sent to the WSGI application in-process."""
    # schemathesis 4.32 relabels the running item through ``Node._nodeid``, which pytest 9.2
    # renamed (``Node._id``): give it the attribute to write to (it only affects the labels).
    request.node._nodeid = request.node.nodeid
    database = connections["default"].settings_dict
    conn_max_age, database["CONN_MAX_AGE"] = database["CONN_MAX_AGE"], 60  # production keeps connections
    request.addfinalizer(lambda: database.update(CONN_MAX_AGE=conn_max_age))
    request.addfinalizer(lambda: _report(request.config))
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application(), config=CONFIG).include(
        path_regex=r"^/api/(v1|pos/v1|backoffice/v1)/")


def _report(config) -> None:
    """One line for the record (docs/benchmarks.md): how many requests, and their answers."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not answers:
        return
    by_class = Counter(f"{status // 100}xx" for _operation, status in answers)
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nschemathesis: {len(answers)} requests over {len({op for op, _ in answers})} "
                            f"operations ({', '.join(f'{n} {k}' for k, n in sorted(by_class.items()))})")


def _world_build() -> dict:
    store = StoreFactory(delivery_fee="5.00")
    for code, mode in (("RICE", StockDeductionMode.ON_ORDER), ("TEA", StockDeductionMode.ON_PAYMENT),
                       ("SOUP", None)):
        sku = SkuFactory(brand=store.brand, code=code, price="12.00", **({"stock_mode": mode} if mode else {}))
        StoreSkuFactory(store=store, sku=sku)
        if mode:
            stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=100_000)
    customer = CustomerFactory(brand=store.brand)
    browser = Client()
    browser.force_login(staff_user(role=StaffRole.BRAND_ADMIN, brand=store.brand))
    orders: dict[str, list[str]] = {}

    def orders_for(operation: str) -> list[str]:
        """Fresh orders for each operation (a verb must not find them all moved on by another):
        one awaiting payment, and paid pickup, delivery and dine-in orders awaiting the store."""
        if operation not in orders:
            kinds = ({"order_type": "pickup"}, {"order_type": "delivery", "address": {"detail": "南京东路1号"}},
                     {"order_type": "dine_in"})
            made = [make_order(store=store, customer_id=customer.pk)]
            made += [make_order(store=store, customer_id=customer.pk, paid=True, **kind) for kind in kinds]
            orders[operation] = [order.order_no for order in made]
        return orders[operation]

    return {
        "store_id": store.pk,
        "skus": ["RICE", "TEA", "SOUP"],
        "orders_for": orders_for,
        "examples": Counter(),
        "customer_token": customer_token_issue(customer=customer).token,
        "pos_token": pos_terminal(store=store, role="manager")[1],
        "session": browser.cookies["sessionid"].value,
        "csrf": secrets.token_hex(16),
    }


def _swap(value, real: list, n: int):
    """Two in three generated values become one of ``real`` (in turn), the third is kept and
    names nothing (a 404 or a 400). By the example's number: the run stays repeatable."""
    if n % 3 == 0 or isinstance(value, bool) or not isinstance(value, str | int):
        return value
    return real[n % len(real)]


def _realistic(case, world) -> None:
    """Generated ids, store ids and SKU codes rarely name anything of the world: swap most of
    them for real ones, so the verbs meet real orders, stores and SKUs too. A generated
    Idempotency-Key is made specific to the request: a key drawn twice for two bodies would
    otherwise make most POSTs a 422 (that path is still met: the same key and body twice is
    a replay)."""
    label = case.operation.label
    world["examples"][label] += 1
    n = world["examples"][label]
    params = case.path_parameters or {}
    for name, real in (("order_no", world["orders_for"](label)), ("store_id", [world["store_id"]]),
                       ("provider", ["wxpay"])):
        if name in params:
            params[name] = _swap(params[name], real, n)
    body = case.body
    if isinstance(body, dict):
        if "store" in body:
            body["store"] = _swap(body["store"], [world["store_id"]], n)
        if "sku" in body:
            body["sku"] = _swap(body["sku"], world["skus"], n)
        lines = body.get("lines")
        for index, line in enumerate(lines if isinstance(lines, list) else []):
            if isinstance(line, dict) and "sku" in line:
                line["sku"] = _swap(line["sku"], world["skus"], n + index)
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and 1 <= len(key) <= 64 and key.isprintable():
        seed = f"{key}|{case.method} {case.formatted_path}|{body!r}"  # keys are the caller's, whatever the path
        case.headers["Idempotency-Key"] = hashlib.sha256(seed.encode()).hexdigest()[:40]


def _signed(case) -> tuple[dict, dict]:
    """The payment notify and the OMS callback are signed over the exact body: sign what is sent."""
    if isinstance(case.body, NotSet):
        body = b""
    elif isinstance(case.body, bytes):  # negative mode: not JSON at all
        body = case.body
    else:
        body = json.dumps(case.body).encode()
    timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    if case.path.startswith("/api/v1/payments/notify/"):
        signature = hmac.new(WXPAY_KEY.encode(), message, hashlib.sha256).hexdigest()
        headers = {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature}
    else:
        signature = hmac.new(OMS_SECRET.encode(), message, hashlib.sha256).hexdigest()
        headers = {"X-Oms-App-Key": OMS_KEY, "X-Oms-Timestamp": timestamp, "X-Oms-Nonce": nonce,
                   "X-Oms-Signature": signature}
    return headers, {"data": body}


def credentials(case, world) -> tuple[dict, dict, dict]:
    """Headers, cookies and a raw body (signed callbacks) of a real caller of ``case``'s API."""
    path = case.path
    if path.startswith("/api/pos/"):
        return {"Authorization": f"Token {world['pos_token']}"}, {}, {}
    if path.startswith("/api/backoffice/"):
        return {"X-CSRFToken": world["csrf"]}, {"sessionid": world["session"], "csrftoken": world["csrf"]}, {}
    if path.startswith(("/api/v1/payments/notify/", "/api/v1/fulfilment/oms/callback")):
        headers, body = _signed(case)
        return headers, {}, body
    return {"Authorization": f"Bearer {world['customer_token']}"}, {}, {}


def test_the_worlds_credentials_are_accepted_by_each_api(world):
    """Without this, a run whose every request was refused (401 is documented) would pass."""
    world["orders_for"]("credentials")
    client = Client()
    customer = client.get("/api/v1/orders", HTTP_AUTHORIZATION=f"Bearer {world['customer_token']}")
    pos = client.get("/api/pos/v1/orders", HTTP_AUTHORIZATION=f"Token {world['pos_token']}")
    client.cookies["sessionid"] = world["session"]
    staff = client.get("/api/backoffice/v1/orders")

    assert (customer.status_code, customer.json()["count"]) == (200, 4)
    assert (pos.status_code, pos.json()["count"]) == (200, 3)  # the paid ones: the store sees those
    assert (staff.status_code, staff.json()["count"]) == (200, 4)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_answers_match_the_schema_and_never_5xx(case, world):
    _realistic(case, world)
    cache.clear()  # the throttles' counters: 429 is documented, but the run is here for the handlers
    headers, cookies, body = credentials(case, world)
    response = case.call_and_validate(headers=headers, cookies=cookies, **body)
    answers.append((case.operation.label, response.status_code))
