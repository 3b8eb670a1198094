from datetime import date

from django.core.management.base import BaseCommand, CommandError

from alliance.errors import DomainError
from points.airdrop import CHUNK_HOLDERS, airdrop_run_for_date
from points.jobs import alliance_today


class Command(BaseCommand):
    help = ("Run the daily airdrop of a date (default: today in the alliance's time zone). "
            "A date that is done changes nothing; a crashed run resumes.")

    def add_arguments(self, parser):
        parser.add_argument("--date", type=date.fromisoformat, default=None,
                            help="YYYY-MM-DD (default: today)")
        parser.add_argument("--chunk", type=int, default=CHUNK_HOLDERS,
                            help="holders per ledger transaction (default %(default)s)")

    def handle(self, *args, **options):
        day = options["date"] or alliance_today()
        try:
            run = airdrop_run_for_date(day=day, chunk_holders=options["chunk"])
        except (DomainError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        counts = run.counts
        self.stdout.write(self.style.SUCCESS(
            f"airdrop {day}: {run.status}; {counts.get('holders', 0)} holder(s), "
            f"{counts.get('transactions', 0)} transaction(s) posted by this run's attempts, "
            f"snapshot {counts.get('snapshot_sha256', '-')}"
        ))
