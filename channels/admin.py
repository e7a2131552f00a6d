"""Admin for platform bindings and the outbox (dead-letter view with a Retry action).

core.OutboxMessage is registered here: core cannot import accounts.admin_base
(see core/admin.py). Brand admins see their brand's messages (by the message's
``brand_id``) and may retry dead letters; superusers see everything.
"""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_base import BRAND_ADMIN, TenantAdmin
from channels.models import StoreBinding
from core.models import OutboxMessage, OutboxStatus
from core.outbox import outbox_retry


class StoreBindingForm(forms.ModelForm):
    class Meta:
        model = StoreBinding
        fields = "__all__"
        widgets = {"secret": forms.PasswordInput(render_value=True), "token": forms.PasswordInput(render_value=True)}


class StoreBindingAdmin(TenantAdmin):
    form = StoreBindingForm
    role_permissions = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN}, "change": {BRAND_ADMIN}, "delete": {BRAND_ADMIN}}
    list_display = ["store", "platform", "shop_code", "enabled", "pull_interval_seconds", "last_pull_at",
                    "next_pull_at", "last_error"]
    list_select_related = ["store"]
    list_filter = ["platform", "enabled"]
    search_fields = ["shop_code", "store__name", "store__code"]
    readonly_fields = ["last_pull_at", "last_error", "created_at"]


class OutboxMessageAdmin(TenantAdmin):
    role_permissions = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}
    list_display = ["id", "topic", "key", "status", "attempts", "next_attempt_at", "last_error", "created_at",
                    "delivered_at"]
    list_filter = ["status", "topic"]
    search_fields = ["=key"]
    ordering = ["-id"]
    actions = ["retry_dead_letters"]
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_retry_permission(self, request):
        return self._role_allows(request, "view")

    @admin.action(description=_("Retry"), permissions=["retry"])
    def retry_dead_letters(self, request, queryset):
        # ``queryset`` is already scoped to the user's brands by TenantAdmin.get_queryset.
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
