"""The platform simulator over real HTTP: the simulator in-process on a free port, a
tiny local receiver standing in for our push endpoints, and signing helpers
written here from docs/PLATFORMS.md, independently of the simulator's own."""

import hashlib
import json
import threading
import time
import uuid

import pytest
import requests

from simulator.testing import running_simulator
from tests.http_receiver import running_receiver

SIM_THREADS = ("simulator", "sim-push", "sim-generator")

MT_APP_ID, MT_SECRET, MT_SHOP = "mt-app-1", "mt-secret-1", "mt-store-1"
EL_APP_KEY, EL_SECRET, EL_TOKEN, EL_SHOP = "el-app-1", "el-secret-1", "el-token-1", "el-store-1"


# --- Signatures, per PLATFORMS.md ------------------------------------------------------


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def mt_sig(url: str, params: dict, secret: str) -> str:
    """Meituan: lowercase md5(url + "?" + sorted non-empty k=v joined by & + secret), sig excluded."""
    pairs = sorted((k, str(v)) for k, v in params.items() if k != "sig" and str(v) != "")
    return md5(url + "?" + "&".join(f"{k}={v}" for k, v in pairs) + secret)


def el_signature(action: str, token: str, params: dict, app_key: str, timestamp: int, secret: str) -> str:
    """Ele.me: UPPERCASE md5(action + token + sorted key=compact JSON value ... + secret)."""
    values = {**params, "app_key": app_key, "timestamp": timestamp}
    text = action + token
    for key in sorted(values):
        text += key + "=" + json.dumps(values[key], separators=(",", ":"), ensure_ascii=False)
    return md5(text + secret).upper()


def el_push_signature(body: dict, secret: str) -> str:
    fields = ["appId", "message", "requestId", "shopId", "timestamp", "type", "userId"]
    return md5("".join(f"{name}={body[name]}" for name in fields) + secret).upper()


# --- Clients ------------------------------------------------------------------------------


def mt_call(sim, path: str, params: dict | None = None, *, method: str = "GET", secret: str = MT_SECRET,
            app_id: str = MT_APP_ID, timestamp: int | None = None, sig: str | None = None,
            timeout: float = 5) -> requests.Response:
    url = f"{sim.base_url}/api/v1/{path}"
    params = {k: str(v) for k, v in (params or {}).items()}
    system = {"app_id": app_id, "timestamp": str(int(time.time()) if timestamp is None else timestamp)}
    system["sig"] = sig or mt_sig(url, {**params, **system}, secret)
    if method == "GET":
        return requests.get(url, params={**params, **system}, timeout=timeout)
    return requests.post(url, params=system, data=params, timeout=timeout)


def el_call(sim, action: str, params: dict, *, secret: str = EL_SECRET, token: str = EL_TOKEN,
            app_key: str = EL_APP_KEY, timestamp: int | None = None, timeout: float = 5) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    envelope = {"nop": "1.0.0", "id": str(uuid.uuid4()), "action": action, "token": token,
                "metas": {"app_key": app_key, "timestamp": timestamp}, "params": params,
                "signature": el_signature(action, token, params, app_key, timestamp, secret)}
    response = requests.post(f"{sim.base_url}/api/v1/", json=envelope, timeout=timeout)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == envelope["id"]
    return answer


def fen(value: float) -> int:
    return round(value * 100)


# --- Push receiver -----------------------------------------------------------------------------


@pytest.fixture
def receiver():
    with running_receiver(ok_body=b'{"data":"ok","message":"ok"}', fail_body=b'{"data":"ng"}') as push_receiver:
        yield push_receiver


@pytest.fixture
def sim():
    with running_simulator(notify_backoff=(0.05, 0.1, 0.2), notify_max_attempts=20, notify_timeout=2.0,
                           generator_tick=0.02) as server:
        yield server
    assert [t.name for t in threading.enumerate() if t.name in SIM_THREADS] == []


# --- Control API ----------------------------------------------------------------------------------


def control(sim, method: str, path: str, body: dict | None = None, *, status: int | None = None) -> dict:
    response = requests.request(method, f"{sim.base_url}/_sim/{path}", json=body, timeout=5)
    if status is not None:
        assert response.status_code == status, response.text
    return response.json()


def mt_shop(sim, receiver=None, **changes) -> dict:
    body = {"app_poi_code": MT_SHOP, "app_id": MT_APP_ID, "secret": MT_SECRET, "rate_per_minute": 0}
    if receiver is not None:
        body["push_url"] = f"{receiver.base_url}/hooks/meituan"
    body.update(changes)
    return control(sim, "POST", "meituan/shops", body, status=201)["shop"]


def el_shop(sim, receiver=None, **changes) -> dict:
    body = {"shop_id": EL_SHOP, "app_key": EL_APP_KEY, "secret": EL_SECRET, "token": EL_TOKEN, "rate_per_minute": 0}
    if receiver is not None:
        body["push_url"] = f"{receiver.base_url}/hooks/eleme"
    body.update(changes)
    return control(sim, "POST", "eleme/shops", body, status=201)["shop"]


def mt_orders(sim, **body) -> list[dict]:
    return control(sim, "POST", "meituan/orders", {"shop": MT_SHOP, **body}, status=201)["orders"]


def el_orders(sim, **body) -> list[dict]:
    return control(sim, "POST", "eleme/orders", {"shop": EL_SHOP, **body}, status=201)["orders"]
