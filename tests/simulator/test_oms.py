"""The simulator's OMS over real HTTP, against the protocol in docs/fulfilment.md:
signed issue requests (idempotent on the order number), stale and forged requests
refused, redemption reports pushed signed to the callback URL, faults, the call log.
Signatures are computed here, independently of the simulator and of our adapter."""

import hashlib
import hmac
import json
import re
import threading
import time

import pytest
import requests

from simulator.testing import running_simulator
from tests.http_receiver import running_receiver
from tests.simulator.conftest import SIM_THREADS

KEY, SECRET = "oms-app-1", "oms-secret-1"
ISSUE = "/oms/v1/vouchers/issue"


def signature(body: bytes, timestamp: str, nonce: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n",
                    hashlib.sha256).hexdigest()


def oms_post(sim, path, payload, *, secret=SECRET, key=KEY, timestamp=None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"Content-Type": "application/json", "X-Oms-App-Key": key, "X-Oms-Timestamp": timestamp,
               "X-Oms-Nonce": "abc123", "X-Oms-Signature": signature(body, timestamp, "abc123", secret)}
    return requests.post(f"{sim.base_url}{path}", data=body, headers=headers, timeout=5)


@pytest.fixture
def sim():
    with running_simulator(oms_app_key=KEY, oms_app_secret=SECRET, notify_backoff=(0.05, 0.1),
                           notify_max_attempts=10, notify_timeout=2.0) as server:
        yield server
    assert [t.name for t in threading.enumerate() if t.name in SIM_THREADS] == []


@pytest.fixture
def callback():
    with running_receiver(ok_body=b'{"code": "SUCCESS"}', fail_body=b'{"code": "FAIL"}') as receiver:
        receiver.url = f"{receiver.base_url}/api/v1/fulfilment/oms/callback"
        yield receiver


def issue_body(callback_url="", order_no="261201000010001", qty=2):
    return {"order_no": order_no, "store_ref": "1", "callback_url": callback_url,
            "items": [{"line_no": 1, "sku": "V50", "name": "50元代金券", "qty": qty, "face_value_fen": 4500}]}


def test_issue_answers_one_code_per_unit_and_the_same_codes_again(sim):
    first = oms_post(sim, ISSUE, issue_body())
    again = oms_post(sim, ISSUE, issue_body())

    assert (first.status_code, again.status_code) == (200, 200)
    vouchers = first.json()["vouchers"]
    assert [(v["line_no"], v["sku"], v["face_value_fen"], v["state"]) for v in vouchers] == [
        (1, "V50", 4500, "issued"), (1, "V50", 4500, "issued")]
    assert all(re.match(r"^EV\d{10}$", v["code"]) for v in vouchers)
    assert vouchers[0]["code"] != vouchers[1]["code"]
    assert again.json() == first.json() == {"order_no": "261201000010001", "vouchers": vouchers}
    held = requests.get(f"{sim.base_url}/_sim/oms/vouchers", timeout=5).json()["vouchers"]
    assert len(held) == 2


def test_the_same_order_number_with_other_items_is_409(sim):
    oms_post(sim, ISSUE, issue_body())

    other = oms_post(sim, ISSUE, issue_body(qty=3))

    assert other.status_code == 409
    assert other.json()["code"] == "ORDER_NO_REUSED"


@pytest.mark.parametrize(("options", "code"), [
    ({"secret": "wrong"}, "BAD_SIGNATURE"),
    ({"timestamp": int(time.time()) - 301}, "STALE_TIMESTAMP"),
    ({"key": "someone-else"}, "UNKNOWN_APP"),
])
def test_forged_stale_or_unknown_requests_are_401_and_issue_nothing(sim, options, code):
    response = oms_post(sim, ISSUE, issue_body(), **options)

    assert (response.status_code, response.json()["code"]) == (401, code)
    assert requests.get(f"{sim.base_url}/_sim/oms/vouchers", timeout=5).json() == {"vouchers": []}


@pytest.mark.parametrize("payload", [
    {"order_no": "1", "store_ref": "1", "items": []},
    {"order_no": "1", "store_ref": "1", "items": [{"line_no": 1, "sku": "V", "name": "n", "qty": 0,
                                                   "face_value_fen": 1}]},
    {"order_no": "1", "store_ref": "1", "items": [{"line_no": 1, "sku": "V", "name": "n", "qty": 1,
                                                   "face_value_fen": 45.5}]},
    {"order_no": "bad no!", "store_ref": "1", "items": [{"line_no": 1, "sku": "V", "name": "n", "qty": 1,
                                                         "face_value_fen": 1}]},
])
def test_bad_bodies_are_400_param_error(sim, payload):
    response = oms_post(sim, ISSUE, payload)

    assert (response.status_code, response.json()["code"]) == (400, "PARAM_ERROR")


def test_an_error500_fault_changes_nothing_and_is_in_the_call_log(sim):
    requests.post(f"{sim.base_url}/_sim/faults", json={"mode": "error500", "path_prefix": ISSUE}, timeout=5)

    failed = oms_post(sim, ISSUE, issue_body())
    retried = oms_post(sim, ISSUE, issue_body())

    assert (failed.status_code, retried.status_code) == (500, 200)
    assert len(retried.json()["vouchers"]) == 2
    calls = requests.get(f"{sim.base_url}/_sim/calls", params={"path_prefix": ISSUE}, timeout=5).json()["calls"]
    assert [(c["direction"], c["method"], c["status"], c["fault"]) for c in calls] == [
        ("in", "POST", 500, "error500"), ("in", "POST", 200, "")]
    assert calls[1]["body"] == issue_body()


def test_a_redemption_is_pushed_signed_to_the_callback_and_cannot_happen_twice(sim, callback):
    [voucher, _other] = oms_post(sim, ISSUE, issue_body(callback.url)).json()["vouchers"]
    before = int(time.time())

    report = requests.post(f"{sim.base_url}/_sim/oms/redeem", json={"code": voucher["code"], "store_ref": "mall-7"},
                           timeout=5)
    twice = requests.post(f"{sim.base_url}/_sim/oms/redeem", json={"code": voucher["code"]}, timeout=5)
    pushed = callback.next()

    assert report.status_code == 200
    assert pushed.json == {"event": "voucher.redeemed", "event_id": report.json()["event_id"],
                           "code": voucher["code"], "order_no": "261201000010001", "store_ref": "mall-7",
                           "redeemed_at": report.json()["redeemed_at"]}
    assert pushed.headers["X-Oms-App-Key"] == KEY
    assert pushed.headers["X-Oms-Signature"] == signature(pushed.body, pushed.headers["X-Oms-Timestamp"],
                                                          pushed.headers["X-Oms-Nonce"])
    assert before <= int(pushed.headers["X-Oms-Timestamp"]) <= time.time()  # signed when pushed
    assert (twice.status_code, twice.json()["code"]) == (409, "ALREADY_REDEEMED")
    callback.assert_no_more()
    [out] = requests.get(f"{sim.base_url}/_sim/calls", params={"direction": "out"}, timeout=5).json()["calls"]
    assert (out["label"], out["status"], out["path"]) == ("voucher.redeemed", 200, "/api/v1/fulfilment/oms/callback")


def test_a_refused_callback_is_retried_until_it_is_accepted(sim, callback):
    statuses = iter([500, 500, 200])
    callback.responder = lambda request: next(statuses)
    [voucher, _other] = oms_post(sim, ISSUE, issue_body(callback.url)).json()["vouchers"]

    requests.post(f"{sim.base_url}/_sim/oms/redeem", json={"code": voucher["code"]}, timeout=5)
    deliveries = [callback.next(), callback.next(), callback.next()]

    assert len({d.body for d in deliveries}) == 1
    callback.assert_no_more()


def test_query_a_code_and_reset_forgets_everything(sim):
    [voucher, _other] = oms_post(sim, ISSUE, issue_body()).json()["vouchers"]
    timestamp = str(int(time.time()))
    headers = {"X-Oms-App-Key": KEY, "X-Oms-Timestamp": timestamp, "X-Oms-Nonce": "q1",
               "X-Oms-Signature": signature(b"", timestamp, "q1")}

    found = requests.get(f"{sim.base_url}/oms/v1/vouchers/{voucher['code']}", headers=headers, timeout=5)
    requests.post(f"{sim.base_url}/_sim/reset", timeout=5)
    gone = requests.get(f"{sim.base_url}/oms/v1/vouchers/{voucher['code']}", headers=headers, timeout=5)

    assert (found.status_code, found.json()["state"], found.json()["order_no"]) == (200, "issued", "261201000010001")
    assert (gone.status_code, gone.json()["code"]) == (404, "VOUCHER_NOT_EXIST")


def test_a_merchant_redemption_report_is_idempotent_and_refused_for_a_code_used_elsewhere(sim):
    [mine, theirs] = oms_post(sim, ISSUE, issue_body()).json()["vouchers"]
    requests.post(f"{sim.base_url}/_sim/oms/redeem", json={"code": theirs["code"]}, timeout=5)
    report = {"code": mine["code"], "order_no": "261201000010001", "store_ref": "1",
              "redeemed_at": "2026-12-01T12:00:00+08:00"}

    first = oms_post(sim, "/oms/v1/vouchers/redeem", report)
    again = oms_post(sim, "/oms/v1/vouchers/redeem", report)
    used = oms_post(sim, "/oms/v1/vouchers/redeem", {**report, "code": theirs["code"]})
    other_order = oms_post(sim, "/oms/v1/vouchers/redeem", {**report, "order_no": "261201000010002"})

    assert (first.status_code, first.json()) == (200, {"code": mine["code"], "state": "redeemed"})
    assert (again.status_code, again.json()) == (200, {"code": mine["code"], "state": "redeemed"})
    assert (used.status_code, used.json()["code"]) == (409, "ALREADY_REDEEMED")
    assert (other_order.status_code, other_order.json()["code"]) == (404, "VOUCHER_NOT_EXIST")


def test_void_voids_the_codes_not_yet_redeemed_once(sim):
    [used, left] = oms_post(sim, ISSUE, issue_body()).json()["vouchers"]
    requests.post(f"{sim.base_url}/_sim/oms/redeem", json={"code": used["code"]}, timeout=5)

    first = oms_post(sim, "/oms/v1/vouchers/void", {"order_no": "261201000010001"})
    again = oms_post(sim, "/oms/v1/vouchers/void", {"order_no": "261201000010001"})
    unknown = oms_post(sim, "/oms/v1/vouchers/void", {"order_no": "261201000019999"})

    assert first.json()["voided"] == [left["code"]]
    assert [v["state"] for v in first.json()["vouchers"]] == ["redeemed", "void"]
    assert again.json()["voided"] == []
    assert (unknown.status_code, unknown.json()["code"]) == (404, "ORDER_NOT_EXIST")
