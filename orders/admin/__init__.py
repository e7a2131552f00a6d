"""The orders admin: the order pages with their transition buttons, and the audit records.

Split in modules: ``orders`` (order list and page), ``transitions`` (the
buttons and their POST handler) and ``records`` (lines, discounts, events and
day sequences, all read-only).
"""

from orders.admin import orders, records  # noqa: F401  (registers the admins)
