"""The platform refund applications (channels.PlatformRefundRequest) become
after-sales requests: one record for every channel. channels keeps only the
mapping to and from the platforms (its model goes in channels 0006)."""

from django.db import migrations

STATUS = {"applied": "requested", "agreed": "refunded", "rejected": "rejected", "withdrawn": "withdrawn"}


def forwards(apps, schema_editor):
    Old = apps.get_model("channels", "PlatformRefundRequest")
    Request = apps.get_model("aftersales", "AfterSalesRequest")
    Event = apps.get_model("aftersales", "AfterSalesEvent")
    Order = apps.get_model("orders", "Order")
    open_orders = set()
    for old in Old.objects.select_related("order").order_by("id").iterator():
        status = STATUS.get(old.status, "requested")
        request = Request.objects.create(
            brand_id=old.order.brand_id, store_id=old.order.store_id, order_id=old.order_id, kind="refund",
            scope="order" if old.kind == "full" else "lines", status=status, amount=old.amount,
            reason_code="platform", reason=old.reason, requested_by="platform", requester_id=old.platform,
            requester_name=old.platform, platform_refund_id=old.refund_id, platform_lines=old.lines or [],
            decided_by=old.decided_by, decided_at=old.decided_at, decision_reason=old.decision_reason,
            refunded_at=old.decided_at if status == "refunded" else None,
        )
        Request.objects.filter(pk=request.pk).update(created_at=old.created_at, updated_at=old.updated_at)
        Event.objects.create(request=request, action="migrate", from_status="", to_status=status,
                             actor_kind="system", actor_id="migration", actor_name="migration",
                             data={"platform_refund_request_id": old.pk, "status": old.status})
        if status == "requested":
            open_orders.add(old.order_id)
    Order.objects.filter(pk__in=open_orders).update(after_sales_open=True)


class Migration(migrations.Migration):

    dependencies = [
        ("aftersales", "0001_initial"),
        ("channels", "0005_binding_base_url_allowed_hosts"),
        ("orders", "0005_order_refund_state"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
