from datetime import date

from django.core.management.base import BaseCommand, CommandError

from alliance.errors import DomainError
from points.expiry import CHUNK_ACCOUNTS, points_expire_for_date
from points.jobs import alliance_today


class Command(BaseCommand):
    help = ("Move every wallet lot due at the start of a date (default: today) to its "
            "issuer's expired account. A date that is done changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--date", type=date.fromisoformat, default=None,
                            help="YYYY-MM-DD (default: today)")
        parser.add_argument("--chunk", type=int, default=CHUNK_ACCOUNTS,
                            help="wallets per ledger transaction (default %(default)s)")

    def handle(self, *args, **options):
        day = options["date"] or alliance_today()
        try:
            run = points_expire_for_date(day=day, chunk_accounts=options["chunk"])
        except (DomainError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        counts = run.counts
        expired = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in sorted(counts.items())
                            if k.startswith("expired:")) or "nothing"
        self.stdout.write(self.style.SUCCESS(
            f"expiry {day}: {run.status}; {counts.get('accounts', 0)} wallet(s), "
            f"{counts.get('lots', 0)} lot(s); expired (minor units): {expired}"
        ))
