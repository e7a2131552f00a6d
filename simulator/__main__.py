"""``python -m simulator [--host 127.0.0.1] [--port 8100] [--config FILE] [--orders FILE] [--push-base-url URL]
[--wxpay-api-key K] [--wxpay-mchid M] [-v]``

Every option also reads an environment variable: SIM_HOST, SIM_PORT, SIM_CONFIG,
SIM_ORDERS, SIM_PUSH_BASE_URL, SIM_WXPAY_API_KEY (default "sim-wxpay-key"), SIM_WXPAY_MCHID (default
"1900000001"), SIM_OMS_APP_KEY (default "sim-oms-app"), SIM_OMS_APP_SECRET (default
"sim-oms-secret"), SIM_NOTIFY_BACKOFF (comma-separated seconds), SIM_NOTIFY_MAX_ATTEMPTS,
SIM_NOTIFY_TIMEOUT, SIM_REFUND_DELAY.

``--config FILE`` is JSON with the shops to register at start (and again after
``POST /_sim/reset``), each the body of ``POST /_sim/meituan/shops`` or
``POST /_sim/eleme/shops``, plus optionally any other SimConfig field
(``notify_backoff``, ``wxpay_mchid``, ...); command-line options and SIM_*
variables win over the file::

    {"meituan_shops": [{"app_poi_code": "mt-store-1", "app_id": "sim-mt-app", "secret": "sim-mt-secret",
                        "push_url": "http://127.0.0.1:8000/api/v1/channels/meituan/push",
                        "rate_per_minute": 2}],
     "eleme_shops": [{"shop_id": "el-store-1", "app_key": "sim-el-app", "secret": "sim-el-secret",
                      "token": "sim-el-token", "rate_per_minute": 2}]}

Without ``--config`` the DEFAULT_CONFIG below is used: three shops per platform,
default menus, no push URL, no generated orders (rate 0).

``--push-base-url URL`` (e.g. ``http://127.0.0.1:8030``) replaces the scheme, host and
port of every configured shop's ``push_url`` and keeps its path: the demo config names
the order center's default address, ``manage.py run_stack`` passes the one it serves on.

``--orders FILE`` is JSON with the orders the platforms already have when the simulator
starts, ``{"meituan_orders": [...], "eleme_orders": [...]}`` (see simulator.history for
their fields). ``manage.py seed_demo`` writes it (settings.SIMULATOR_ORDERS_FILE) with
the demo stores' platform orders as the order center has them, so the platform knows the
seeded orders (and those of an earlier run) in their current state: the order center
can confirm, move and reconcile them as it does live orders. A missing file is no
error (nothing seeded yet); an unusable one stops the simulator with a message.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from simulator.history import OrderHistoryError
from simulator.server import SimConfig, build_server

DEFAULT_CONFIG: dict[str, Any] = {
    "meituan_shops": [
        {"app_poi_code": f"mt-store-{n}", "app_id": "sim-mt-app", "secret": "sim-mt-secret"} for n in (1, 2, 3)
    ],
    "eleme_shops": [
        {"shop_id": f"el-store-{n}", "app_key": "sim-el-app", "secret": "sim-el-secret", "token": "sim-el-token"}
        for n in (1, 2, 3)
    ],
}


def load_config_file(path: str) -> dict[str, Any]:
    """The JSON config as SimConfig keyword arguments; exits with a clear message when unusable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"simulator: cannot read config {path}: {exc}") from exc
    return config_values(data, source=path)


def load_orders_file(path: str) -> dict[str, Any]:
    """The orders the platforms already have, as SimConfig keyword arguments; {} when there is no file yet."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"simulator: cannot read orders {path}: {exc}") from exc
    if not isinstance(data, dict) or set(data) - {"meituan_orders", "eleme_orders"}:
        raise SystemExit(f"simulator: {path} must hold a JSON object with meituan_orders and eleme_orders")
    return config_values(data, source=path)


def with_push_base_url(values: dict[str, Any], base_url: str) -> dict[str, Any]:
    """``values`` with every shop's push_url moved to ``base_url`` (its path kept)."""
    base = urlsplit(base_url)
    if base.scheme not in ("http", "https") or not base.netloc:
        raise SystemExit(f"simulator: --push-base-url must be an http(s) URL, not {base_url!r}")
    moved = dict(values)
    for key in ("meituan_shops", "eleme_shops"):
        shops = []
        for shop in values.get(key, ()):
            if isinstance(shop, dict) and shop.get("push_url"):
                path = urlsplit(str(shop["push_url"])).path
                url = urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + path, "", ""))
                shop = {**shop, "push_url": url}
            shops.append(shop)
        if key in values:
            moved[key] = tuple(shops)
    return moved


def config_values(data: Any, *, source: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SystemExit(f"simulator: {source} must hold a JSON object")
    known = {f.name for f in dataclasses.fields(SimConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SystemExit(f"simulator: unknown key(s) in {source}: {', '.join(unknown)}")
    values = dict(data)
    for key in ("meituan_shops", "eleme_shops", "meituan_orders", "eleme_orders", "notify_backoff"):
        if key in values:
            if not isinstance(values[key], list):
                raise SystemExit(f"simulator: {key} in {source} must be a list")
            values[key] = tuple(values[key])
    return values


def banner(server) -> str:
    base = server.base_url
    config = server.config
    meituan, eleme = server.counterpart("meituan"), server.counterpart("eleme")
    return "\n".join([
        f"simulator listening on {base} (wxpay mchid {config.wxpay_mchid})",
        f"  wxpay    {base}/v3/pay/transactions/jsapi, /v3/refund/domestic/refunds",
        f"  meituan  {base}/api/v1/{{path}}  shops: {', '.join(meituan.shop_codes()) or '-'}",
        f"  eleme    {base}/api/v1/  shops: {', '.join(eleme.shop_ids()) or '-'}",
        f"  oms      {base}/oms/v1/vouchers/issue  (app key {config.oms_app_key})",
        f"  control  {base}/_sim/  (health, reset, calls, faults, wxpay/, meituan/shops|orders, eleme/shops|orders, oms/)",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Local payment/platform simulator")
    parser.add_argument("--host", default=os.environ.get("SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SIM_PORT", "8100")))
    parser.add_argument("--config", default=os.environ.get("SIM_CONFIG") or None,
                        help="JSON file with shops to register at start (env SIM_CONFIG)")
    parser.add_argument("--orders", default=os.environ.get("SIM_ORDERS") or None,
                        help="JSON file with the orders the platforms already have (env SIM_ORDERS)")
    parser.add_argument("--push-base-url", default=os.environ.get("SIM_PUSH_BASE_URL") or None,
                        help="send the configured shops' pushes to this base URL (env SIM_PUSH_BASE_URL)")
    parser.add_argument("--wxpay-api-key", default=None, help="merchant API key (env SIM_WXPAY_API_KEY)")
    parser.add_argument("--wxpay-mchid", default=None, help="merchant id (env SIM_WXPAY_MCHID)")
    parser.add_argument("--refund-delay", type=float, default=None, help="seconds until REFUND.SUCCESS")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    file_values = load_config_file(args.config) if args.config else config_values(DEFAULT_CONFIG, source="defaults")
    if args.push_base_url:
        file_values = with_push_base_url(file_values, args.push_base_url)
    if args.orders:
        file_values.update(load_orders_file(args.orders))
    try:
        base = SimConfig(**file_values)
    except TypeError as exc:
        raise SystemExit(f"simulator: bad config: {exc}") from exc
    env_config = SimConfig.from_env(
        wxpay_api_key=args.wxpay_api_key, wxpay_mchid=args.wxpay_mchid,
        refund_delay=args.refund_delay, verbose=args.verbose or None,
    )
    overrides = {f.name: getattr(env_config, f.name) for f in dataclasses.fields(SimConfig)
                 if getattr(env_config, f.name) != getattr(SimConfig(), f.name)}
    config = dataclasses.replace(base, **overrides)
    try:
        server = build_server(host=args.host, port=args.port, config=config)
    except OrderHistoryError as exc:  # an order of --orders the simulator cannot take
        raise SystemExit(f"simulator: bad order in {args.orders}: {exc}") from exc
    except ValueError as exc:  # a shop in the config the simulator cannot register
        raise SystemExit(f"simulator: bad shop in config: {exc}") from exc

    def stop(signum, frame):  # serve_forever must be stopped from another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(banner(server), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
