"""Platform pushes to a local receiver, fault injection, the order generator and the CLI."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from simulator.testing import running_simulator
from tests.simulator.conftest import (
    EL_SECRET, EL_SHOP, MT_APP_ID, MT_SECRET, MT_SHOP, SIM_THREADS, control, el_call, el_orders, el_push_signature,
    el_shop, mt_call, mt_orders, mt_shop, mt_sig,
)

ROOT = Path(__file__).resolve().parents[2]


def mt_push_is_signed(receiver, push, secret=MT_SECRET) -> bool:
    return push.form["sig"] == mt_sig(f"{receiver.base_url}{push.path}", push.form, secret)


def test_meituan_pushes_arrive_as_signed_forms_in_order(sim, receiver):
    mt_shop(sim, receiver)
    before = int(time.time())

    order = mt_orders(sim, lines=[{"app_food_code": "mt_mpdf", "quantity": 1}], caution="请放门口 & 谢谢")[0]
    control(sim, "POST", f"meituan/orders/{order['order_id']}/cancel", {"by": "customer"}, status=200)
    created, cancelled = receiver.next(), receiver.next()

    assert created.path == "/hooks/meituan/create_order"
    assert created.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert "%E8%AF%B7" in created.body.decode()  # values travel URL-encoded
    assert mt_push_is_signed(receiver, created)
    assert created.form["app_id"] == MT_APP_ID and before <= int(created.form["timestamp"]) <= time.time()
    assert (created.form["order_id"], created.form["caution"], created.form["total"]) == \
        (str(order["order_id"]), "请放门口 & 谢谢", "28.0")  # 22 + box 1 + shipping 5, 满25减4 not reached
    assert json.loads(created.form["detail"]) == json.loads(order["detail"])
    assert cancelled.path == "/hooks/meituan/cancel_order"
    assert mt_push_is_signed(receiver, cancelled)
    assert {k: cancelled.form[k] for k in ("order_id", "reason_code", "reason")} == \
        {"order_id": str(order["order_id"]), "reason_code": "1102", "reason": "用户取消"}
    assert mt_call(sim, "order/viewstatus", {"order_id": order["order_id"]}).json() == {"data": {"status": 9}}
    receiver.assert_no_more()


def test_meituan_refund_apply_pushes_refund_order(sim, receiver):
    mt_shop(sim, receiver)
    order_id = mt_orders(sim, push=False)[0]["order_id"]
    early = requests.post(f"{sim.base_url}/_sim/meituan/orders/{order_id}/refund_apply", json={}, timeout=5)
    mt_call(sim, "order/confirm", {"order_id": order_id}, method="POST")

    answer = control(sim, "POST", f"meituan/orders/{order_id}/refund_apply", {"reason": "少送了米饭"}, status=200)
    push = receiver.next()

    assert early.status_code == 409
    assert push.path == "/hooks/meituan/refund_order"
    assert mt_push_is_signed(receiver, push)
    assert {k: push.form[k] for k in ("order_id", "notify_type", "reason", "refund_id")} == \
        {"order_id": str(order_id), "notify_type": "apply", "reason": "少送了米饭",
         "refund_id": str(answer["sim"]["refund_id"])}
    assert (answer["refund_status"], answer["refund_reason"]) == (1, "少送了米饭")
    receiver.assert_no_more()


def test_eleme_pushes_are_signed_json_for_every_event(sim, receiver):
    el_shop(sim, receiver, user_id=7001)
    before, after = el_orders(sim, count=2)
    el_call(sim, "eleme.order.confirmOrderLite", {"orderId": after["id"]})

    control(sim, "POST", f"eleme/orders/{before['id']}/cancel", {}, status=200)
    control(sim, "POST", f"eleme/orders/{after['id']}/refund_apply", {"reason": "太慢"}, status=200)
    control(sim, "POST", f"eleme/orders/{after['id']}/complete", {}, status=200)
    control(sim, "POST", f"eleme/orders/{after['id']}/cancel", {"by": "platform"}, status=409)
    pushes = [receiver.next() for _ in range(5)]

    by_order = {}
    for push in pushes:
        body = push.json
        assert push.path == "/hooks/eleme"
        assert body["signature"] == el_push_signature(body, EL_SECRET)
        assert (body["appId"], body["shopId"], body["userId"]) == ("el-app-1", EL_SHOP, 7001)
        by_order.setdefault(json.loads(body["message"]).get("orderId") or json.loads(body["message"])["id"],
                            []).append(body)
    assert [b["type"] for b in by_order[before["id"]]] == [10, 14]
    assert [b["type"] for b in by_order[after["id"]]] == [10, 30, 18]
    assert json.loads(by_order[before["id"]][0]["message"]) == before
    assert json.loads(by_order[after["id"]][1]["message"])["reason"] == "太慢"
    assert len({b["requestId"] for bodies in by_order.values() for b in bodies}) == 5
    receiver.assert_no_more()


def test_bad_signature_fault_is_refused_then_retried_correctly(sim, receiver):
    mt_shop(sim, receiver)
    receiver.responder = lambda push: 200 if mt_push_is_signed(receiver, push) else 403
    control(sim, "POST", "faults", {"path_prefix": "/hooks/meituan", "mode": "bad_signature"}, status=201)

    mt_orders(sim)
    first, second = receiver.next(), receiver.next()

    assert (mt_push_is_signed(receiver, first), mt_push_is_signed(receiver, second)) == (False, True)
    assert first.form["order_id"] == second.form["order_id"]
    # The simulator logs an outgoing call once the answer is back: wait for the second entry.
    deadline = time.monotonic() + 5
    while True:
        out = control(sim, "GET", "calls?path_prefix=/hooks/meituan&direction=out")["calls"]
        if len(out) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(c["attempt"], c["status"], c["fault"]) for c in out] == [(1, 403, "bad_signature"), (2, 200, "")]
    assert out[0]["body"]["order_id"] == first.form["order_id"]  # form bodies are logged decoded
    receiver.assert_no_more()


def test_duplicate_fault_delivers_the_same_push_twice(sim, receiver):
    el_shop(sim, receiver)
    control(sim, "POST", "faults", {"path_prefix": "/hooks/eleme", "mode": "duplicate"}, status=201)

    el_orders(sim)
    first, second = receiver.next(), receiver.next()

    assert first.json["requestId"] == second.json["requestId"]
    assert first.json["message"] == second.json["message"]
    receiver.assert_no_more()


def test_shuffle_fault_delivers_the_next_pushes_out_of_order(sim, receiver):
    mt_shop(sim, receiver)
    plain = mt_orders(sim)[0]["order_id"]
    control(sim, "POST", f"meituan/orders/{plain}/cancel", {}, status=200)
    in_order = [receiver.next().path for _ in range(2)]
    control(sim, "POST", "faults", {"path_prefix": "/hooks/meituan", "mode": "shuffle", "count": 2}, status=201)

    shuffled = mt_orders(sim)[0]["order_id"]
    control(sim, "POST", f"meituan/orders/{shuffled}/cancel", {}, status=200)
    out_of_order = [receiver.next() for _ in range(2)]

    assert in_order == ["/hooks/meituan/create_order", "/hooks/meituan/cancel_order"]
    assert [p.path for p in out_of_order] == ["/hooks/meituan/cancel_order", "/hooks/meituan/create_order"]
    assert {p.form["order_id"] for p in out_of_order} == {str(shuffled)}
    receiver.assert_no_more()


def test_shuffle_fault_releases_a_short_batch_after_its_hold_time(sim, receiver):
    el_shop(sim, receiver)
    control(sim, "POST", "faults", {"path_prefix": "/hooks/eleme", "mode": "shuffle", "count": 5, "delay": 0.3},
            status=201)

    started = time.monotonic()
    el_orders(sim, count=2)
    pushes = [receiver.next() for _ in range(2)]

    assert time.monotonic() - started >= 0.3
    assert len({p.json["requestId"] for p in pushes}) == 2
    receiver.assert_no_more()


def test_error500_and_slow_faults_on_platform_calls(sim):
    mt_shop(sim)
    el_shop(sim)
    order_id = mt_orders(sim)[0]["order_id"]
    el_id = el_orders(sim)[0]["id"]
    control(sim, "POST", "faults", {"path_prefix": "/api/v1/order/confirm", "mode": "error500"}, status=201)
    control(sim, "POST", "faults", {"path_prefix": "/api/v1/order/delivering", "mode": "slow", "delay": 0.6},
            status=201)
    control(sim, "POST", "faults", {"path_prefix": "/api/v1/eleme.order.confirmOrderLite", "mode": "error500"},
            status=201)

    failed = mt_call(sim, "order/confirm", {"order_id": order_id}, method="POST")
    status_after_500 = mt_call(sim, "order/viewstatus", {"order_id": order_id}).json()["data"]["status"]
    el_other_action = el_call(sim, "eleme.order.getOrder", {"orderId": el_id})
    el_failed = requests.post(f"{sim.base_url}/api/v1/", json={"action": "eleme.order.confirmOrderLite"}, timeout=5)
    retried = mt_call(sim, "order/confirm", {"order_id": order_id}, method="POST").json()
    try:
        mt_call(sim, "order/delivering", {"order_id": order_id, "courier_name": "王", "courier_phone": "1"},
                method="POST", timeout=0.2)
        timed_out = False
    except requests.exceptions.Timeout:
        timed_out = True
    time.sleep(0.6)
    status_after_slow = mt_call(sim, "order/viewstatus", {"order_id": order_id}).json()["data"]["status"]

    assert (failed.status_code, status_after_500) == (500, 2)
    assert el_other_action["error"] is None
    assert el_failed.status_code == 500
    assert [c["fault"] for c in control(sim, "GET", "calls?path_prefix=/api/v1/eleme.order.confirm")["calls"]] == \
        ["error500"]
    assert retried == {"data": "ok"}
    assert timed_out is True
    assert status_after_slow == 6  # the slow call still took effect
    assert el_call(sim, "eleme.order.getOrder", {"orderId": el_id})["result"]["status"] == "unprocessed"
    faults = [c["fault"] for c in control(sim, "GET", "calls?path_prefix=/api/v1/order/")["calls"]]
    assert faults.count("error500") == 1 and faults.count("slow") == 1


def test_calls_are_logged_with_form_bodies_decoded(sim):
    mt_shop(sim)
    order_id = mt_orders(sim)[0]["order_id"]

    mt_call(sim, "order/cancel", {"order_id": order_id, "reason_code": 2003, "reason": "太忙了"}, method="POST")
    calls = control(sim, "GET", "calls?path_prefix=/api/v1/order/cancel")["calls"]

    assert len(calls) == 1
    assert calls[0]["body"] == {"order_id": str(order_id), "reason_code": "2003", "reason": "太忙了"}
    assert set(calls[0]["query"]) == {"app_id", "timestamp", "sig"}


def test_generator_produces_orders_at_the_rate_and_stops(sim, receiver):
    mt_shop(sim, receiver, rate_per_minute=1200)  # 20 a second
    el_shop(sim, rate_per_minute=600)

    time.sleep(0.5)
    control(sim, "POST", f"meituan/shops/{MT_SHOP}/rate", {"rate_per_minute": 0}, status=200)
    control(sim, "POST", f"eleme/shops/{EL_SHOP}/rate", {"rate_per_minute": 0}, status=200)
    time.sleep(0.1)
    mt_count = len(control(sim, "GET", f"meituan/orders?shop={MT_SHOP}")["orders"])
    el_count = len(control(sim, "GET", f"eleme/orders?shop={EL_SHOP}")["orders"])
    time.sleep(0.3)
    mt_later = control(sim, "GET", f"meituan/orders?shop={MT_SHOP}")["orders"]
    pushed = [receiver.next() for _ in range(mt_count)]

    assert 5 <= mt_count <= 14
    assert 2 <= el_count <= 8
    assert len(mt_later) == mt_count
    assert [o["day_seq"] for o in mt_later] == list(range(1, mt_count + 1))
    assert {p.form["order_id"] for p in pushed} == {str(o["order_id"]) for o in mt_later}
    assert [t.name for t in threading.enumerate() if t.name == "sim-generator"] == []


def test_a_running_generator_is_joined_when_the_simulator_exits():
    shop = {"app_poi_code": MT_SHOP, "app_id": MT_APP_ID, "secret": MT_SECRET, "rate_per_minute": 3000}

    with running_simulator(meituan_shops=(shop,), generator_tick=0.02) as server:
        time.sleep(0.2)
        orders = requests.get(f"{server.base_url}/_sim/meituan/orders", timeout=5).json()["orders"]
        running = [t.name for t in threading.enumerate() if t.name == "sim-generator"]

    assert len(orders) >= 3
    assert running == ["sim-generator"]
    assert [t.name for t in threading.enumerate() if t.name in SIM_THREADS] == []


def test_reset_clears_orders_but_keeps_configured_shops():
    shop = {"shop_id": EL_SHOP, "app_key": "el-app-1", "secret": EL_SECRET, "token": "el-token-1"}

    with running_simulator(eleme_shops=(shop,)) as server:
        requests.post(f"{server.base_url}/_sim/eleme/shops", timeout=5,
                      json={**shop, "shop_id": "extra"}).raise_for_status()
        requests.post(f"{server.base_url}/_sim/eleme/orders", json={"shop": EL_SHOP}, timeout=5).raise_for_status()
        requests.post(f"{server.base_url}/_sim/reset", timeout=5).raise_for_status()
        shops = requests.get(f"{server.base_url}/_sim/eleme/shops", timeout=5).json()["shops"]
        orders = requests.get(f"{server.base_url}/_sim/eleme/orders", timeout=5).json()["orders"]

    assert [s["shop_id"] for s in shops] == [EL_SHOP]
    assert orders == []


def test_shop_registration_is_validated(sim):
    missing_secret = requests.post(f"{sim.base_url}/_sim/meituan/shops", json={"app_poi_code": "x", "app_id": "a"},
                                   timeout=5)
    bad_menu = requests.post(f"{sim.base_url}/_sim/eleme/shops", timeout=5,
                             json={"shop_id": "e", "app_key": "k", "secret": "s", "token": "t",
                                   "menu": [{"item_id": "i", "sku_id": 1, "name": "n", "price": -1}]})
    mt_shop(sim)
    clash = requests.post(f"{sim.base_url}/_sim/meituan/shops", timeout=5,
                          json={"app_poi_code": "mt-store-2", "app_id": MT_APP_ID, "secret": "different"})
    unknown_shop = requests.post(f"{sim.base_url}/_sim/meituan/orders", json={"shop": "nope"}, timeout=5)

    assert [r.status_code for r in (missing_secret, bad_menu, clash, unknown_shop)] == [400, 400, 400, 404]


def test_python_m_simulator_with_a_config_file(tmp_path):
    config = tmp_path / "sim.json"
    config.write_text(json.dumps({
        "meituan_shops": [{"app_poi_code": "mt-store-1", "app_id": "demo-mt", "secret": "demo-mt-secret"}],
        "eleme_shops": [{"shop_id": "el-store-1", "app_key": "demo-el", "secret": "demo-el-secret",
                         "token": "demo-el-token"}],
    }), encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "simulator", "--port", "0", "--config", str(config)],
                               stdout=subprocess.PIPE, text=True, cwd=ROOT, env={"PATH": ""})
    try:
        lines = [process.stdout.readline() for _ in range(5)]
        base_url = lines[0].split()[3]
        shops = requests.get(f"{base_url}/_sim/meituan/shops", timeout=5).json()["shops"]
        answer = requests.get(f"{base_url}/_sim/eleme/shops", timeout=5).json()["shops"]
    finally:
        process.terminate()
        returncode = process.wait(timeout=10)
        process.stdout.close()

    assert lines[0].startswith("simulator listening on http://127.0.0.1:")
    assert lines[2].strip() == f"meituan  {base_url}/api/v1/{{path}}  shops: mt-store-1"
    assert lines[3].strip() == f"eleme    {base_url}/api/v1/  shops: el-store-1"
    assert [(s["app_poi_code"], s["app_id"]) for s in shops] == [("mt-store-1", "demo-mt")]
    assert [s["shop_id"] for s in answer] == ["el-store-1"]
    assert returncode == 0


def test_python_m_simulator_defaults_and_a_bad_config(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"meituan_shops": [{"app_poi_code": "x"}]}), encoding="utf-8")
    failed = subprocess.run([sys.executable, "-m", "simulator", "--port", "0", "--config", str(bad)],
                            capture_output=True, text=True, cwd=ROOT, env={"PATH": ""}, timeout=30)
    process = subprocess.Popen([sys.executable, "-m", "simulator", "--port", "0"], stdout=subprocess.PIPE, text=True,
                               cwd=ROOT, env={"PATH": ""})
    try:
        lines = [process.stdout.readline() for _ in range(5)]
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()

    assert failed.returncode != 0 and "bad shop in config" in failed.stderr
    assert lines[2].rstrip().endswith("shops: mt-store-1, mt-store-2, mt-store-3")
    assert lines[3].rstrip().endswith("shops: el-store-1, el-store-2, el-store-3")


def test_simulator_platform_modules_import_no_django():
    code = ("import sys, simulator.meituan, simulator.eleme, simulator.orders_gen, simulator.testing, "
            "simulator.__main__; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'django', 'channels', 'orders', 'core', 'requests'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True,
                         cwd=ROOT)

    assert out.stdout.strip() == "[]"
