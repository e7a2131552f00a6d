"""Setting the simulator up for channel tests over real HTTP."""

import threading
import time

import requests
from django.db import connection

from tests.factories import PlatformSkuMappingFactory

MT_LINE = {"app_food_code": "mt_gbjd", "sku_id": "1001001", "quantity": 2}


def meituan_shop(sim, shop, *, push_url=""):
    """Register the shop's Meituan binding at the simulator and point the binding there."""
    body = {"app_poi_code": shop["meituan"].shop_code, "app_id": shop["meituan"].app_id,
            "secret": shop["meituan"].secret}
    if push_url:
        body["push_url"] = push_url
    assert requests.post(f"{sim.base_url}/_sim/meituan/shops", json=body, timeout=5).status_code == 201
    shop["meituan"].base_url = sim.base_url
    shop["meituan"].save()
    PlatformSkuMappingFactory(brand=shop["store"].brand, platform="meituan", platform_food_code="mt_gbjd",
                              platform_sku_id="1001001", sku=shop["chicken"])


def eleme_shop(sim, shop, *, push_url=""):
    body = {"shop_id": shop["eleme"].shop_code, "app_key": shop["eleme"].app_id, "secret": shop["eleme"].secret,
            "token": shop["eleme"].token}
    if push_url:
        body["push_url"] = push_url
    assert requests.post(f"{sim.base_url}/_sim/eleme/shops", json=body, timeout=5).status_code == 201
    shop["eleme"].base_url = sim.base_url
    shop["eleme"].save()


def sim_orders(sim, platform, body):
    answer = requests.post(f"{sim.base_url}/_sim/{platform}/orders", json=body, timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()["orders"]


def sim_calls(sim, prefix, direction=""):
    params = {"path_prefix": prefix, **({"direction": direction} if direction else {})}
    return requests.get(f"{sim.base_url}/_sim/calls", params=params, timeout=5).json()["calls"]


def wait_for(predicate, seconds=10.0):
    """Poll ``predicate`` until it is true (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def threads_run(count, target):
    """Run ``target(index)`` in ``count`` threads started together (a barrier), each
    closing its own database connection; returns (results, exceptions)."""
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run(index):
        try:
            barrier.wait(timeout=10)
            results.append(target(index))
        except Exception as exc:  # the caller asserts on them
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def relay_settled(seconds=10.0) -> bool:
    """Relay until no outbox message is pending. With a live server, the relay a push's
    commit started (a sold-out the pushed order caused) may hold messages written since
    (leased by it): wait for it rather than assume this relay delivers them."""
    from core.models import OutboxMessage, OutboxStatus
    from core.outbox import outbox_relay

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        outbox_relay(limit=50)
        if not OutboxMessage.objects.filter(status=OutboxStatus.PENDING).exists():
            return True
        time.sleep(0.05)
    return False
