"""The order list and the order page.

Orders are read-only here: the status is protected and an order changes only
through orders.services, so the page's only writes are the transition
buttons (orders.admin.transitions). Refunds are after-sales': the page shows
the refunded amount and refund state, lists the order's after-sales requests
(the ``after_sales`` reverse relation, no import of aftersales) and links to
after-sales' "Refund this order" page by its URL name, for the store managers
and brand admins who may decide there. The list runs a constant number of
queries whatever the page size: the store comes with the orders, the status
label is computed from the row, and the store filter reads the user's stores
once.
"""

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin_base import ALL_ROLES, MANAGERS, SUPERUSER, ReadOnlyTenantAdmin, TenantInline, roles_at
from accounts.models import mask_phone
from accounts.selectors import scope_for_user, store_list_for_scope
from orders.admin.transitions import TransitionAdminMixin
from orders.models import (
    DeliveryOrder,
    DineInOrder,
    Order,
    OrderDiscount,
    OrderEvent,
    OrderLine,
    OrderStatus,
    OrderType,
    PickupOrder,
    VoucherCode,
    VoucherOrder,
)
from orders.status_map import STATUS_MAP, status_with_refund_label

READ_ONLY = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set()}


def merchant_status_label(order: Order) -> str:
    """The merchant's status label, with the refund state after it ("Delivered · Partly refunded")."""
    try:
        return status_with_refund_label(order_type=order.order_type, status=order.status,
                                        refund_state=order.refund_state, audience="merchant")
    except KeyError:  # a status the type's machine never reaches: show the system label
        return order.get_status_display()


class StoreListFilter(admin.SimpleListFilter):
    """The stores the user may see, not every store of the platform."""

    title = _("store")
    parameter_name = "store"

    def lookups(self, request, model_admin):
        stores = store_list_for_scope(scope=scope_for_user(user=request.user))
        return [(str(store.pk), store.name) for store in stores]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(store_id=int(value))
        return queryset


class MerchantStatusFilter(admin.SimpleListFilter):
    """The status in the merchant's words, as the list and the order page show it (a status
    whose label differs by order type lists each: "出餐完成 / 待取餐 / 待上菜")."""

    title = _("status")
    parameter_name = "status__exact"

    def lookups(self, request, model_admin):
        labels: dict[str, list[str]] = {}
        for views in STATUS_MAP.values():
            for status, view in views.items():
                label = str(view.for_audience("merchant"))
                if label not in labels.setdefault(status, []):
                    labels[status].append(label)
        return [(status, " / ".join(labels[status])) for status in OrderStatus.values if status in labels]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(status=value) if value in OrderStatus.values else queryset


class AttentionFilter(admin.SimpleListFilter):
    title = _("needs attention")
    parameter_name = "needs_attention__exact"

    def lookups(self, request, model_admin):
        return [("1", _("Needs attention")), ("0", _("No"))]

    def queryset(self, request, queryset):
        if self.value() in ("1", "0"):
            return queryset.filter(needs_attention=self.value() == "1")
        return queryset


PHONE_ROLES = MANAGERS | {SUPERUSER}  # clerks see customers' phones masked (138****5678)


class ReadOnlyInlineMixin:
    role_permissions = READ_ONLY
    can_delete = False
    show_change_link = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrderLineInline(ReadOnlyInlineMixin, TenantInline):
    model = OrderLine
    fields = ["line_no", "sku_code", "name", "spec", "unit_price", "quantity", "discount", "line_total",
              "packaging_fee", "options_in_words"]

    @admin.display(description=_("options"))
    def options_in_words(self, line: OrderLine) -> str:
        """The options as the board prints them ("微辣, 加蛋"), not the JSON."""
        names = [str(option.get("name") or option.get("value") or "") if isinstance(option, dict) else str(option)
                 for option in (line.options or [])]
        return ", ".join(name for name in names if name) or "-"


class OrderDiscountInline(ReadOnlyInlineMixin, TenantInline):
    model = OrderDiscount
    fields = ["kind", "name", "reference", "amount", "merchant_part", "platform_part"]


class OrderEventInline(ReadOnlyInlineMixin, TenantInline):
    """The timeline, oldest first: who did what, from which status to which, and why."""

    model = OrderEvent
    verbose_name = _("timeline event")
    verbose_name_plural = _("timeline")
    fields = ["created_at", "action", "from_status", "to_status", "actor_kind", "actor_name", "reason_code",
              "reason"]
    ordering = ["id"]


class VoucherCodeInline(ReadOnlyInlineMixin, TenantInline):
    """The codes the OMS issued for a voucher order, and who redeemed them."""

    model = VoucherCode
    fields = ["code", "line_no", "sku_code", "state", "issued_at", "redeemed_at", "redeemed_by_kind",
              "redeemed_by_name", "redeemed_store_ref"]
    ordering = ["line_no", "id"]


class OrderAdmin(TransitionAdminMixin, ReadOnlyTenantAdmin):
    # Orders are created by services and changed only through transitions, by everyone.
    role_permissions = READ_ONLY
    list_display = ["order_no", "store", "channel", "order_type", "merchant_status", "total", "placed_at",
                    "attention"]
    list_select_related = ["store"]
    show_full_result_count = False  # a second COUNT(*) over every order of the store buys nothing
    list_filter = [StoreListFilter, "channel", "order_type", MerchantStatusFilter,
                   ("business_date", admin.DateFieldListFilter), AttentionFilter]
    search_fields = ["=order_no", "=phone_last4", "=channel_order_id", "=channel_order_no"]
    search_help_text = _("Order number, last 4 digits of the phone, or the channel's order id or number.")
    inlines = [OrderLineInline, OrderDiscountInline, OrderEventInline]

    def get_inlines(self, request, obj):
        if obj is not None and obj.order_type == OrderType.VOUCHER:
            return [OrderLineInline, VoucherCodeInline, OrderDiscountInline, OrderEventInline]
        return self.inlines
    readonly_fields = ["merchant_status", "after_sales_requests", "attention", "address_in_words", "contact_phone_shown"]
    change_form_template = "admin/orders/order/change_form.html"
    change_list_template = "admin/orders/order/change_list.html"
    fieldsets = [
        (None, {"fields": ["order_no", "brand", "store", "order_type", "merchant_status", "attention"]}),
        (_("Channel"), {"fields": ["channel", "channel_order_id", "channel_order_no", "channel_day_seq",
                                   "business_date", "day_seq", "pickup_code"]}),
        (_("Customer"), {"fields": ["customer", "contact_name", "contact_phone_shown", "address_in_words",
                                    "customer_note"]}),
        (_("Amounts"), {"fields": ["subtotal", "discount_total", "merchant_discount", "platform_discount",
                                   "delivery_fee", "packaging_fee", "total", "paid_amount"]}),
        (_("After-sales"), {"fields": ["refunded_amount", "refund_state", "after_sales_open",
                                       "after_sales_requests"]}),
        (_("Payment"), {"fields": ["payment_provider", "payment_txn_no", "paid_at"]}),
        (_("Times"), {"fields": ["placed_at", "expires_at", "prep_minutes", "accepted_at", "expected_at",
                                 "ready_at", "dispatched_at", "confirmed_at", "completed_at", "cancelled_at",
                                 "cancel_reason_code", "cancel_reason"]}),
        (_("Courier"), {"fields": ["courier_name", "courier_phone"]}),
        (_("Raw channel payload"), {"fields": ["raw_payload"], "classes": ["collapse"]}),
    ]

    @admin.display(description=_("status"), ordering="status")
    def merchant_status(self, obj: Order) -> str:
        return merchant_status_label(obj)

    @admin.display(description=_("needs attention"), ordering="needs_attention")
    def attention(self, obj: Order) -> str:
        """A warning sign with the reason when a person must look at the order; nothing otherwise
        (Django's green tick on "needs attention" read as "all is well")."""
        if not obj.needs_attention:
            return ""
        reason = obj.attention_reason or gettext("Needs attention")
        return format_html('<span class="order-attention" title="{}" role="img" aria-label="{}">⚠</span> {}',
                           reason, gettext("Needs attention"), reason if self._on_change_page(obj) else "")

    def get_fieldsets(self, request, obj=None):
        """Clerks do not get the platform's raw payload: it holds the customer's phone unmasked."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and not getattr(obj, "_admin_phone_visible", True):
            return [(name, options) for name, options in fieldsets if "raw_payload" not in options["fields"]]
        return fieldsets

    def _on_change_page(self, obj: Order) -> bool:
        return getattr(obj, "_admin_change_page", False)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            obj._admin_change_page = True
            obj._admin_phone_visible = bool(roles_at(user=request.user, obj=obj) & PHONE_ROLES) \
                or request.user.is_superuser
        return obj

    @admin.display(description=_("address"))
    def address_in_words(self, obj: Order) -> str:
        return obj.address_text or self.get_empty_value_display()

    @admin.display(description=_("contact phone"))
    def contact_phone_shown(self, obj: Order) -> str:
        phone = obj.contact_phone or ""
        if not phone:
            return self.get_empty_value_display()
        return phone if getattr(obj, "_admin_phone_visible", False) else mask_phone(phone)

    @admin.display(description=_("after-sales requests"))
    def after_sales_requests(self, obj: Order) -> str:
        """Each request of the order (newest first) linking to its page: kind, amount, status."""
        requests = list(obj.after_sales.order_by("-id")) if obj.pk else []
        if not requests:
            return self.get_empty_value_display()
        items = format_html_join("", '<li><a href="{}" class="after-sales-request">#{}</a> {} · {} · ¥{} · {}</li>', (
            (reverse("admin:aftersales_aftersalesrequest_change", args=[r.pk], current_app=self.admin_site.name),
             r.pk, r.get_kind_display(), r.get_scope_display(), r.amount, r.get_status_display())
            for r in requests))
        return format_html('<ul class="after-sales-requests">{}</ul>', items)

    def get_search_results(self, request, queryset, search_term):
        """Exact matches only, so each term uses an index (no LIKE '%...%' over every order)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = Q(order_no=term) | Q(phone_last4=term) | Q(channel_order_id=term) | Q(channel_order_no=term)
        return queryset.filter(matches), False



class TypedOrderAdmin(OrderAdmin):
    """One order type's machine (the proxies of orders.models.machines).

    Registered so every model has an admin, hidden from the index: the order
    list and its type filter are the one entry point.
    """

    order_type: str = ""
    list_filter = [f for f in OrderAdmin.list_filter if f != "order_type"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(order_type=self.order_type)

    def has_module_permission(self, request):
        return False


admin.site.register(Order, OrderAdmin)
for _model, _type in [(DeliveryOrder, OrderType.DELIVERY), (PickupOrder, OrderType.PICKUP),
                      (DineInOrder, OrderType.DINE_IN), (VoucherOrder, OrderType.VOUCHER)]:
    admin.site.register(_model, type(f"{_model.__name__}Admin", (TypedOrderAdmin,), {"order_type": _type.value}))
