"""The answer to a login refused by django-axes (settings.AXES_LOCKOUT_CALLABLE): the
admin's own page with a message that says what happened and how long it lasts."""

from django.conf import settings
from django.contrib import admin
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext


def admin_lockout_response(request, original_response=None, credentials=None):
    minutes = settings.AXES_COOLOFF_MINUTES
    message = ngettext(
        "Too many failed logins. Logging in with this user name or from this address is blocked "
        "for %(minutes)d minute after the last failed attempt.",
        "Too many failed logins. Logging in with this user name or from this address is blocked "
        "for %(minutes)d minutes after the last failed attempt.",
        minutes,
    ) % {"minutes": minutes}
    context = {**admin.site.each_context(request), "title": _("Login blocked"), "lockout_message": message}
    return render(request, "admin/login_locked.html", context, status=429)
