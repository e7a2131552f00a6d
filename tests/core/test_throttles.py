"""Client addresses and rate limits (docs/security.md, "Abuse limits"): a forged
X-Forwarded-For gives no fresh bucket; the signed receivers (payment notifies, the OMS
callback, the platform pushes) are not throttled, the anonymous endpoints are."""

import json
import time
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import RequestFactory
from rest_framework.test import APIClient
from rest_framework.throttling import AnonRateThrottle, BaseThrottle

from core.clientip import client_ip
from orders.models import Order, OrderStatus
from payments.services import payment_start
from simulator.testing import running_simulator
from tests.factories import StoreFactory
from tests.order_helpers import make_order
from tests.payments.conftest import API_KEY, MCHID, sign

CLIENT = "203.0.113.7"
PROXY = "10.0.0.2"
TOKEN_URL = "/api/v1/auth/token"
TOKEN_BODY = {"brand": "nobody", "phone": "13800001234", "code": "123456"}


@pytest.fixture(autouse=True)
def fresh_cache():
    """DRF throttles count in the cache: start and leave it empty."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def anon_limit(monkeypatch):
    """The anonymous rate at 5 a minute (DRF reads its rates when the class is defined)."""
    monkeypatch.setattr(AnonRateThrottle, "THROTTLE_RATES", {**AnonRateThrottle.THROTTLE_RATES, "anon": "5/min"})
    return 5


@pytest.fixture
def trusted_proxies(settings):
    """TRUSTED_PROXY_COUNT as the environment sets it: it feeds DRF's NUM_PROXIES too."""
    def _set(count: int) -> None:
        settings.TRUSTED_PROXY_COUNT = count
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": count}
    return _set


def request_from(remote_addr: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote_addr}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


# --- one rule for the client address ------------------------------------------------------


def test_settings_feed_drf_from_the_same_variable():
    import config.settings as base

    assert base.TRUSTED_PROXY_COUNT == 0
    assert base.REST_FRAMEWORK["NUM_PROXIES"] == base.TRUSTED_PROXY_COUNT
    assert base.AXES_CLIENT_IP_CALLABLE == "core.clientip.client_ip"


@pytest.mark.parametrize(("proxies", "remote_addr", "forwarded", "client"), [
    (0, CLIENT, None, CLIENT),
    (0, CLIENT, "198.51.100.1", CLIENT),  # forged: ignored
    (0, CLIENT, "198.51.100.1, 198.51.100.2", CLIENT),
    (1, PROXY, f"198.51.100.1, {CLIENT}", CLIENT),  # the proxy appended the client
    (1, PROXY, CLIENT, CLIENT),
    (1, PROXY, None, PROXY),
    (2, PROXY, f"198.51.100.1, {CLIENT}, 10.0.0.1", CLIENT),
    (2, PROXY, CLIENT, CLIENT),  # came in at the inner proxy
])
def test_client_ip_and_drf_agree(trusted_proxies, proxies, remote_addr, forwarded, client):
    trusted_proxies(proxies)
    request = request_from(remote_addr, forwarded)

    assert client_ip(request) == client
    assert BaseThrottle().get_ident(request) == client


# --- the anonymous throttle ------------------------------------------------------------------


def test_without_a_trusted_proxy_a_forged_header_gets_no_fresh_bucket(db, anon_limit):
    # given: five requests, each with another forged X-Forwarded-For
    client = APIClient(REMOTE_ADDR=CLIENT)
    answers = [client.post(TOKEN_URL, TOKEN_BODY, format="json", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
               for n in range(anon_limit)]
    # when
    sixth = client.post(TOKEN_URL, TOKEN_BODY, format="json", HTTP_X_FORWARDED_FOR="198.51.100.99")
    # then
    assert answers == [404] * anon_limit  # brand "nobody": answered, not throttled
    assert sixth.status_code == 429
    assert sixth.json()["error"]["code"] == "throttled"
    assert 1 <= int(sixth["Retry-After"]) <= 60


def test_behind_one_proxy_the_last_forwarded_entry_is_the_client(db, anon_limit, trusted_proxies):
    # given: one trusted proxy; the client forges the entries left of its own
    trusted_proxies(1)
    through_proxy = APIClient(REMOTE_ADDR=PROXY)
    for n in range(anon_limit):
        response = through_proxy.post(TOKEN_URL, TOKEN_BODY, format="json",
                                      HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, {CLIENT}")
        assert response.status_code == 404
    # when
    same_client = through_proxy.post(TOKEN_URL, TOKEN_BODY, format="json",
                                     HTTP_X_FORWARDED_FOR=f"198.51.100.99, {CLIENT}")
    other_client = through_proxy.post(TOKEN_URL, TOKEN_BODY, format="json", HTTP_X_FORWARDED_FOR="203.0.113.8")
    # then
    assert same_client.status_code == 429
    assert other_client.status_code == 404


# --- signed receivers are not throttled ------------------------------------------------------


def _notify(out_trade_no: str, *, fen: int, txn: str, nonce: str) -> tuple[bytes, dict]:
    body = json.dumps({
        "id": f"EV-{txn}", "event_type": "TRANSACTION.SUCCESS",
        "resource": {"out_trade_no": out_trade_no, "transaction_id": txn, "trade_state": "SUCCESS",
                     "success_time": "2026-12-01T12:00:00+08:00", "amount": {"total": fen, "payer_total": fen}},
    }, separators=(",", ":")).encode()
    return body, sign(body=body, timestamp=str(int(time.time())), nonce=nonce)


@pytest.mark.django_db
def test_three_hundred_payment_notifies_from_one_address_all_answer_200(settings, anon_limit):
    # given: 30 orders waiting for payment at the provider (the simulator)
    store = StoreFactory()
    with running_simulator(wxpay_api_key=API_KEY, wxpay_mchid=MCHID) as sim:
        settings.PAYMENT_PROVIDERS = {"wxpay": {
            "base_url": sim.base_url, "appid": "wxthrottle", "mchid": MCHID, "api_key": API_KEY,
            "notify_url": "http://127.0.0.1:8000/api/v1/payments/notify/wxpay", "timeout": 3.0, "retries": 0}}
        orders = [make_order(store=store) for _ in range(30)]
        started = [payment_start(order_ref=o.order_no, brand_id=o.brand_id, store_id=o.store_id, amount=o.total,
                                 description=o.order_no) for o in orders]
    provider = APIClient(REMOTE_ADDR=CLIENT)
    # when: each payment notified ten times (the provider re-delivers), 300 notifies in a row
    answers = []
    for delivery in range(10):
        for n, payment in enumerate(started):
            fen = int(Decimal(payment["amount"]) * 100)
            body, headers = _notify(payment["out_trade_no"], fen=fen, txn=f"42000{n:05d}", nonce=f"n{delivery}-{n}")
            response = provider.generic("POST", "/api/v1/payments/notify/wxpay", body,
                                        content_type="application/json",
                                        headers={k: v for k, v in headers.items()})
            answers.append((response.status_code, response.json()))
    # then: every one answered, every order paid, and the anonymous limit still holds for that address
    assert answers == [(200, {"code": "SUCCESS"})] * 300
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.PAID}
    token_answers = [provider.post(TOKEN_URL, TOKEN_BODY, format="json").status_code for _ in range(anon_limit + 1)]
    assert token_answers == [404] * anon_limit + [429]


@pytest.mark.django_db
def test_the_oms_callback_is_not_throttled(anon_limit):
    oms = APIClient(REMOTE_ADDR=CLIENT)

    answers = [oms.generic("POST", "/api/v1/fulfilment/oms/callback", b"{}", content_type="application/json")
               for _ in range(anon_limit * 3)]

    # unsigned: refused by its own checks every time, never 429
    assert {(a.status_code, a.json()["error"]["code"]) for a in answers} == {(400, "malformed_callback")}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/channels/push/meituan/order", "/channels/push/eleme"])
def test_the_platform_push_receivers_are_not_throttled(anon_limit, path):
    platform = APIClient(REMOTE_ADDR=CLIENT)

    answers = {platform.get(path).status_code for _ in range(anon_limit * 3)}

    assert answers == {200}  # the platform's "does this URL answer" probe, every time
