"""The dashboard's exports: the orders and the summary of a selection, as CSV (UTF-8 with a BOM,
so that Excel reads the Chinese) or Excel (openpyxl, write-only: rows go to a temporary file,
not memory). Both stream or build from querysets read in chunks; the columns are the same in
both formats."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator

from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from django.utils.translation import gettext as _

from backoffice.dashboard import SUMS, DashboardFilter, Figures, dashboard_order_rows, dashboard_summary_rows
from orders.models import Channel, OrderType
from orders.status_map import status_label

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def order_columns() -> list[str]:
    return [_("Order number"), _("Business date"), _("Day number"), _("Placed at"), _("Store code"), _("Store"),
            _("Channel"), _("Platform order id"), _("Order type"), _("Status"), _("Subtotal"), _("Discount"),
            _("Delivery fee"), _("Packaging fee"), _("Total"), _("Paid"), _("Refunded"), _("Accepted at"),
            _("Ready at"), _("Completed at"), _("Cancelled at")]


def order_rows(*, selection: DashboardFilter) -> Iterator[list]:
    channels, types = dict(Channel.choices), dict(OrderType.choices)
    for order in dashboard_order_rows(selection=selection).iterator(chunk_size=2000):
        yield [order.order_no, order.business_date.isoformat(), order.day_seq, _local(order.placed_at),
               order.store.code, order.store.name, str(channels.get(order.channel, order.channel)),
               order.channel_order_id or "", str(types.get(order.order_type, order.order_type)),
               status_label(order_type=order.order_type, status=order.status, audience="merchant"),
               order.subtotal, order.discount_total, order.delivery_fee, order.packaging_fee, order.total,
               order.paid_amount, order.refunded_amount, _local(order.accepted_at), _local(order.ready_at),
               _local(order.completed_at), _local(order.cancelled_at)]


def summary_columns() -> list[str]:
    return [_("Business date"), _("Store code"), _("Store"), _("Channel"), _("Orders"), _("Takings"),
            _("Refunded orders"), _("Refunds"), _("Net takings"), _("Average ticket"), _("Refund rate (%)"),
            _("Cancelled after payment"), _("Average minutes to accept"), _("Average minutes to prepare")]


def summary_rows(*, selection: DashboardFilter) -> Iterator[list]:
    channels = dict(Channel.choices)
    for row in dashboard_summary_rows(selection=selection).iterator(chunk_size=2000):
        figures = Figures.of({name: row[name] for name in SUMS})
        yield [row["business_date"].isoformat(), row["store__code"], row["store__name"],
               str(channels.get(row["channel"], row["channel"])), figures.orders, figures.takings,
               figures.refunded_orders, figures.refunded, figures.net, figures.average_ticket, figures.refund_rate,
               figures.cancelled, figures.accept_minutes if figures.accept_minutes is not None else "",
               figures.prep_minutes if figures.prep_minutes is not None else ""]


class _Echo:
    def write(self, value):
        return value


def csv_stream(*, columns: list[str], rows: Iterator[list]) -> Iterator[str]:
    """CSV lines one by one (for a StreamingHttpResponse), the first with a BOM."""
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(columns)
    for row in rows:
        yield writer.writerow(row)


def xlsx_bytes(*, title: str, columns: list[str], rows: Iterator[list]) -> bytes:
    """One sheet: a bold header row, then the rows (numbers as numbers)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    bold = Font(bold=True)
    header = []
    for name in columns:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    with tempfile.TemporaryFile() as buffer:
        workbook.save(buffer)
        buffer.seek(0)
        return buffer.read()

