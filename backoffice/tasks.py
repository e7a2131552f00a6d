from celery import shared_task

from backoffice.rollups import sales_rollups_refresh


@shared_task(name="backoffice.sales_rollups")
def sales_rollups_task() -> dict:
    """Periodic: the dashboard's figures for the days whose orders changed since the last run."""
    return sales_rollups_refresh()
