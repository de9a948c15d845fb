"""Beat's directory check (dashboard.directory.directory_accounts_check)."""

from celery import shared_task

from dashboard.directory import directory_accounts_check


@shared_task(name="dashboard.tasks.directory_accounts_check")
def directory_accounts_check_task() -> dict:
    return directory_accounts_check()
