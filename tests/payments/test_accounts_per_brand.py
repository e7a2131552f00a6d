"""Payment accounts per brand, over real HTTP with the provider simulator holding three
merchants: brand A's account, brand B's account, and the environment's (brand C has none).

Payments, refunds, queries and notifies each use the account of the payment's brand; a
notify signed with another brand's key, or sent to another account's URL, is refused and
changes nothing; the admin never shows a key."""

from decimal import Decimal

import pytest
import requests
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import StaffRole
from payments.errors import NotifyAccountMismatch, NotifyBadSignature, PaymentAccountMissing, PaymentAccountUnknown
from payments.models import PaymentAccount, PaymentTransaction
from payments.services import payment_reconcile, payment_start, provider_notify_record, refund_start
from tests.factories import BrandFactory, staff_user
from tests.payments.conftest import API_KEY, MCHID, NOTIFY_PATH, sign

A_MCHID, A_KEY, A_APPID = "1900000101", "brand-a-key", "wx0brand0a00001"
B_MCHID, B_KEY, B_APPID = "1900000202", "brand-b-key", "wx0brand0b00001"


@pytest.fixture
def brands(db, sim):
    a, b, c = BrandFactory(code="brand-a"), BrandFactory(code="brand-b"), BrandFactory(code="brand-c")
    PaymentAccount.objects.create(brand=a, mchid=A_MCHID, appid=A_APPID, api_key=A_KEY)
    PaymentAccount.objects.create(brand=b, mchid=B_MCHID, appid=B_APPID, api_key=B_KEY)
    for mchid, key in ((A_MCHID, A_KEY), (B_MCHID, B_KEY)):
        answer = requests.post(f"{sim.base_url}/_sim/wxpay/merchants", json={"mchid": mchid, "api_key": key},
                               timeout=5)
        assert answer.status_code == 201
    return {"a": a, "b": b, "c": c}


def start(brand, order_ref: str, amount: str = "23.50") -> dict:
    return payment_start(order_ref=order_ref, brand_id=brand.pk, amount=Decimal(amount), description="测试订单")


def sim_transactions(sim) -> dict[str, dict]:
    body = requests.get(f"{sim.base_url}/_sim/wxpay/transactions", timeout=5).json()
    return {t["out_trade_no"]: t for t in body["transactions"]} | {r["out_refund_no"]: r for r in body["refunds"]}


def test_each_brands_payment_is_made_to_its_own_merchant(brands, wxpay, sim, receiver):
    paid_a = start(brands["a"], "A-1")
    paid_b = start(brands["b"], "B-1")
    paid_c = start(brands["c"], "C-1")

    held = sim_transactions(sim)
    assert {ref: (held[p["out_trade_no"]]["mchid"], held[p["out_trade_no"]]["appid"],
                  held[p["out_trade_no"]]["notify_url"])
            for ref, p in (("A-1", paid_a), ("B-1", paid_b), ("C-1", paid_c))} == {
        "A-1": (A_MCHID, A_APPID, f"{receiver.url}/brand-a"),
        "B-1": (B_MCHID, B_APPID, f"{receiver.url}/brand-b"),
        "C-1": (MCHID, "wxtestapp000001", receiver.url)}
    assert dict(PaymentTransaction.objects.values_list("order_ref", "mchid")) == {
        "A-1": A_MCHID, "B-1": B_MCHID, "C-1": MCHID}
    assert paid_a["params"]["appId"] == A_APPID


def test_notifies_are_accepted_only_with_the_right_key_and_url(brands, wxpay, sim, sim_control, receiver):
    started = start(brands["a"], "A-1")
    sim_control.pay(started["out_trade_no"])
    notify = receiver.next()
    assert notify.path == f"{NOTIFY_PATH}/brand-a"

    # Brand A's notify sent to brand B's URL: verified with B's key, the signature fails.
    with pytest.raises(NotifyBadSignature):
        provider_notify_record(provider="wxpay", headers=notify.headers, body=notify.body, brand_code="brand-b")
    # The same body signed with brand B's own key at B's URL: B's key is right, the payment is A's.
    forged = sign(body=notify.body, timestamp=notify.headers["Wechatpay-Timestamp"], key=B_KEY)
    with pytest.raises(NotifyAccountMismatch):
        provider_notify_record(provider="wxpay", headers=forged, body=notify.body, brand_code="brand-b")
    # Signed with the environment's key at the environment's URL: not an environment payment either.
    forged_env = sign(body=notify.body, timestamp=notify.headers["Wechatpay-Timestamp"], key=API_KEY)
    with pytest.raises(NotifyAccountMismatch):
        provider_notify_record(provider="wxpay", headers=forged_env, body=notify.body)
    with pytest.raises(PaymentAccountUnknown):
        provider_notify_record(provider="wxpay", headers=notify.headers, body=notify.body, brand_code="brand-c")
    assert PaymentTransaction.objects.get(order_ref="A-1").status == "created"

    result = provider_notify_record(provider="wxpay", headers=notify.headers, body=notify.body, brand_code="brand-a")

    assert (result.order_ref, result.first_time) == ("A-1", True)
    assert PaymentTransaction.objects.get(order_ref="A-1").status == "succeeded"


def meta(headers: dict) -> dict:
    """Notify headers as the test client's WSGI keys."""
    return {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower().startswith("wechatpay")}


def test_the_notify_endpoint_answers_in_the_contracts_shape(brands, wxpay, sim, sim_control, receiver):
    started = start(brands["b"], "B-1")
    sim_control.pay(started["out_trade_no"])
    notify = receiver.next()
    signed_by_a = sign(body=notify.body, timestamp=notify.headers["Wechatpay-Timestamp"], key=A_KEY)
    client = APIClient()

    wrong_account = client.post(f"{NOTIFY_PATH}/brand-a", data=notify.body, content_type="application/json",
                                **meta(signed_by_a))
    no_account = client.post(f"{NOTIFY_PATH}/nobody", data=notify.body, content_type="application/json",
                             **meta(notify.headers))
    assert (wrong_account.status_code, wrong_account.json()["error"]["code"]) == (403, "payment_account_mismatch")
    assert (no_account.status_code, no_account.json()["error"]["code"]) == (404, "payment_account_not_found")
    assert PaymentTransaction.objects.get(order_ref="B-1").status == "created"
    # (The right URL and key reach the order's confirmation: tests/storefront and tests/aftersales.)


def test_refunds_and_queries_use_the_payments_account(brands, wxpay, sim, sim_control, receiver):
    started = start(brands["b"], "B-1")
    sim_control.pay(started["out_trade_no"], notify=False)  # a lost notify: the query finds it

    found = payment_reconcile(out_trade_no=started["out_trade_no"])
    refund = refund_start(order_ref="B-1", refund_ref="R1", amount=Decimal("3.50"), reason="少送了")
    notify = receiver.next()

    assert found is not None and found.first_time is True
    held = sim_transactions(sim)
    assert (held[refund.out_refund_no]["mchid"], held[refund.out_refund_no]["notify_url"]) == (
        B_MCHID, f"{receiver.url}/brand-b")
    assert (notify.path, notify.json["event_type"], notify.json["resource"]["mchid"]) == (
        f"{NOTIFY_PATH}/brand-b", "REFUND.SUCCESS", B_MCHID)
    forged = sign(body=notify.body, timestamp=notify.headers["Wechatpay-Timestamp"], key=A_KEY)
    with pytest.raises(NotifyAccountMismatch):
        provider_notify_record(provider="wxpay", headers=forged, body=notify.body, brand_code="brand-a")
    result = provider_notify_record(provider="wxpay", headers=notify.headers, body=notify.body, brand_code="brand-b")
    assert (result.status, result.amount) == ("succeeded", Decimal("3.50"))
    # Every call for brand B's payment was signed as merchant B.
    calls = [c for c in sim_control.calls("/v3/") if started["out_trade_no"] in c["path"]
             or c["path"].startswith("/v3/refund")]
    assert {c["headers"].get("Authorization", c["headers"].get("authorization", ""))
            .split('mchid="')[1].split('"')[0] for c in calls} == {B_MCHID}


def test_a_payment_keeps_its_account_after_the_brand_changes_it(brands, wxpay, sim, sim_control, receiver):
    started = start(brands["c"], "C-1")  # made to the environment's account
    PaymentAccount.objects.create(brand=brands["c"], mchid="1900000303", appid="wx0brand0c00001", api_key="c-key")
    requests.post(f"{sim.base_url}/_sim/wxpay/merchants", json={"mchid": "1900000303", "api_key": "c-key"},
                  timeout=5).raise_for_status()
    sim_control.pay(started["out_trade_no"])
    notify = receiver.next()

    result = provider_notify_record(provider="wxpay", headers=notify.headers, body=notify.body)
    assert (notify.path, result.first_time) == (NOTIFY_PATH, True)
    refund = refund_start(order_ref="C-1", refund_ref="R1", amount=Decimal("1.00"), reason="测试")
    assert sim_transactions(sim)[refund.out_refund_no]["mchid"] == MCHID
    # A new payment of brand C now goes to its own account.
    start(brands["c"], "C-2")
    assert PaymentTransaction.objects.get(order_ref="C-2").mchid == "1900000303"


def test_a_payment_whose_account_is_gone_cannot_be_refunded_by_another(brands, wxpay, sim, sim_control, receiver):
    started = start(brands["a"], "A-1")
    sim_control.pay(started["out_trade_no"])
    provider_notify_record(provider="wxpay", headers=(n := receiver.next()).headers, body=n.body,
                           brand_code="brand-a")
    PaymentAccount.objects.filter(brand=brands["a"]).delete()

    with pytest.raises(PaymentAccountMissing):
        refund_start(order_ref="A-1", refund_ref="R1", amount=Decimal("1.00"), reason="测试")


def test_the_simulator_refuses_another_merchants_calls(brands, wxpay, sim, sim_control, receiver):
    from payments.provider import provider_client

    started = start(brands["a"], "A-1")
    account_b = PaymentAccount.objects.select_related("brand").get(brand=brands["b"])
    as_b = provider_client("wxpay", account=account_b)

    assert as_b.query(out_trade_no=started["out_trade_no"]).trade_state == "ORDER_NOT_EXIST"
    forged_key = provider_client("wxpay", account=PaymentAccount(brand=brands["b"], mchid=B_MCHID, appid=B_APPID,
                                                                 api_key="not-b-key"))
    from payments.errors import PaymentProviderRejected

    with pytest.raises(PaymentProviderRejected) as caught:
        forged_key.query(out_trade_no=started["out_trade_no"])
    assert (caught.value.detail["http_status"], caught.value.detail["provider_code"]) == (401, "SIGN_ERROR")


def test_brand_admins_set_their_account_and_never_see_the_key(brands, wxpay):
    admin_a = staff_user(role=StaffRole.BRAND_ADMIN, brand=brands["a"], username="admin_a")
    client = Client()
    client.force_login(admin_a)
    account = PaymentAccount.objects.get(brand=brands["a"])

    page = client.get(f"/admin/payments/paymentaccount/{account.pk}/change/")
    listing = client.get("/admin/payments/paymentaccount/")
    other = client.get(f"/admin/payments/paymentaccount/{PaymentAccount.objects.get(brand=brands['b']).pk}/change/")
    kept = client.post(f"/admin/payments/paymentaccount/{account.pk}/change/", {
        "brand": brands["a"].pk, "provider": "wxpay", "mchid": A_MCHID, "appid": "wx0brand0a00002", "api_key": "",
        "enabled": "on"})
    account.refresh_from_db()
    assert (account.appid, account.api_key) == ("wx0brand0a00002", A_KEY)
    rotated = client.post(f"/admin/payments/paymentaccount/{account.pk}/change/", {
        "brand": brands["a"].pk, "provider": "wxpay", "mchid": A_MCHID, "appid": "wx0brand0a00002",
        "api_key": "brand-a-key-2", "enabled": "on"})
    account.refresh_from_db()

    assert page.status_code == 200 and A_KEY not in page.content.decode()
    assert listing.status_code == 200 and A_KEY not in listing.content.decode() and B_MCHID not in \
        listing.content.decode()
    assert other.status_code in (302, 404)
    assert (kept.status_code, rotated.status_code) == (302, 302)
    assert account.api_key == "brand-a-key-2"


def test_the_simulators_merchant_registry(sim):
    bad = requests.post(f"{sim.base_url}/_sim/wxpay/merchants", json={"mchid": "12ab", "api_key": "k"}, timeout=5)
    added = requests.post(f"{sim.base_url}/_sim/wxpay/merchants", json={"mchid": "1900000777", "api_key": "k"},
                          timeout=5)
    listed = requests.get(f"{sim.base_url}/_sim/wxpay/merchants", timeout=5).json()
    requests.post(f"{sim.base_url}/_sim/reset", timeout=5)
    after_reset = requests.get(f"{sim.base_url}/_sim/wxpay/merchants", timeout=5).json()

    assert (bad.status_code, bad.json()["code"]) == (400, "BAD_REQUEST")
    assert added.status_code == 201
    assert listed == {"merchants": [MCHID, "1900000777"]}
    assert after_reset == {"merchants": [MCHID]}
