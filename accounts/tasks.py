from celery import shared_task

from accounts.services import login_codes_purge
from accounts.store_state import store_hours_sync


@shared_task(name="accounts.purge_login_codes")
def purge_login_codes_task() -> int:
    return login_codes_purge()


@shared_task(name="accounts.store_hours")
def store_hours_task() -> int:
    """Periodic: stores the business hours open or close now are opened or closed on the platforms."""
    return len(store_hours_sync())
