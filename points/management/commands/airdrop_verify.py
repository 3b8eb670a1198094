import json
import sys
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from points.airdrop import airdrop_verify


class Command(BaseCommand):
    help = ("Recompute a day's airdrop split from its published snapshot and compare it with "
            "the postings; exit non-zero on any difference.")

    def add_arguments(self, parser):
        parser.add_argument("--date", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
        parser.add_argument("--file", default=None,
                            help="a snapshot downloaded from /api/v1/airdrops/<date>/snapshot "
                                 "(default: the one the portal publishes)")

    def handle(self, *args, **options):
        snapshot = None
        if options["file"]:
            try:
                with open(options["file"], encoding="utf-8") as handle:
                    snapshot = json.load(handle)
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read {options['file']}: {exc}") from exc
        check = airdrop_verify(day=options["date"], snapshot=snapshot)
        for problem in check.problems[:100]:
            self.stdout.write(f"  {problem}")
        if len(check.problems) > 100:
            self.stdout.write(f"  ... and {len(check.problems) - 100} more")
        summary = (f"{check.holders} holder(s), {check.recipients} recipient(s), "
                   f"{check.shared_total} SHARED minor units")
        if check.capped:
            summary += f", {check.capped} cut capped at the SV left when posted"
        if not check.ok:
            self.stdout.write(self.style.ERROR(
                f"airdrop_verify {options['date']}: {len(check.problems)} problem(s); {summary}"))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS(
            f"airdrop_verify {options['date']}: the postings match the snapshot; {summary}"))
