from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    """The merchants' back-office: its API and its pages beside the admin."""

    name = "backoffice"
    verbose_name = _("Back-office")
