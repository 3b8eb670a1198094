import sys

from django.core.management.base import BaseCommand

from ledger import witness


class Command(BaseCommand):
    help = ("Witness the transparency log at --url: check the newest checkpoint's signature "
            "and its consistency with the one this witness last cosigned, then cosign it. "
            "Exits 2, keeping the evidence, when the log was rolled back or rewritten.")

    def add_arguments(self, parser):
        witness.add_arguments(parser)

    def handle(self, *args, **options):
        status = witness.run_cli(
            url=options["url"], key=options["key"], state=options["state"],
            log_key=options["log_key"], evidence_dir=options["evidence_dir"],
            timeout=options["timeout"], out=self.stdout.write, err=self.stderr.write,
        )
        if status:
            sys.exit(status)
