"""Celery tasks of the merchants app: thin, they take ids and call one service."""

from celery import shared_task

from .models import MemberImport, Merchant


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=3, ignore_result=True)
def member_import_run_task(member_import_id: int) -> None:
    """Import a started member file; idempotent (resumes after the last committed batch)."""
    from .imports import member_import_run

    if not MemberImport.objects.filter(pk=member_import_id).exists():
        return
    member_import_run(member_import_id=member_import_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def claims_expire_task() -> None:
    """Daily: unclaimed imported balances past their expiry go to breakage."""
    from .imports import claims_expire

    claims_expire()


@shared_task(ignore_result=True)
def deposit_levels_check() -> None:
    """Every few minutes: alert and mail on deposits that fell below their levels (also when
    the council raises the minimum)."""
    from .services import deposit_level_check

    for merchant in Merchant.objects.filter(
        status__in=[Merchant.Status.ACTIVE, Merchant.Status.LEAVING]
    ).order_by("pk"):
        deposit_level_check(merchant=merchant)
