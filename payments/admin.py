"""Read-only back-office view of payments and refunds, for brand admins."""

from django.contrib import admin

from accounts.admin_base import BRAND_ADMIN, TenantAdmin
from payments.models import PaymentRefund, PaymentTransaction

READ_ONLY = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}


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
