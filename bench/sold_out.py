"""sold_out: stock reaches zero -> the platform receives the sold-out call, end to end
through the stack as production runs it, against a person's sold-out (沽清) from the POS
through the same stack in the same run.

The stack: gunicorn (``config.wsgi``) with ``REDIS_URL``, real ``celery -A config worker``
processes on Redis database 12 (``--redis-url``, flushed), and the simulator (``python -m
simulator``) as a subprocess. A Meituan-bound store selling 2 x ``--skus`` SKUs, each
mapped to an item of the simulator's shop menu, each tracked with 1 unit on hand (and one more SKU
sold out by hand before the phases, warming the web and worker processes); one cashier
terminal.

1. Baseline (manual): the POS marks the first ``--skus`` SKUs sold out by hand (``POST
   stock/availability {"available": false}``), one at a time, ``--gap`` apart; latency =
   the simulator's call-log time of the ``food/sku/sellStatus`` call naming the SKU - before
   the POS call.
2. Stock: the POS reports a walk-in sale of the last unit of each of the other ``--skus``
   SKUs (``POST stock/sales``), one at a time, ``--gap`` apart; nobody marks anything: the
   stock reaching zero does; latency as above (aim: p99 under 2 s, like the meal-ready
   call).

Ratio: p50 of the stock phase / p50 of the manual phase (about 1: selling out at zero adds
nothing to the path a person's sold-out takes). Checks: every SKU sold out at the
simulator exactly once (one sellStatus 1 call each, no call for a SKU still in stock), the
ledger conserved, every POS call answered as the contract says, no dead letter.
"""

import argparse
import json
import os
import time

from bench import common
from bench.channel_setup import MEITUAN_APP_ID, MEITUAN_SECRET, MEITUAN_SHOP, SimulatorProcess
from bench.pos_e2e import stack_env, summary
from bench.relay import CeleryWorkers, celery_use_broker, wait_until

NAME = "sold_out"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
AIM_S = 2.0
SELL_STATUS = "/api/v1/food/sku/sellStatus"
WARM = "SOWARM"  # sold out once before the phases, to warm the workers' connections


def parse(argv):
    parser = argparse.ArgumentParser(prog=f"python -m bench {NAME}", description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=50, help="SKUs per phase")
    parser.add_argument("--gap", type=float, default=0.2, help="seconds between two POS calls")
    parser.add_argument("--concurrency", type=int, default=2, help="celery worker processes")
    parser.add_argument("--http-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--http-threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_SOLD_OUT_REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for a phase to settle")
    return parser.parse_args(argv)


def _store(sim, count: int):
    """The bench store with ``2 * count`` SKUs (1 unit each), mapped on Meituan, bound to the simulator."""
    from catalog.models import PlatformSkuMapping
    from channels.services import binding_create

    shop = common.shop_create(code="soldout")
    codes = {}
    for code in [f"SO{index:03d}" for index in range(2 * count)] + [WARM]:
        sku = common.sku_create(shop=shop, code=code, stock=1)
        PlatformSkuMapping.objects.create(brand=shop.brand, platform="meituan", platform_food_code=f"f_{code}",
                                          platform_sku_id=f"s_{code}", sku=sku)
        codes[code] = sku
    binding_create(store=shop.store, platform="meituan", shop_code=MEITUAN_SHOP, app_id=MEITUAN_APP_ID,
                   secret=MEITUAN_SECRET, base_url=sim.base_url, pull_interval_seconds=3600)
    sim.post("/_sim/meituan/shops", {
        "app_poi_code": MEITUAN_SHOP, "app_id": MEITUAN_APP_ID, "secret": MEITUAN_SECRET,
        "menu": [{"app_food_code": f"f_{code}", "food_name": f"菜 {code}", "sku_id": f"s_{code}", "price": 12}
                 for code in codes]})
    return shop, codes


def _sold_out_at(sim) -> dict[str, list[float]]:
    """Our SKU code -> times the simulator received a sell_status 1 call naming it."""
    at: dict[str, list[float]] = {}
    for call in sim.calls(SELL_STATUS):
        body = call.get("body") or {}
        if call["method"] != "POST" or not isinstance(body, dict) or str(body.get("sell_status")) != "1":
            continue
        for food in json.loads(body.get("food_data") or "[]"):
            at.setdefault(food["app_food_code"].removeprefix("f_"), []).append(call["at"])
    return at


def _phase(*, sim, session, server, codes: list[str], gap: float, timeout: float, send) -> dict:
    sent: dict[str, float] = {}
    answers = []
    started = time.perf_counter()
    for index, code in enumerate(codes):
        pause = started + index * gap - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        sent[code] = time.time()
        answers.append(send(session, server, code))
    done = wait_until(lambda: all(code in _sold_out_at(sim) for code in sent), timeout=timeout, tick=0.1)
    at = _sold_out_at(sim)
    latencies = [min(at[code]) - t for code, t in sent.items() if at.get(code)]
    return {"sent": len(sent), "done": done, "received": len(latencies), "answers": answers, **summary(latencies)}


def _manual(session, server, code: str) -> int:
    return session.post(server.url("/api/pos/v1/stock/availability"), json={"sku": code, "available": False},
                        timeout=10).status_code


def _walk_in(session, server, code: str) -> int:
    return session.post(server.url("/api/pos/v1/stock/sales"),
                        json={"receipt_no": f"R-{code}", "lines": [{"sku": code, "qty": 1}]}, timeout=10).status_code


def main(argv=None) -> dict:
    args = parse(argv or [])
    common.setup_django()
    common.database_prepare()
    common.database_wipe()
    import redis
    import requests

    from core.models import OutboxMessage, OutboxStatus
    from inventory.models import Stock
    from inventory.services import stock_ledger_mismatches
    from pos.services import pos_terminal_create

    redis.Redis.from_url(args.redis_url).flushdb()
    os.environ["REDIS_URL"] = args.redis_url
    celery_use_broker(args.redis_url)
    n = args.skus
    print(f"{NAME}: {n} SKUs per phase, POS calls {args.gap}s apart; celery {args.concurrency} processes on "
          f"{args.redis_url}; gunicorn {args.http_workers} x {args.http_threads}", flush=True)

    with SimulatorProcess() as sim, \
            common.GunicornServer(workers=args.http_workers, threads=args.http_threads,
                                  env=stack_env(args.redis_url)) as server:
        shop, skus = _store(sim, n)
        token = pos_terminal_create(store=shop.store, name="bench POS").token
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        codes = sorted(code for code in skus if code != WARM)
        manual_codes, stock_codes = codes[:n], codes[n:]
        with CeleryWorkers(redis_url=args.redis_url, concurrency=args.concurrency) as workers:
            for _ in range(2 * args.http_workers):  # warm the web processes (imports, connections)
                session.get(server.url("/api/pos/v1/menu"), timeout=30).raise_for_status()
            _phase(sim=sim, session=session, server=server, codes=[WARM], gap=0, timeout=args.timeout,
                   send=_manual)  # and the relay's
            manual = _phase(sim=sim, session=session, server=server, codes=manual_codes, gap=args.gap,
                            timeout=args.timeout, send=_manual)
            print(f"  manual: {manual['received']}/{n} sold out; p50 {manual['p50_ms']:.0f} ms, p99 "
                  f"{manual['p99_ms']:.0f} ms, max {manual['max_ms']:.0f} ms", flush=True)
            stock = _phase(sim=sim, session=session, server=server, codes=stock_codes, gap=args.gap,
                           timeout=args.timeout, send=_walk_in)
            print(f"  stock:  {stock['received']}/{n} sold out; p50 {stock['p50_ms']:.0f} ms, p99 "
                  f"{stock['p99_ms']:.0f} ms, max {stock['max_ms']:.0f} ms", flush=True)
            time.sleep(1.0)  # a late duplicate would show in the counts below
        worker_exit = workers.process.returncode
        at = _sold_out_at(sim)

    ratio = common.ratio(stock["p50_ms"], manual["p50_ms"])
    print(f"{NAME} results ({n} SKUs per phase, wall clock):")
    print(f"  stock reaches zero -> Meituan sellStatus 1: p50 {stock['p50_ms']:.0f} ms, p99 {stock['p99_ms']:.0f} ms "
          f"| baseline, a person's sold-out from the POS: p50 {manual['p50_ms']:.0f} ms, p99 "
          f"{manual['p99_ms']:.0f} ms | ratio of p50s {ratio:.2f} | aim p99 < {AIM_S * 1000:.0f} ms: "
          f"{'met' if stock['p99_ms'] < AIM_S * 1000 else 'NOT met'}", flush=True)
    ok = True
    ok &= common.check("every SKU sold out at the simulator exactly once", manual["done"] and stock["done"]
                       and all(len(at.get(code, [])) == 1 for code in [*codes, WARM]),
                       f"{sum(len(v) for v in at.values())} calls for {len(codes) + 1} SKUs (one warm-up)")
    ok &= common.check("POS calls answered as the contract says (200 availability, 201 sale)",
                       set(manual["answers"]) == {200} and set(stock["answers"]) == {201},
                       f"{sorted(set(manual['answers']))} / {sorted(set(stock['answers']))}")
    ok &= common.check("the stock phase's SKUs at zero, the manual phase's untouched",
                       Stock.objects.filter(sku__code__in=stock_codes, on_hand=0).count() == n
                       and Stock.objects.filter(sku__code__in=manual_codes, on_hand=1).count() == n)
    ok &= common.check("ledger conserved", not stock_ledger_mismatches())
    dead = OutboxMessage.objects.filter(status=OutboxStatus.DEAD).count()
    ok &= common.check("no dead letter, every message delivered", dead == 0 and not OutboxMessage.objects.filter(
        status=OutboxStatus.PENDING).exists(), f"{dead} dead")
    ok &= common.check("workers stopped cleanly", worker_exit == 0, f"worker {worker_exit}")
    for figures in (manual, stock):
        figures.pop("answers", None)
    result = {"bench": NAME, "skus": n, "gap": args.gap, "manual": manual, "stock": stock, "ratio_p50": ratio,
              "aim_ms": AIM_S * 1000, "aim_met": stock["p99_ms"] < AIM_S * 1000, "ok": bool(ok)}
    common.emit(result)
    return result
