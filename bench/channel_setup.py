"""Plumbing shared by the channel benches (ingest, relay): the project's simulator
as a subprocess on a free port, a Meituan-bound bench store whose menu maps to
our SKUs, and helpers to create orders at the simulator.

The simulator runs in its own process (``python -m simulator``) so its request
handling does not share the bench process's GIL; it is stopped at the end.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

from bench import common

MEITUAN_SHOP = "bench-mt-1"
MEITUAN_APP_ID = "7001"
MEITUAN_SECRET = "bench-mt-secret"
# Our SKU code -> (Meituan app_food_code, sku_id, price yuan, box_price yuan)
MENU = {
    "BX001": ("bx_gbjd", "9001001", 38, 2),
    "BX002": ("bx_yzcf", "9001002", 28, 1),
    "BX003": ("bx_slt", "9001003", 18, 1),
}
SIM_BATCH = 200  # the simulator's control API creates at most 200 orders per call


class SimulatorProcess:
    """``with SimulatorProcess() as sim: sim.base_url`` -- python -m simulator on a free port."""

    def __init__(self) -> None:
        self.port = common.free_port()
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="bench-simulator-", suffix=".log", delete=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        import requests

        env = dict(os.environ, PYTHONPATH=str(common.PROJECT_DIR))
        self.process = subprocess.Popen([sys.executable, "-m", "simulator", "--host", "127.0.0.1",
                                         "--port", str(self.port)], cwd=common.PROJECT_DIR, env=env,
                                        stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"simulator exited ({self.process.returncode}); log: {self.log.name}")
            try:
                if requests.get(f"{self.base_url}/_sim/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"simulator did not answer; log: {self.log.name}")

    def __exit__(self, *exc):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()
        return False

    # -- control API
    def post(self, path: str, body: dict) -> dict:
        import requests

        answer = requests.post(f"{self.base_url}{path}", json=body, timeout=60)
        if answer.status_code >= 300:
            raise RuntimeError(f"simulator {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def get(self, path: str, **params) -> dict:
        import requests

        answer = requests.get(f"{self.base_url}{path}", params=params, timeout=120)
        answer.raise_for_status()
        return answer.json()

    def calls(self, path_prefix: str) -> list[dict]:
        return self.get("/_sim/calls", path_prefix=path_prefix, direction="in")["calls"]


def meituan_store_bound(*, sim: SimulatorProcess, stock: int = 1_000_000):
    """A bench store with the MENU SKUs (tracked, ``stock`` units each), bound to the
    simulator's Meituan shop, which sells exactly those items. Returns (shop, binding)."""
    from catalog.models import PlatformSkuMapping
    from channels.services import binding_create

    shop = common.shop_create(code="bench")
    for code, (food_code, sku_id, price, box) in MENU.items():
        sku = common.sku_create(shop=shop, code=code, stock=stock, price=f"{price}.00", packaging_fee=f"{box}.00")
        PlatformSkuMapping.objects.create(brand=shop.brand, platform="meituan", platform_food_code=food_code,
                                          platform_sku_id=sku_id, sku=sku)
    binding = binding_create(store=shop.store, platform="meituan", shop_code=MEITUAN_SHOP, app_id=MEITUAN_APP_ID,
                             secret=MEITUAN_SECRET, base_url=sim.base_url, pull_interval_seconds=3600)
    menu = [{"app_food_code": food_code, "food_name": f"菜 {code}", "sku_id": sku_id, "price": price,
             "box_price": box} for code, (food_code, sku_id, price, box) in MENU.items()]
    sim.post("/_sim/meituan/shops", {"app_poi_code": MEITUAN_SHOP, "app_id": MEITUAN_APP_ID,
                                     "secret": MEITUAN_SECRET, "menu": menu})
    return shop, binding


def meituan_orders_create(*, sim: SimulatorProcess, count: int) -> list[int]:
    """``count`` new orders (status 2) at the simulator's bench shop; their order ids."""
    ids: list[int] = []
    while len(ids) < count:
        batch = min(SIM_BATCH, count - len(ids))
        made = sim.post("/_sim/meituan/orders", {"shop": MEITUAN_SHOP, "count": batch, "push": False})
        ids += [int(o["order_id"]) for o in made["orders"]]
    return ids
