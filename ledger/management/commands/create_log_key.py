from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ledger import log_services, note


class Command(BaseCommand):
    help = ("Create an Ed25519 signer key: the log's (written to LOG_SIGNER_KEY_FILE unless "
            "--out says otherwise), or with --witness a witness's key for `manage.py witness`. "
            "Prints the verifier key to publish.")

    def add_arguments(self, parser):
        parser.add_argument("--out", help="file to write the private key to")
        parser.add_argument("--name", help="key name (default: LOG_ORIGIN for the log key)")
        parser.add_argument("--witness", action="store_true",
                            help="a witness key (cosignature/v1, type 0x04); needs --out, --name")
        parser.add_argument("--force", action="store_true", help="overwrite an existing file")

    def handle(self, *args, **options):
        if options["witness"]:
            if not options["out"] or not options["name"]:
                raise CommandError("a witness key needs --out and --name")
            path = Path(options["out"])
            if path.exists() and not options["force"]:
                raise CommandError(f"{path} exists; --force to overwrite")
            try:
                skey, vkey = note.generate_signer(options["name"], note.ALG_COSIGNATURE_V1)
            except note.NoteError as exc:
                raise CommandError(str(exc)) from exc
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(skey + "\n", encoding="utf-8")
            path.chmod(0o600)
        else:
            path = Path(options["out"] or settings.LOG_SIGNER_KEY_FILE)
            try:
                vkey = log_services.log_key_create(path=path, name=options["name"],
                                                   overwrite=options["force"])
            except FileExistsError:
                raise CommandError(f"{path} exists; --force to overwrite") from None
            except note.NoteError as exc:
                raise CommandError(str(exc)) from exc
        self.stderr.write(f"private key written to {path}")
        self.stdout.write(vkey)
