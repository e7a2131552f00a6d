"""The status mapping table and the machines, rendered for people (page and docs)."""

from orders.models import OrderStatus, OrderType
from orders.models.machines import machine_graph, machine_states
from orders.status_map import AUDIENCE_LABELS, AUDIENCES, status_view


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
