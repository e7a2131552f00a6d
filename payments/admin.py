"""Back-office of payments, for brand admins: the brand's merchant account (its API key
write-only), and read-only views of payments and refunds."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_base import BRAND_ADMIN, TenantAdmin
from payments.models import PaymentAccount, PaymentRefund, PaymentTransaction

READ_ONLY = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}


class PaymentAccountForm(forms.ModelForm):
    """The API key is never sent to the browser: the input is always empty; left blank it
    keeps the stored key, a new value replaces it (rotation)."""

    class Meta:
        model = PaymentAccount
        fields = ["brand", "provider", "mchid", "appid", "api_key", "enabled"]
        widgets = {"api_key": forms.PasswordInput(render_value=False)}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.initial["api_key"] = ""
        if self.instance.pk is not None and "api_key" in self.fields:
            self.fields["api_key"].required = False
            self.fields["api_key"].help_text = _("Stored; leave blank to keep it, type a new key to replace it.")

    def clean_api_key(self) -> str:
        value = self.cleaned_data.get("api_key") or ""
        if not value and self.instance.pk is not None:
            return PaymentAccount.objects.only("api_key").get(pk=self.instance.pk).api_key
        return value


@admin.register(PaymentAccount)
class PaymentAccountAdmin(TenantAdmin):
    form = PaymentAccountForm
    role_permissions = {"view": {BRAND_ADMIN}, "add": {BRAND_ADMIN}, "change": {BRAND_ADMIN}, "delete": set()}
    list_display = ("brand", "provider", "mchid", "appid", "key_set", "enabled", "updated_at")
    list_filter = ("provider", "enabled")
    list_select_related = ("brand",)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description=_("API key"))
    def key_set(self, obj: PaymentAccount) -> str:
        return _("set") if obj.api_key else _("not set")

    def get_fields(self, request, obj=None):
        fields = [*PaymentAccountForm.Meta.fields, "created_at", "updated_at"]
        if obj is not None and not self.has_change_permission(request, obj):
            fields = [name for name in fields if name != "api_key"]  # a read-only view shows fields as text
        return fields


@admin.register(PaymentTransaction)
class PaymentTransactionAdmin(TenantAdmin):
    role_permissions = READ_ONLY
    list_display = ("out_trade_no", "order_ref", "provider", "amount", "status", "transaction_id", "paid_at",
                    "created_at")
    list_filter = ("status", "provider")
    search_fields = ("out_trade_no", "order_ref", "transaction_id")
    list_select_related = ("brand",)
    date_hierarchy = "created_at"


@admin.register(PaymentRefund)
class PaymentRefundAdmin(TenantAdmin):
    role_permissions = READ_ONLY
    list_display = ("out_refund_no", "refund_ref", "transaction", "amount", "status", "refund_id", "succeeded_at",
                    "created_at")
    list_filter = ("status",)
    search_fields = ("out_refund_no", "refund_ref", "refund_id", "transaction__order_ref")
    list_select_related = ("transaction",)
