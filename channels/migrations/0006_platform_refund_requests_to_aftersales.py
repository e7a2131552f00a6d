"""The platform refund applications live in aftersales now (its migration 0002 copied them)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("channels", "0005_binding_base_url_allowed_hosts"),
        ("aftersales", "0002_platform_refund_requests"),
    ]

    operations = [migrations.DeleteModel(name="PlatformRefundRequest")]
