"""Admin for after-sales requests: store managers and brand admins decide (approve,
reject with a reason, confirm returned goods); clerks only see them. Every action
goes through aftersales.services, which checks the user's role at the request's
store again."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_base import ALL_ROLES, MANAGERS, ReadOnlyTenantAdmin, TenantInline
from aftersales.models import AfterSalesEvent, AfterSalesLine, AfterSalesRequest, AfterSalesStatus
from aftersales.services import aftersales_approve, aftersales_goods_received, aftersales_reject
from core.actors import Actor
from core.errors import DomainError


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason (shown to the customer)"), max_length=255,
                             widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class AfterSalesLineInline(TenantInline):
    model = AfterSalesLine
    role_permissions = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set()}
    fields = ["order_line", "quantity", "amount"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class AfterSalesEventInline(TenantInline):
    model = AfterSalesEvent
    role_permissions = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set()}
    fields = ["created_at", "action", "from_status", "to_status", "actor_kind", "actor_name", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(AfterSalesRequest)
class AfterSalesRequestAdmin(ReadOnlyTenantAdmin):
    role_permissions = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set(), "decide": MANAGERS}
    list_display = ["id", "order", "store", "requested_by", "kind", "scope", "amount", "status", "deadline",
                    "created_at", "decided_by"]
    list_select_related = ["order", "store"]
    list_filter = ["status", "kind", "requested_by"]
    search_fields = ["=order__order_no", "=order__channel_order_id", "=platform_refund_id"]
    ordering = ["-id"]
    actions = ["approve_requests", "reject_requests", "goods_back_restock", "goods_back_write_off"]
    readonly_fields = [f.name for f in AfterSalesRequest._meta.fields]
    inlines = [AfterSalesLineInline, AfterSalesEventInline]

    def _answer(self, request, queryset, answer, *, statuses) -> None:
        # ``queryset``: the selected rows where the user's role allows "decide" (TenantAdmin checked each).
        done, refused = 0, []
        for item in queryset.filter(status__in=statuses).order_by("pk"):
            try:
                answer(item)
            except DomainError as exc:
                refused.append(f"#{item.pk}: {exc}")
            else:
                done += 1
        if done:
            self.message_user(request, ngettext("%(count)d request is answered.", "%(count)d requests are answered.",
                                                done) % {"count": done}, messages.SUCCESS)
        for line in refused:
            self.message_user(request, line, messages.ERROR)
        if not done and not refused:
            self.message_user(request, _("No request in a state for this was selected."), messages.WARNING)

    @admin.action(description=_("Approve"), permissions=["decide"])
    def approve_requests(self, request, queryset):
        actor = Actor.staff(request.user)
        self._answer(request, queryset, lambda r: aftersales_approve(request_id=r.pk, actor=actor),
                     statuses=[AfterSalesStatus.REQUESTED])

    @admin.action(description=_("Goods received: back on the shelf"), permissions=["decide"])
    def goods_back_restock(self, request, queryset):
        actor = Actor.staff(request.user)
        self._answer(request, queryset, lambda r: aftersales_goods_received(request_id=r.pk, actor=actor, restock=True),
                     statuses=[AfterSalesStatus.AWAITING_GOODS])

    @admin.action(description=_("Goods received: written off"), permissions=["decide"])
    def goods_back_write_off(self, request, queryset):
        actor = Actor.staff(request.user)
        self._answer(request, queryset,
                     lambda r: aftersales_goods_received(request_id=r.pk, actor=actor, restock=False),
                     statuses=[AfterSalesStatus.AWAITING_GOODS])

    @admin.action(description=_("Reject (reason required)"), permissions=["decide"])
    def reject_requests(self, request, queryset):
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            actor = Actor.staff(request.user)
            reason = form.cleaned_data["reason"]
            self._answer(request, queryset, lambda r: aftersales_reject(request_id=r.pk, actor=actor, reason=reason),
                         statuses=[AfterSalesStatus.REQUESTED])
            return None
        context = {
            **self.admin_site.each_context(request), "title": _("Reject after-sales requests"), "form": form,
            "queryset": queryset, "opts": self.model._meta, "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action": "reject_requests",
        }
        return TemplateResponse(request, "admin/aftersales/aftersalesrequest/reject.html", context)
