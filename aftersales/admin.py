"""Admin for after-sales requests: store managers and brand admins decide (approve,
reject with a reason, confirm returned goods) and refund an order themselves
("Refund this order": a staff request created and approved in one step, after a
confirm page showing the amount); clerks only see requests. Every action goes
through aftersales.services, which checks the user's role at the request's store
again.

Rights (``role_permissions``): ``view`` every role at the request's store (a brand's
roles for its brand); ``decide`` (the actions and the refund page) store managers of
the store and brand admins of its brand; nobody adds, changes or deletes a request
by hand.
"""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_base import ALL_ROLES, MANAGERS, ReadOnlyTenantAdmin, TenantInline
from aftersales import amounts
from aftersales.models import (
    AfterSalesEvent,
    AfterSalesKind,
    AfterSalesLine,
    AfterSalesReasonCode,
    AfterSalesRequest,
    AfterSalesScope,
    AfterSalesStatus,
)
from aftersales.services import (
    LineAsk,
    aftersales_approve,
    aftersales_goods_received,
    aftersales_reject,
    aftersales_request_create,
)
from core.actors import Actor
from core.errors import DomainError
from orders.models import Order
from orders.services.core import REFUNDABLE_STATUSES


def yuan(amount) -> str:
    """A money amount for people: "¥23.50"."""
    if amount in (None, ""):
        return "-"
    return f"¥{Decimal(str(amount)):.2f}"


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("Reason (shown to the customer)"), max_length=255,
                             widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class AfterSalesLineInline(TenantInline):
    model = AfterSalesLine
    verbose_name = _("line asked back")
    verbose_name_plural = _("lines asked back")
    role_permissions = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set()}
    fields = ["line_no", "line_name", "quantity_of", "amount_yuan"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order_line").order_by("order_line__line_no")

    @admin.display(description=_("line no."))
    def line_no(self, obj: AfterSalesLine):
        return obj.order_line.line_no

    @admin.display(description=_("name"))
    def line_name(self, obj: AfterSalesLine) -> str:
        line = obj.order_line
        return f"{line.name} ({line.spec})" if line.spec else line.name

    @admin.display(description=_("quantity"))
    def quantity_of(self, obj: AfterSalesLine) -> str:
        return gettext("%(asked)s of %(ordered)s") % {"asked": obj.quantity, "ordered": obj.order_line.quantity}

    @admin.display(description=_("amount"))
    def amount_yuan(self, obj: AfterSalesLine) -> str:
        return yuan(obj.amount)


class AfterSalesEventInline(TenantInline):
    model = AfterSalesEvent
    role_permissions = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set()}
    fields = ["created_at", "action", "from_status", "to_status", "actor_kind", "actor_name", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False


# --- "Refund this order" ------------------------------------------------------------------------


class RefundOrderForm(forms.Form):
    """What staff give back: the whole order, or some units of some lines (one
    ``qty_<line id>`` field per line, at most the units left to refund)."""

    kind = forms.ChoiceField(label=_("kind"), choices=AfterSalesKind.choices, initial=AfterSalesKind.REFUND,
                             widget=forms.RadioSelect)
    scope = forms.ChoiceField(label=_("scope"), choices=AfterSalesScope.choices, initial=AfterSalesScope.ORDER,
                              widget=forms.RadioSelect)
    reason_code = forms.ChoiceField(
        label=_("reason code"), initial=AfterSalesReasonCode.STORE_ERROR,
        choices=[c for c in AfterSalesReasonCode.choices if c[0] != AfterSalesReasonCode.PLATFORM])
    reason = forms.CharField(label=_("reason"), max_length=255,
                             widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
                             help_text=_("Kept with the request; the customer sees it."))
    confirmed_amount = forms.DecimalField(required=False, max_digits=10, decimal_places=2, widget=forms.HiddenInput)

    def __init__(self, *args, rows: list[dict], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rows = rows
        for row in rows:
            self.fields[row["field"]] = forms.IntegerField(
                label=row["line"].name, required=False, min_value=0, max_value=row["left"], initial=0,
                widget=forms.NumberInput(attrs={"style": "width:5em"}))

    def line_fields(self):
        return [(row, self[row["field"]]) for row in self.rows]

    def clean(self):
        cleaned = super().clean()
        line_errors = any(row["field"] in self.errors for row in self.rows)
        if cleaned.get("scope") == AfterSalesScope.LINES and not line_errors and not self.asked():
            raise forms.ValidationError(_("Give a quantity for at least one line, or refund the whole order."),
                                        code="no_lines")
        return cleaned

    def asked(self) -> list[LineAsk] | None:
        """None for the whole order, else the lines with a quantity."""
        if self.cleaned_data.get("scope") != AfterSalesScope.LINES:
            return None
        return [LineAsk(line_id=row["line"].pk, quantity=self.cleaned_data[row["field"]])
                for row in self.rows if self.cleaned_data.get(row["field"])]


class AmountChanged(Exception):
    """The request would give back another amount than the one the user confirmed."""

    def __init__(self, amount: Decimal) -> None:
        super().__init__(str(amount))
        self.amount = amount


def refundable_rows(order: Order) -> list[dict]:
    """Each line of ``order`` with what it paid and how many of its units are left to refund."""
    lines = list(order.lines.all().order_by("line_no"))
    committed = amounts.committed_for(order=order)
    redeemed = amounts.redeemed_units(order)
    return [{"line": line, "field": f"qty_{line.pk}", "paid": amounts.line_paid(line),
             "left": max(line.quantity - redeemed[line.line_no] - committed.units[line.pk], 0)}
            for line in lines]


@admin.register(AfterSalesRequest)
class AfterSalesRequestAdmin(ReadOnlyTenantAdmin):
    role_permissions = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set(), "decide": MANAGERS}
    list_display = ["id", "order_column", "store", "requested_by", "kind", "amount", "status", "deadline"]
    list_select_related = ["order", "store"]
    list_filter = ["status", "kind", "requested_by"]
    search_fields = ["=order__order_no", "=order__channel_order_id", "=platform_refund_id"]
    ordering = ["-id"]
    actions = ["approve_requests", "reject_requests", "goods_back_restock", "goods_back_write_off"]
    inlines = [AfterSalesLineInline, AfterSalesEventInline]
    readonly_fields = ["order_link", "amount_yuan", "platform_lines_table", "order_amounts"]
    fieldsets = [
        (None, {"fields": ["order_link", "store", "status", "kind", "scope", "amount_yuan", "fees_included",
                           "order_amounts"]}),
        (_("Asked by"), {"fields": ["requested_by", "requester_name", "reason_code", "reason", "created_at"]}),
        (_("Decision"), {"fields": ["deadline", "nearing_flagged_at", "escalated_at", "decided_by", "decided_at",
                                    "decision_reason"]}),
        (_("Goods and money"), {"fields": ["restock", "goods_received_at", "refund_ref", "refunded_at"]}),
        (_("Platform"), {"fields": ["platform_refund_id", "platform_lines_table"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "store")

    # --- the page, readable -----------------------------------------------------------------

    @admin.display(description=_("order"), ordering="order__order_no")
    def order_column(self, obj: AfterSalesRequest) -> str:
        """The request's order, linked to the order's page (the row itself links to the request)."""
        url = reverse("admin:orders_order_change", args=[obj.order_id], current_app=self.admin_site.name)
        return format_html('<a href="{}" class="after-sales-order">{}</a>', url, obj.order.order_no)

    @admin.display(description=_("order"))
    def order_link(self, obj: AfterSalesRequest) -> str:
        url = reverse("admin:orders_order_change", args=[obj.order_id], current_app=self.admin_site.name)
        return format_html('<a href="{}" class="after-sales-order">{}</a> ({})', url, obj.order.order_no,
                           obj.order.get_status_display())

    @admin.display(description=_("amount"))
    def amount_yuan(self, obj: AfterSalesRequest) -> str:
        return yuan(obj.amount)

    @admin.display(description=_("order amounts"))
    def order_amounts(self, obj: AfterSalesRequest) -> str:
        order = obj.order
        return gettext("paid %(paid)s, refunded %(refunded)s (%(state)s)") % {
            "paid": yuan(order.paid_amount), "refunded": yuan(order.refunded_amount),
            "state": order.get_refund_state_display()}

    @admin.display(description=_("platform's lines"))
    def platform_lines_table(self, obj: AfterSalesRequest) -> str:
        rows = [line for line in (obj.platform_lines or []) if isinstance(line, dict)]
        if not rows:
            return "-"
        head = format_html("<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>", gettext("name"),
                           gettext("merchant code"), gettext("platform SKU id"), gettext("quantity"),
                           gettext("amount"))
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (line.get("name") or "-", line.get("merchant_code") or "-", line.get("platform_sku_id") or "-",
             line.get("quantity", "-"), yuan(line["amount"]) if line.get("amount") not in (None, "") else "-")
            for line in rows))
        return format_html('<table class="platform-lines"><thead>{}</thead><tbody>{}</tbody></table>', head, body)

    # --- actions on selected requests -------------------------------------------------------

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

    # --- "Refund this order" ------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("refund-order/<path:order_id>/", self.admin_site.admin_view(self.refund_order_view),
                 name="%s_%s_refund_order" % info),
            *super().get_urls(),
        ]

    def refund_order_view(self, request, order_id):
        """GET: the form (whole order or lines with quantities, kind, reason). POST
        ``preview``: the amount it gives back, to confirm. POST ``confirm``: one staff
        request created and approved (a refund's money starts; a return waits for the
        goods). 404 for an order the user cannot see, 403 where their role may not decide."""
        order_id = unquote(order_id)
        order = (Order.objects.select_related("brand", "store").filter(pk=order_id).first()
                 if str(order_id).isdigit() else None)
        if order is None or not self.role_allows(request, "view", order):
            raise Http404
        if not self.role_allows(request, "decide", order):
            raise PermissionDenied
        order_url = reverse("admin:orders_order_change", args=[order.pk], current_app=self.admin_site.name)
        refusal = self._not_refundable(order)
        if refusal:
            messages.error(request, refusal)
            return HttpResponseRedirect(order_url)
        rows = refundable_rows(order)
        form = RefundOrderForm(request.POST if request.method == "POST" else None, rows=rows)
        preview = None
        if request.method == "POST" and form.is_valid():
            asked = form.asked()
            try:
                if "confirm" in request.POST:
                    try:
                        created = self._refund(request, order=order, form=form, asked=asked)
                    except AmountChanged as changed:
                        messages.warning(request, gettext(
                            "The amount is now %(amount)s (another request of the order changed what is left). "
                            "Check it and confirm again.") % {"amount": yuan(changed.amount)})
                    else:
                        return HttpResponseRedirect(reverse("admin:aftersales_aftersalesrequest_change",
                                                            args=[created.pk], current_app=self.admin_site.name))
                preview = amounts.quote(
                    order=order, asked=None if asked is None else [(item.line_id, item.quantity) for item in asked],
                    fees_with_last_lines=order.brand.after_sales_fees_with_last_lines)
            except DomainError as error:
                form.add_error(None, str(error.message))
            if preview is not None:
                form.data = form.data.copy()
                form.data["confirmed_amount"] = str(preview.amount)
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "order": order,
            "order_url": order_url, "form": form, "preview": preview,
            "title": gettext("Refund order %(order_no)s") % {"order_no": order.order_no},
            "paid": yuan(order.paid_amount), "refunded": yuan(order.refunded_amount),
            "preview_amount": yuan(preview.amount) if preview else "",
            "preview_lines": [{"line": item.line, "quantity": item.quantity, "amount": yuan(item.amount)}
                              for item in preview.lines] if preview else [],
            "is_return": preview is not None and form.cleaned_data.get("kind") == AfterSalesKind.RETURN,
        }
        return TemplateResponse(request, "admin/aftersales/aftersalesrequest/refund_order.html", context)

    @staticmethod
    def _not_refundable(order: Order) -> str:
        if order.is_platform_order:
            return gettext("Platform orders are refunded through their platform: answer the customer's "
                           "application there.")
        if order.status not in REFUNDABLE_STATUSES or order.paid_amount <= order.refunded_amount:
            return gettext("Order %(order_no)s cannot be refunded in its status (%(status)s, %(state)s).") % {
                "order_no": order.order_no, "status": order.get_status_display(),
                "state": order.get_refund_state_display()}
        return ""

    def _refund(self, request, *, order: Order, form: RefundOrderForm, asked) -> AfterSalesRequest:
        """One transaction: the staff request, then its approval. Nothing is kept when the
        amount is not the one confirmed or a service refuses."""
        actor = Actor.staff(request.user)
        confirmed = form.cleaned_data.get("confirmed_amount")
        with transaction.atomic():
            created = aftersales_request_create(
                order_id=order.pk, actor=actor, kind=form.cleaned_data["kind"], lines=asked,
                reason_code=form.cleaned_data["reason_code"], reason=form.cleaned_data["reason"])
            if confirmed is None or created.amount != confirmed:
                raise AmountChanged(created.amount)
            created = aftersales_approve(request_id=created.pk, actor=actor, reason=form.cleaned_data["reason"])
        if created.kind == AfterSalesKind.RETURN:
            text = gettext("Request #%(id)s approved: %(amount)s goes back once the goods are received.")
        else:
            text = gettext("Request #%(id)s approved: %(amount)s goes back to the customer.")
        messages.success(request, text % {"id": created.pk, "amount": yuan(created.amount)})
        return created
