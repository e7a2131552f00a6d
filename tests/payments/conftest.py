"""Payments tests run over real HTTP: the project's simulator in-process on a free
port, and a tiny local receiver standing in for our notify endpoint."""

import hashlib
import hmac
import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from simulator.testing import running_simulator
from tests.factories import BrandFactory

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


@dataclass(frozen=True)
class CapturedNotify:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class NotifyReceiver:
    """Captures every POST; answers ``responder(notify)`` (default 200 {"code": "SUCCESS"})."""

    def __init__(self) -> None:
        self.captured: queue.Queue[CapturedNotify] = queue.Queue()
        self.responder: Callable[[CapturedNotify], int] = lambda notify: 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                notify = CapturedNotify(path=self.path, headers=dict(self.headers.items()), body=body)
                receiver.captured.put(notify)
                status = receiver.responder(notify)
                answer = json.dumps({"code": "SUCCESS"} if status == 200 else {"code": "FAIL"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{NOTIFY_PATH}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    def next(self, timeout: float = 5.0) -> CapturedNotify:
        return self.captured.get(timeout=timeout)

    def assert_no_more(self, wait: float = 0.3) -> None:
        with pytest.raises(queue.Empty):
            self.captured.get(timeout=wait)


@pytest.fixture
def receiver():
    notify_receiver = NotifyReceiver()
    notify_receiver.thread.start()
    yield notify_receiver
    notify_receiver.server.shutdown()
    notify_receiver.server.server_close()
    notify_receiver.thread.join(timeout=5)


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
