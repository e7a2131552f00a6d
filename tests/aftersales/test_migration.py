"""The platform refund applications recorded before after-sales existed become
after-sales requests (aftersales 0002): nothing accepted is lost, open ones still hold
their orders."""

from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

BEFORE = [("aftersales", "0001_initial"), ("channels", "0005_binding_base_url_allowed_hosts")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_platform_refund_applications_become_after_sales_requests():
    old = migrate(BEFORE)
    try:
        Brand, Store, Order = (old.get_model("accounts", "Brand"), old.get_model("accounts", "Store"),
                               old.get_model("orders", "Order"))
        brand = Brand.objects.create(code="mig", name="迁移")
        store = Store.objects.create(brand=brand, code="s1", name="一号店")
        orders = [Order.objects.create(
            order_no=f"M{i}", brand=brand, store=store, channel="meituan", channel_order_id=f"mt{i}",
            order_type="delivery", status="delivered", total=Decimal("30.00"), paid_amount=Decimal("30.00"),
            business_date="2026-12-01", day_seq=i, placed_at="2026-12-01T12:00:00+08:00") for i in (1, 2)]
        Old = old.get_model("channels", "PlatformRefundRequest")
        Old.objects.create(order=orders[0], platform="meituan", refund_id="R1", kind="full", amount="30.00",
                           reason="少送了", status="applied")
        Old.objects.create(order=orders[1], platform="meituan", refund_id="R2", kind="partial", amount="12.00",
                           lines=[{"name": "米饭", "quantity": 1, "amount": "12.00"}], reason="凉了",
                           status="rejected", decided_by="staff:7 店长", decision_reason="已按时送达")
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from aftersales.models import AfterSalesEvent, AfterSalesRequest
    from orders.models import Order as CurrentOrder

    rows = list(AfterSalesRequest.objects.order_by("platform_refund_id").values_list(
        "order__order_no", "requested_by", "kind", "scope", "status", "amount", "platform_refund_id", "reason",
        "decision_reason", "platform_lines"))
    assert rows == [
        ("M1", "platform", "refund", "order", "requested", Decimal("30.00"), "R1", "少送了", "", []),
        ("M2", "platform", "refund", "lines", "rejected", Decimal("12.00"), "R2", "凉了", "已按时送达",
         [{"name": "米饭", "quantity": 1, "amount": "12.00"}])]
    assert sorted(CurrentOrder.objects.values_list("order_no", "after_sales_open")) == [("M1", True), ("M2", False)]
    assert AfterSalesEvent.objects.filter(action="migrate").count() == 2
