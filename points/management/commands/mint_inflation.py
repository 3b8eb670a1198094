from django.core.management.base import BaseCommand, CommandError

from alliance.errors import DomainError
from alliance.inflation import inflation_run_for_year
from points.jobs import alliance_today


class Command(BaseCommand):
    help = ("Mint a year's ALLY inflation (default: last year) and share it among the members "
            "by the checkpoints they cosigned. A year that is done changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, default=None)

    def handle(self, *args, **options):
        year = options["year"] or alliance_today().year - 1
        try:
            run = inflation_run_for_year(year=year)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        counts = run.counts
        self.stdout.write(self.style.SUCCESS(
            f"inflation {year}: {run.status}; minted {counts.get('minted', 0)} ALLY minor units "
            f"to {counts.get('members', 0)} member(s) for {counts.get('checkpoints', 0)} "
            "cosigned checkpoint(s)"
        ))
