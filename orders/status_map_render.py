"""The status mapping table and the machines, rendered for people (page and docs)."""

from django.utils.translation import gettext

from orders.models import OrderRefundState, OrderStatus, OrderType
from orders.models.machines import machine_graph, machine_states
from orders.status_map import (
    AUDIENCE_LABELS,
    AUDIENCES,
    NOT_SHOWN,
    REFUND_AUDIENCE_LABELS,
    refund_state_view,
    status_view,
)


def status_map_rows() -> list[dict]:
    rows = []
    for order_type in OrderType:
        for status in machine_states(order_type):
            view = status_view(order_type=order_type, status=status)
            rows.append({
                "order_type": order_type.value, "order_type_label": order_type.label,
                "status": status, "status_label": OrderStatus(status).label,
                "cells": [str(view.for_audience(a)) for a in AUDIENCES],
            })
    return rows


def status_map_markdown() -> str:
    header = ["Order type", "Status"] + [str(AUDIENCE_LABELS[a]) for a in AUDIENCES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in status_map_rows():
        lines.append("| " + " | ".join([row["order_type"], f"`{row['status']}`", *row["cells"]]) + " |")
    return "\n".join(lines)


def refund_state_rows() -> list[dict]:
    """One row per refund state (``REFUND_STATE_MAP``); a buyer cell with nothing shown reads "(not shown)"."""
    rows = []
    for state in OrderRefundState:
        view = refund_state_view(refund_state=state)
        cells = [str(view.for_audience(a)) for a in AUDIENCES]
        rows.append({"refund_state": state.value, "refund_state_label": state.label,
                     "cells": [cell if cell != NOT_SHOWN else gettext("(not shown)") for cell in cells]})
    return rows


def refund_state_markdown() -> str:
    header = ["Refund state"] + [str(REFUND_AUDIENCE_LABELS[a]) for a in AUDIENCES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in refund_state_rows():
        lines.append("| " + " | ".join([f"`{row['refund_state']}`", *row["cells"]]) + " |")
    return "\n".join(lines)


def machine_mermaid(order_type: str) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {OrderStatus.PENDING_PAYMENT.value}"]
    for source, action, target in machine_graph(order_type):
        lines.append(f"    {source} --> {target}: {action}")
    return "\n".join(lines)


def machine_table(order_type: str) -> str:
    lines = ["| From | Action | To |", "|---|---|---|"]
    for source, action, target in machine_graph(order_type):
        lines.append(f"| `{source}` | `{action}` | `{target}` |")
    return "\n".join(lines)
