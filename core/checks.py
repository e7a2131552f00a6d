"""Deployment checks (``manage.py check --deploy``), beside Django's own.

- core.W001: credentials still at the simulator's defaults mean a production process
  would accept forged payment notifies or OMS callbacks signed with a key anyone can
  read in .env.example.
- core.W002: behind a TLS-terminating proxy (SECURE_PROXY_SSL) with no trusted proxy
  (TRUSTED_PROXY_COUNT 0), every client has the proxy's address: one rate-limit bucket
  and one admin-login lockout for the whole internet.
- core.W003: CUSTOMER_OTP_DEV_ECHO puts the login code in the API answer: anyone could
  log in as any customer.
- core.W004: OUTBOUND_URL_ALLOWED_HOSTS names a loopback, private or link-local address
  (its default names the local simulator): a brand admin could point a platform binding
  at a service inside our network and have the order center call it.
"""

import ipaddress

from django.conf import settings
from django.core.checks import Tags, Warning, register

SIMULATOR_DEFAULTS = {
    "WXPAY_API_KEY": lambda: settings.PAYMENT_PROVIDERS.get("wxpay", {}).get("api_key") == "sim-wxpay-key",
    "OMS_APP_SECRET": lambda: settings.OMS.get("app_secret") == "sim-oms-secret",
}


@register(Tags.security, deploy=True)
def simulator_credentials_check(app_configs=None, **kwargs):
    return [
        Warning(f"{name} is still the simulator's default.",
                hint=f"Set {name} to the real credential before going live.", id="core.W001")
        for name, is_default in SIMULATOR_DEFAULTS.items() if is_default()
    ]


@register(Tags.security, deploy=True)
def client_address_check(app_configs=None, **kwargs):
    if settings.SECURE_PROXY_SSL_HEADER and settings.TRUSTED_PROXY_COUNT == 0:
        return [Warning(
            "SECURE_PROXY_SSL is on but TRUSTED_PROXY_COUNT is 0: every client has the proxy's address.",
            hint="Set TRUSTED_PROXY_COUNT to the number of proxies that append to X-Forwarded-For.",
            id="core.W002")]
    return []


@register(Tags.security, deploy=True)
def login_code_echo_check(app_configs=None, **kwargs):
    if settings.CUSTOMER_OTP_DEV_ECHO:
        return [Warning(
            "CUSTOMER_OTP_DEV_ECHO is on: the customer login code is returned by the API.",
            hint="Set CUSTOMER_OTP_DEV_ECHO=false (and DEBUG=false) in production.", id="core.W003")]
    return []


def _internal_host(entry: str) -> bool:
    if entry.startswith("[") and "]" in entry:  # [IPv6]:port
        host = entry[1:entry.index("]")]
    else:
        host = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
    host = host.lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: what it resolves to is the DNS's business
    return address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified


@register(Tags.security, deploy=True)
def outbound_hosts_check(app_configs=None, **kwargs):
    internal = sorted(entry for entry in settings.OUTBOUND_URL_ALLOWED_HOSTS if _internal_host(entry))
    if internal:
        return [Warning(
            f"OUTBOUND_URL_ALLOWED_HOSTS allows internal addresses: {', '.join(internal)}.",
            hint="List only the platforms' API hosts in production (the default allows the local simulator).",
            id="core.W004")]
    return []
