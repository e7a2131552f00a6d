"""The read-only, tenant-scoped admin and the thin reconcile tasks."""

from decimal import Decimal

from django.contrib import admin
from django.test import RequestFactory

from accounts.models import StaffRole
from payments.admin import PaymentRefundAdmin, PaymentTransactionAdmin
from payments.models import PaymentRefund, PaymentTransaction
from payments.services import payment_start, refund_start
from payments.tasks import payment_reconcile_task, refund_reconcile_task
from tests.factories import BrandFactory, MembershipFactory, StoreFactory, UserFactory


def request_for(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def payment(brand, order_ref: str, status: str = "created") -> PaymentTransaction:
    return PaymentTransaction.objects.create(
        provider="wxpay", out_trade_no=f"T{order_ref}", order_ref=order_ref, brand=brand, description="d",
        amount=Decimal("23.50"), amount_fen=2350, status=status,
        transaction_id="4200001" if status != "created" else "",
    )


def test_brand_admin_sees_only_own_brand_and_cannot_change_anything(db):
    brand_x, brand_y = BrandFactory(), BrandFactory()
    admin_x = UserFactory()
    MembershipFactory(user=admin_x, brand=brand_x, store=None, role=StaffRole.BRAND_ADMIN)
    mine, theirs = payment(brand_x, "OX", "succeeded"), payment(brand_y, "OY", "succeeded")
    PaymentRefund.objects.create(transaction=mine, refund_ref="r", out_refund_no="RX", amount=Decimal("1.00"),
                                 amount_fen=100)
    PaymentRefund.objects.create(transaction=theirs, refund_ref="r", out_refund_no="RY", amount=Decimal("1.00"),
                                 amount_fen=100)
    payments_admin = PaymentTransactionAdmin(PaymentTransaction, admin.site)
    refunds_admin = PaymentRefundAdmin(PaymentRefund, admin.site)
    request = request_for(admin_x)

    assert [p.order_ref for p in payments_admin.get_queryset(request)] == ["OX"]
    assert [r.out_refund_no for r in refunds_admin.get_queryset(request)] == ["RX"]
    assert payments_admin.has_view_permission(request) is True
    assert [payments_admin.has_add_permission(request), payments_admin.has_change_permission(request, mine),
            payments_admin.has_delete_permission(request, mine), refunds_admin.has_change_permission(request)] == [
        False, False, False, False]


def test_store_manager_does_not_see_payments(db):
    store = StoreFactory()
    manager = UserFactory()
    MembershipFactory(user=manager, brand=store.brand, store=store, role=StaffRole.STORE_MANAGER)

    assert PaymentTransactionAdmin(PaymentTransaction, admin.site).has_view_permission(request_for(manager)) is False


def test_reconcile_tasks_take_ids(brand, wxpay, sim_control, receiver):
    started = payment_start(order_ref="O-T1", brand_id=brand.id, amount=Decimal("8.00"), description="d")
    payment_id = PaymentTransaction.objects.get().pk

    unpaid = payment_reconcile_task.delay(payment_id).get()
    sim_control.pay(started["out_trade_no"], notify=False)
    recorded = payment_reconcile_task.delay(payment_id).get()
    again = payment_reconcile_task.delay(payment_id).get()
    refund = refund_start(order_ref="O-T1", refund_ref="RF", amount=Decimal("8.00"), reason="r")
    receiver.next()  # the REFUND.SUCCESS notify, ignored here: reconciliation finds it instead

    assert (unpaid, recorded, again) == (False, True, False)
    assert refund_reconcile_task.delay(refund.pk).get() is True
    assert PaymentRefund.objects.get().status == "succeeded"
    assert PaymentTransaction.objects.get().status == "refunded"
    assert payment_reconcile_task.delay(999999).get() is False
