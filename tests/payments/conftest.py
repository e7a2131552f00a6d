"""Payments tests run over real HTTP: the project's simulator in-process on a free
port, and a tiny local receiver standing in for our notify endpoint."""

import hashlib
import hmac
import threading

import pytest
import requests

from simulator.testing import running_simulator
from tests.factories import BrandFactory
from tests.http_receiver import running_receiver

API_KEY = "test-wxpay-key"
MCHID = "1900000042"
APPID = "wxtestapp000001"
NOTIFY_PATH = "/api/v1/payments/notify/wxpay"


def sign(*, body: bytes, timestamp: str, nonce: str = "n0nce", key: str = API_KEY) -> dict[str, str]:
    """The notify headers, computed here independently of both the simulator and the adapter."""
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": hmac.new(key.encode(), message, hashlib.sha256).hexdigest(),
    }


@pytest.fixture
def receiver():
    """Stands in for our notify endpoint; ``receiver.url`` is its notify URL."""
    with running_receiver(ok_body=b'{"code": "SUCCESS"}', fail_body=b'{"code": "FAIL"}') as notify_receiver:
        notify_receiver.url = f"{notify_receiver.base_url}{NOTIFY_PATH}"
        yield notify_receiver


@pytest.fixture
def sim():
    with running_simulator(wxpay_api_key=API_KEY, wxpay_mchid=MCHID, notify_backoff=(0.05, 0.1, 0.2),
                           notify_max_attempts=20, notify_timeout=2.0, refund_delay=0.05) as server:
        yield server
    leftover = [t.name for t in threading.enumerate() if t.name in ("simulator", "sim-push")]
    assert leftover == []


@pytest.fixture
def wxpay(settings, sim, receiver):
    """Point the payments app at the simulator; notifies go to the receiver."""
    settings.PAYMENT_PROVIDERS = {
        "wxpay": {"base_url": sim.base_url, "appid": APPID, "mchid": MCHID, "api_key": API_KEY,
                  "notify_url": receiver.url, "timeout": 2.0, "retries": 2},
    }
    return settings.PAYMENT_PROVIDERS["wxpay"]


@pytest.fixture
def brand(db):
    return BrandFactory()


class SimControl:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def pay(self, out_trade_no: str, **options) -> dict:
        response = requests.post(f"{self.base_url}/_sim/wxpay/pay", json={"out_trade_no": out_trade_no, **options},
                                 timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def fault(self, **spec) -> None:
        response = requests.post(f"{self.base_url}/_sim/faults", json=spec, timeout=5)
        assert response.status_code == 201, response.text

    def calls(self, path_prefix: str = "", direction: str = "in") -> list[dict]:
        response = requests.get(f"{self.base_url}/_sim/calls",
                                params={"path_prefix": path_prefix, "direction": direction}, timeout=5)
        return response.json()["calls"]


@pytest.fixture
def sim_control(sim):
    return SimControl(sim.base_url)
