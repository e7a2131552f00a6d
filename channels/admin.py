"""Admin for platform bindings and the outbox (dead-letter view with a Retry action).

core.OutboxMessage is registered here: core cannot import accounts.admin_base
(see core/admin.py). Brand admins see their brand's messages (by the message's
``brand_id``) and may retry dead letters; superusers see everything.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_base import BRAND_ADMIN, MANAGERS, ReadOnlyTenantAdmin, TenantAdmin
from channels.models import StoreBinding, UnreadablePlatformOrder
from channels.services.pull import unreadable_orders_resolve
from core.actors import Actor
from core.errors import DomainError
from core.models import OutboxMessage, OutboxStatus
from core.outbox import outbox_retry


class StoreBindingForm(forms.ModelForm):
    """The app secret and access token are never sent to the browser: the inputs are
    always empty; left blank they keep the stored value, a new value replaces it."""

    SECRET_FIELDS = ("secret", "token")

    clear_token = forms.BooleanField(label=_("Clear the access token"), required=False)

    class Meta:
        model = StoreBinding
        fields = "__all__"
        widgets = {"secret": forms.PasswordInput(render_value=False), "token": forms.PasswordInput(render_value=False)}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stored = self.instance.pk is not None
        for name in self.SECRET_FIELDS:
            field = self.fields.get(name)
            if field is None:
                continue
            if stored:
                field.required = False
                has_value = bool(getattr(self.instance, name))
                field.help_text = (_("Stored; leave blank to keep it, type a new value to replace it.") if has_value
                                   else _("Not set."))
            # Never render the stored value, not even as the field's initial value.
            self.initial[name] = ""
        if not stored:
            self.fields.pop("clear_token", None)

    def _clean_secret_field(self, name: str) -> str:
        value = self.cleaned_data.get(name) or ""
        if not value and self.instance.pk is not None:
            return getattr(StoreBinding.objects.only(name).get(pk=self.instance.pk), name)
        return value

    def clean_secret(self) -> str:
        return self._clean_secret_field("secret")

    def clean_token(self) -> str:
        return self._clean_secret_field("token")

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("clear_token"):
            cleaned["token"] = ""
        return cleaned


class StoreBindingAdmin(TenantAdmin):
    form = StoreBindingForm
    role_permissions = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN}, "change": {BRAND_ADMIN}, "delete": {BRAND_ADMIN}}
    list_display = ["store", "platform", "shop_code", "enabled", "pull_interval_seconds", "last_pull_at",
                    "next_pull_at", "last_error"]
    list_select_related = ["store"]
    list_filter = ["platform", "enabled"]
    search_fields = ["shop_code", "store__name", "store__code"]
    readonly_fields = ["last_pull_at", "last_error", "created_at"]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is None:
            fields = [name for name in fields if name != "clear_token"]  # nothing stored to clear yet
        elif not self.has_change_permission(request, obj):
            # A read-only view shows fields as text: never the secrets.
            fields = [name for name in fields if name not in StoreBindingForm.SECRET_FIELDS + ("clear_token",)]
        return fields


class OutboxMessageAdmin(ReadOnlyTenantAdmin):
    role_permissions = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set(), "retry": {BRAND_ADMIN}}
    list_display = ["id", "topic", "key", "status", "attempts", "next_attempt_at", "last_error", "created_at",
                    "delivered_at"]
    list_filter = ["status", "topic"]
    search_fields = ["=key"]
    ordering = ["-id"]
    actions = ["retry_dead_letters"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    @admin.action(description=_("Retry"), permissions=["retry"])
    def retry_dead_letters(self, request, queryset):
        # ``queryset``: the selected rows where the user is brand admin (TenantAdmin checked each).
        ids = list(queryset.filter(status=OutboxStatus.DEAD).values_list("pk", flat=True))
        revived = outbox_retry(message_ids=ids)
        self.message_user(
            request,
            ngettext("%(count)d dead letter is queued again.", "%(count)d dead letters are queued again.", revived)
            % {"count": revived},
            messages.SUCCESS if revived else messages.WARNING,
        )


admin.site.register(StoreBinding, StoreBindingAdmin)
admin.site.register(OutboxMessage, OutboxMessageAdmin)


@admin.register(UnreadablePlatformOrder)
class UnreadablePlatformOrderAdmin(ReadOnlyTenantAdmin):
    """Platform orders the pulls could not ingest after every attempt: a person looks each
    up on the platform's merchant back-office, handles it, and marks it resolved."""

    role_permissions = {"view": MANAGERS, "add": set(), "change": set(), "delete": set(), "resolve": MANAGERS}
    list_display = ["binding", "reference", "attempts", "last_error", "created_at", "resolved_at", "resolved_by"]
    list_select_related = ["binding__store"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["=reference"]
    actions = ["mark_resolved"]
    readonly_fields = [f.name for f in UnreadablePlatformOrder._meta.fields]

    @admin.action(description=_("Mark as resolved"), permissions=["resolve"])
    def mark_resolved(self, request, queryset):
        done = unreadable_orders_resolve(ids=list(queryset.values_list("pk", flat=True)), actor=Actor.staff(request.user))
        self.message_user(request, ngettext("%(count)d order marked resolved.", "%(count)d orders marked resolved.",
                                            done) % {"count": done}, messages.SUCCESS)
