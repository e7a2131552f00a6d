"""The client's IP address, the one rule every rate limit and lockout uses.

``settings.TRUSTED_PROXY_COUNT`` says how many reverse proxies (load balancers)
stand in front of the web process. Each one appends the address it received the
request from to ``X-Forwarded-For``, so with N trusted proxies the client is the
N-th entry from the right; anything left of it was written by the client and is
not believed. With no trusted proxy (the default) the header is ignored and the
client is the connecting address (``REMOTE_ADDR``): a forged header never gives a
fresh rate-limit bucket.

DRF's throttles follow the same rule (``REST_FRAMEWORK["NUM_PROXIES"]`` is set from
the same setting); django-axes calls ``client_ip`` (``AXES_CLIENT_IP_CALLABLE``).
"""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address of whoever sent ``request``, as far as the trusted proxies tell."""
    remote_addr = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies == 0 or not forwarded:
        return remote_addr
    entries = forwarded.split(",")
    # Fewer entries than proxies: the request skipped the outer ones, and the first
    # proxy it met wrote the leftmost entry itself.
    return entries[-min(proxies, len(entries))].strip()
