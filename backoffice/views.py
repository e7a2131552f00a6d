from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render
from django.utils.translation import gettext as _

from orders.status_map_render import refund_state_rows, status_map_rows


@staff_member_required
def status_map_view(request):
    """The status mapping table and the refund states, for everyone who works in the back-office."""
    return render(request, "backoffice/status_map.html", {"rows": status_map_rows(), "refund_rows": refund_state_rows(),
                                                          "title": _("Status mapping table")})
