from django.core.management.base import BaseCommand, CommandError

from inventory.models import Stock
from inventory.services import stock_ledger_mismatches


class Command(BaseCommand):
    help = "Verify that every stock level equals the sum of its ledger movements."

    def handle(self, *args, **options):
        total = Stock.objects.count()
        mismatches = stock_ledger_mismatches()
        for row in mismatches:
            self.stderr.write(
                f"store {row['store_id']} sku {row['sku_id']}: on hand {row['on_hand']} != ledger {row['ledger']}"
            )
        if mismatches:
            raise CommandError(f"{len(mismatches)} of {total} stock rows do not match their ledger")
        self.stdout.write(self.style.SUCCESS(f"{total} stock rows checked: on hand = sum of movements for all"))
