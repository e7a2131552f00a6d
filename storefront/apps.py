from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StorefrontConfig(AppConfig):
    """The customer API of the brand's own channels (mini-program, App)."""

    name = "storefront"
    verbose_name = _("Storefront")
