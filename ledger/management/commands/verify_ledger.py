import sys

from django.core.management.base import BaseCommand

from ledger.verification import verify_ledger


class Command(BaseCommand):
    help = ("Recompute balances, lots and the transparency log from the journal; name every "
            "mismatch and exit non-zero on any.")

    def handle(self, *args, **options):
        failures = 0
        for name, problems in verify_ledger():
            if problems:
                failures += len(problems)
                self.stdout.write(self.style.ERROR(f"FAIL {name}: {len(problems)} problem(s)"))
                for problem in problems:
                    self.stdout.write(f"  {problem}")
            else:
                self.stdout.write(self.style.SUCCESS(f"ok   {name}"))
        if failures:
            self.stdout.write(self.style.ERROR(f"verify_ledger: {failures} problem(s) found"))
            sys.exit(1)
        self.stdout.write(self.style.SUCCESS("verify_ledger: the ledger is consistent"))
