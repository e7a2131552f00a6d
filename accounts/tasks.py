from celery import shared_task

from accounts.services import login_codes_purge


@shared_task(name="accounts.purge_login_codes")
def purge_login_codes_task() -> int:
    return login_codes_purge()
