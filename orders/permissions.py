"""Which staff role may trigger which order action (admin and back-office API).

No refund here: staff refund through after-sales (a request created and approved
there; the order's ``refund`` is a system step of it)."""

from accounts.models import StaffRole
from orders.models import OrderAction as A

_FLOOR = {A.ACCEPT, A.MARK_READY, A.DISPATCH, A.DELIVER, A.PICK_UP, A.SERVE, A.REDEEM}
STAFF_ROLE_ACTIONS: dict[str, frozenset[str]] = {
    StaffRole.CLERK: frozenset(_FLOOR),
    StaffRole.STORE_MANAGER: frozenset(_FLOOR | {A.REJECT, A.CANCEL}),
    StaffRole.BRAND_ADMIN: frozenset(_FLOOR | {A.REJECT, A.CANCEL, A.COMPLETE, A.ISSUE}),
    "superuser": frozenset(_FLOOR | {A.REJECT, A.CANCEL, A.COMPLETE, A.ISSUE}),
}


def staff_may(*, roles: frozenset[str], action: str) -> bool:
    return any(action in STAFF_ROLE_ACTIONS.get(role, frozenset()) for role in roles)
