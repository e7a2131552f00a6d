"""``python -m simulator [--host 127.0.0.1] [--port 8100] [--config FILE] [--wxpay-api-key K] [--wxpay-mchid M] [-v]``

Every option also reads an environment variable: SIM_HOST, SIM_PORT, SIM_CONFIG,
SIM_WXPAY_API_KEY (default "sim-wxpay-key"), SIM_WXPAY_MCHID (default
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


def config_values(data: Any, *, source: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SystemExit(f"simulator: {source} must hold a JSON object")
    known = {f.name for f in dataclasses.fields(SimConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SystemExit(f"simulator: unknown key(s) in {source}: {', '.join(unknown)}")
    values = dict(data)
    for key in ("meituan_shops", "eleme_shops", "notify_backoff"):
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
    parser.add_argument("--wxpay-api-key", default=None, help="merchant API key (env SIM_WXPAY_API_KEY)")
    parser.add_argument("--wxpay-mchid", default=None, help="merchant id (env SIM_WXPAY_MCHID)")
    parser.add_argument("--refund-delay", type=float, default=None, help="seconds until REFUND.SUCCESS")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    file_values = load_config_file(args.config) if args.config else config_values(DEFAULT_CONFIG, source="defaults")
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
