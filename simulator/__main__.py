"""``python -m simulator [--host 127.0.0.1] [--port 8100] [--wxpay-api-key K] [--wxpay-mchid M] [-v]``

Every option also reads an environment variable: SIM_HOST, SIM_PORT,
SIM_WXPAY_API_KEY (default "sim-wxpay-key"), SIM_WXPAY_MCHID (default
"1900000001"), SIM_NOTIFY_BACKOFF (comma-separated seconds), SIM_NOTIFY_MAX_ATTEMPTS,
SIM_NOTIFY_TIMEOUT, SIM_REFUND_DELAY.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from simulator.server import SimConfig, build_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator", description="Local payment/platform simulator")
    parser.add_argument("--host", default=os.environ.get("SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SIM_PORT", "8100")))
    parser.add_argument("--wxpay-api-key", default=None, help="merchant API key (env SIM_WXPAY_API_KEY)")
    parser.add_argument("--wxpay-mchid", default=None, help="merchant id (env SIM_WXPAY_MCHID)")
    parser.add_argument("--refund-delay", type=float, default=None, help="seconds until REFUND.SUCCESS")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = SimConfig.from_env(
        wxpay_api_key=args.wxpay_api_key, wxpay_mchid=args.wxpay_mchid,
        refund_delay=args.refund_delay, verbose=args.verbose or None,
    )
    server = build_server(host=args.host, port=args.port, config=config)

    def stop(signum, frame):  # serve_forever must be stopped from another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"simulator listening on {server.base_url} (wxpay mchid {config.wxpay_mchid})", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
