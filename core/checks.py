"""Deployment checks (``manage.py check --deploy``): credentials still at the
simulator's defaults mean a production process would accept forged payment
notifies or OMS callbacks signed with a key anyone can read in .env.example."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

SIMULATOR_DEFAULTS = {
    "WXPAY_API_KEY": lambda: settings.PAYMENT_PROVIDERS.get("wxpay", {}).get("api_key") == "sim-wxpay-key",
    "OMS_APP_SECRET": lambda: getattr(settings, "OMS", {}).get("app_secret") == "sim-oms-secret",
}


@register(Tags.security, deploy=True)
def simulator_credentials_check(app_configs=None, **kwargs):
    return [
        Warning(f"{name} is still the simulator's default.",
                hint=f"Set {name} to the real credential before going live.", id="core.W001")
        for name, is_default in SIMULATOR_DEFAULTS.items() if is_default()
    ]
