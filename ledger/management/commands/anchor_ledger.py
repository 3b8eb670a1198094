from django.core.management.base import BaseCommand, CommandError

from alliance.errors import DomainError
from ledger import log_services


class Command(BaseCommand):
    help = ("Anchor now: give log indexes to every committed transaction not yet in the "
            "transparency log and sign checkpoints (the beat schedule does this every minute).")

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=log_services.DEFAULT_BATCH,
                            help="leaves per checkpoint (default %(default)s)")
        parser.add_argument("--full", action="store_true",
                            help="scan the whole journal, not only since the last horizon")

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        try:
            result = log_services.log_anchor(batch_size=options["batch_size"],
                                             full_scan=options["full"])
        except DomainError as exc:
            raise CommandError(f"{exc.message} {exc.details or ''}".strip()) from exc
        if result.checkpoint is None:
            self.stdout.write("nothing to anchor")
            return
        self.stdout.write(self.style.SUCCESS(
            f"anchored {result.leaves} transaction(s); tree size {result.checkpoint.size}"
        ))
