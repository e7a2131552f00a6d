"""A local stand-in for the counterparts the order center talks to over HTTP.

One process (``python -m simulator --port 8100``) serves the payment provider
(and, later, the delivery platforms) with the shapes of docs PLATFORMS.md, plus a
``/_sim/`` control API for tests and the demo. Standard library only: no Django.
"""
