"""The simulator on its own: request validation, control API, notify delivery, faults."""

import json
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.payments.conftest import API_KEY, MCHID, sign

CREATE = "/v3/pay/transactions/jsapi"
ROOT = Path(__file__).resolve().parents[2]


def create_body(**changes) -> dict:
    body = {"appid": "wxtestapp000001", "mchid": MCHID, "description": "Pickup order", "out_trade_no": "T20261122001",
            "notify_url": "http://127.0.0.1:9/notify", "amount": {"total": 2350, "currency": "CNY"}}
    body.update(changes)
    return body


def transactions(sim) -> list[dict]:
    return requests.get(f"{sim.base_url}/_sim/wxpay/transactions", timeout=5).json()["transactions"]


def test_create_answers_a_prepay_id_and_query_reports_notpay(sim):
    created = requests.post(f"{sim.base_url}{CREATE}", json=create_body(), timeout=5)
    query = requests.get(f"{sim.base_url}/v3/pay/transactions/out-trade-no/T20261122001", timeout=5)

    assert created.status_code == 200
    assert created.json()["prepay_id"].startswith("wx")
    assert query.json() == {"appid": "wxtestapp000001", "mchid": MCHID, "out_trade_no": "T20261122001",
                            "trade_state": "NOTPAY", "amount": {"total": 2350, "currency": "CNY"}}


def test_create_refuses_a_bad_body_and_stores_nothing(sim):
    cases = [
        (b"{not json", 400, "PARAM_ERROR"),
        (json.dumps(create_body(amount={"total": 23.5, "currency": "CNY"})).encode(), 400, "PARAM_ERROR"),
        (json.dumps(create_body(amount={"total": "2350", "currency": "CNY"})).encode(), 400, "PARAM_ERROR"),
        (json.dumps(create_body(amount={"total": 0, "currency": "CNY"})).encode(), 400, "PARAM_ERROR"),
        (json.dumps(create_body(amount={"total": 2350})).encode(), 400, "PARAM_ERROR"),
        (json.dumps(create_body(out_trade_no="")).encode(), 400, "PARAM_ERROR"),
        (json.dumps(create_body(notify_url="ftp://x")).encode(), 400, "PARAM_ERROR"),
        (json.dumps(create_body(mchid="1")).encode(), 400, "MCH_NOT_EXISTS"),
        (b"[]", 400, "PARAM_ERROR"),
    ]
    answers = [requests.post(f"{sim.base_url}{CREATE}", data=body, timeout=5) for body, _, _ in cases]

    assert [(a.status_code, a.json()["code"]) for a in answers] == [(status, code) for _, status, code in cases]
    assert answers[1].json()["message"] == "amount.total must be an integer number of fen"
    assert transactions(sim) == []


def test_create_repeated_returns_the_same_prepay_id_and_refuses_changed_parameters(sim):
    first = requests.post(f"{sim.base_url}{CREATE}", json=create_body(), timeout=5).json()
    again = requests.post(f"{sim.base_url}{CREATE}", json=create_body(), timeout=5).json()
    changed = requests.post(f"{sim.base_url}{CREATE}",
                            json=create_body(amount={"total": 2351, "currency": "CNY"}), timeout=5)

    assert again == first
    assert (changed.status_code, changed.json()["code"]) == (400, "INVALID_REQUEST")


def test_unknown_transaction_and_unknown_route_answer_404(sim):
    query = requests.get(f"{sim.base_url}/v3/pay/transactions/out-trade-no/NOPE000001", timeout=5)
    route = requests.get(f"{sim.base_url}/v3/nothing", timeout=5)
    method = requests.delete(f"{sim.base_url}{CREATE}", timeout=5)

    assert (query.status_code, query.json()["code"]) == (404, "ORDER_NOT_EXIST")
    assert (route.status_code, route.json()["code"]) == (404, "NOT_FOUND")
    assert (method.status_code, method.json()["code"]) == (405, "METHOD_NOT_ALLOWED")


def test_pay_delivers_a_notify_signed_per_platforms_md(sim, sim_control, receiver):
    requests.post(f"{sim.base_url}{CREATE}", json=create_body(notify_url=receiver.url), timeout=5)
    before = int(time.time())

    paid = sim_control.pay("T20261122001")
    notify = receiver.next()

    body = notify.json
    assert body["event_type"] == "TRANSACTION.SUCCESS"
    assert body["resource"]["out_trade_no"] == "T20261122001"
    assert body["resource"]["transaction_id"] == paid["transaction_id"]
    assert body["resource"]["trade_state"] == "SUCCESS"
    assert body["resource"]["amount"] == {"total": 2350, "payer_total": 2350, "currency": "CNY",
                                          "payer_currency": "CNY"}
    expected = sign(body=notify.body, timestamp=notify.headers["Wechatpay-Timestamp"],
                    nonce=notify.headers["Wechatpay-Nonce"], key=API_KEY)
    assert notify.headers["Wechatpay-Signature"] == expected["Wechatpay-Signature"]
    assert before <= int(notify.headers["Wechatpay-Timestamp"]) <= time.time()  # signed when sent
    receiver.assert_no_more()


def test_notify_is_retried_until_the_receiver_answers_200(sim, sim_control, receiver):
    answers = iter([500, 503])
    receiver.responder = lambda notify: next(answers, 200)
    requests.post(f"{sim.base_url}{CREATE}", json=create_body(notify_url=receiver.url), timeout=5)

    sim_control.pay("T20261122001")
    deliveries = [receiver.next() for _ in range(3)]

    receiver.assert_no_more()
    assert len({d.body for d in deliveries}) == 1  # the same notify, re-signed per attempt
    assert len({d.headers["Wechatpay-Nonce"] for d in deliveries}) == 3
    out = sim_control.calls(direction="out")
    assert [(c["attempt"], c["status"]) for c in out] == [(1, 500), (2, 503), (3, 200)]


def test_pay_without_notify_changes_the_query_answer_only(sim, sim_control, receiver):
    requests.post(f"{sim.base_url}{CREATE}", json=create_body(notify_url=receiver.url), timeout=5)

    paid = sim_control.pay("T20261122001", notify=False)
    query = requests.get(f"{sim.base_url}/v3/pay/transactions/out-trade-no/T20261122001", timeout=5).json()

    assert paid["notifies"] == 0
    assert (query["trade_state"], query["transaction_id"]) == ("SUCCESS", paid["transaction_id"])
    receiver.assert_no_more()


def test_pay_twice_is_refused_and_times_2_replays_the_notify(sim, sim_control, receiver):
    requests.post(f"{sim.base_url}{CREATE}", json=create_body(notify_url=receiver.url), timeout=5)

    sim_control.pay("T20261122001", times=2)
    again = requests.post(f"{sim.base_url}/_sim/wxpay/pay", json={"out_trade_no": "T20261122001"}, timeout=5)
    first, second = receiver.next(), receiver.next()

    assert (again.status_code, again.json()["code"]) == (409, "ORDERPAID")
    assert first.body == second.body
    receiver.assert_no_more()


def test_faults_error500_and_duplicate_and_bad_signature(sim, sim_control, receiver):
    sim_control.fault(path_prefix=CREATE, mode="error500", count=2)
    sim_control.fault(path_prefix="/api/v1/payments/notify", mode="duplicate")
    sim_control.fault(path_prefix="/api/v1/payments/notify", mode="bad_signature")

    answers = [requests.post(f"{sim.base_url}{CREATE}", json=create_body(notify_url=receiver.url), timeout=5)
               for _ in range(3)]
    sim_control.pay("T20261122001")
    deliveries = [receiver.next(), receiver.next()]

    assert [a.status_code for a in answers] == [500, 500, 200]
    assert [c["fault"] for c in sim_control.calls(CREATE)] == ["error500", "error500", ""]
    assert len(transactions(sim)) == 1  # a 500 fault touches no state
    valid = [d.headers["Wechatpay-Signature"] == sign(body=d.body, timestamp=d.headers["Wechatpay-Timestamp"],
                                                      nonce=d.headers["Wechatpay-Nonce"])["Wechatpay-Signature"]
             for d in deliveries]
    assert sorted(valid) == [False, True]
    receiver.assert_no_more()


def test_fault_spec_is_validated_and_reset_clears_everything(sim, sim_control):
    bad = requests.post(f"{sim.base_url}/_sim/faults", json={"mode": "explode"}, timeout=5)
    slow_without_delay = requests.post(f"{sim.base_url}/_sim/faults", json={"mode": "slow"}, timeout=5)
    sim_control.fault(path_prefix="/v3", mode="error500", count=5)
    requests.post(f"{sim.base_url}{CREATE}", json=create_body(), timeout=5)

    reset = requests.post(f"{sim.base_url}/_sim/reset", timeout=5)
    after = requests.post(f"{sim.base_url}{CREATE}", json=create_body(), timeout=5)

    assert (bad.status_code, slow_without_delay.status_code) == (400, 400)
    assert reset.json() == {"reset": True}
    assert after.status_code == 200
    assert requests.get(f"{sim.base_url}/_sim/faults", timeout=5).json() == {"faults": []}
    assert [c["status"] for c in sim_control.calls()] == [200]


def test_refund_answers_processing_then_sends_refund_success(sim, sim_control, receiver):
    requests.post(f"{sim.base_url}{CREATE}", json=create_body(notify_url=receiver.url), timeout=5)
    paid = sim_control.pay("T20261122001", notify=False)
    refund_body = {"out_trade_no": "T20261122001", "out_refund_no": "R20261122001", "reason": "sold out",
                   "notify_url": receiver.url, "amount": {"refund": 1000, "total": 2350, "currency": "CNY"}}

    answer = requests.post(f"{sim.base_url}/v3/refund/domestic/refunds", json=refund_body, timeout=5).json()
    notify = receiver.next()
    too_much = requests.post(f"{sim.base_url}/v3/refund/domestic/refunds", timeout=5,
                             json={**refund_body, "out_refund_no": "R20261122002",
                                   "amount": {"refund": 1351, "total": 2350, "currency": "CNY"}})

    assert answer["status"] == "PROCESSING"
    assert notify.json["event_type"] == "REFUND.SUCCESS"
    assert notify.json["resource"]["refund_id"] == answer["refund_id"]
    assert notify.json["resource"]["transaction_id"] == paid["transaction_id"]
    assert notify.json["resource"]["refund_status"] == "SUCCESS"
    assert (too_much.status_code, too_much.json()["code"]) == (403, "NOT_ENOUGH")
    query = requests.get(f"{sim.base_url}/v3/pay/transactions/out-trade-no/T20261122001", timeout=5).json()
    assert query["trade_state"] == "REFUND"


def test_simulator_imports_no_django():
    code = ("import sys, simulator.server, simulator.wxpay, simulator.faults, simulator.testing, simulator.__main__; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'django', 'payments', 'orders', 'core', 'accounts'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True,
                         cwd=ROOT)

    assert out.stdout.strip() == "[]"


def test_python_m_simulator_serves_and_stops_on_sigterm():
    process = subprocess.Popen([sys.executable, "-m", "simulator", "--port", "0"], stdout=subprocess.PIPE,
                               text=True, cwd=ROOT, env={"SIM_WXPAY_MCHID": "1900000777", "PATH": ""})
    try:
        line = process.stdout.readline()
        base_url = line.split()[3]
        health = requests.get(f"{base_url}/_sim/health", timeout=5)
        created = requests.post(f"{base_url}{CREATE}", json=create_body(mchid="1900000777"), timeout=5)
    finally:
        process.terminate()
        returncode = process.wait(timeout=10)
        process.stdout.close()

    assert line.startswith("simulator listening on http://127.0.0.1:")
    assert health.json() == {"status": "ok"}
    assert created.status_code == 200
    assert returncode == 0
