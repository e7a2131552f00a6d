"""Recompute the dashboard's figures from the orders: after an upgrade (the first run of the
``sales-rollups`` job does the same, unattended), or after orders were repaired by hand."""

import datetime

from django.core.management.base import BaseCommand, CommandError

from backoffice.rollups import sales_rollups_rebuild
from core.progress import progress_write


class Command(BaseCommand):
    help = "Recompute the dashboard's sales rollups for every business day with orders (or a range)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", help="first business date, YYYY-MM-DD (default: the first)")
        parser.add_argument("--to", dest="date_to", help="last business date, YYYY-MM-DD (default: the last)")

    def handle(self, *args, date_from=None, date_to=None, **options):
        try:
            start = datetime.date.fromisoformat(date_from) if date_from else None
            end = datetime.date.fromisoformat(date_to) if date_to else None
        except ValueError as exc:
            raise CommandError(f"dates are YYYY-MM-DD: {exc}") from None
        if start and end and start > end:
            raise CommandError("--from is after --to")

        def progress(done: int, total: int, day: datetime.date) -> None:
            progress_write(self.stdout, done=done, total=total, what=f"days ({day.isoformat()})", steps=10)

        result = sales_rollups_rebuild(date_from=start, date_to=end, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"{result['days']} business days recomputed, {result['rows']} rows written"))
