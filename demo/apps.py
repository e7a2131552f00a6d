from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The demo brand, its seeded history and the stand-in POS (top layer, imported by no app)."""

    name = "demo"
    verbose_name = _("Demo")
