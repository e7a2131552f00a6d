"""A local stand-in for the counterparts the order center talks to over HTTP.

One process (``python -m simulator --port 8100 [--config shops.json]``) serves the
payment provider (simulator.wxpay) and both delivery platforms (simulator.meituan,
simulator.eleme; orders from simulator.orders_gen) with the shapes of docs
PLATFORMS.md, plus a ``/_sim/`` control API for tests and the demo. Standard
library only: no Django.
"""
