"""Two changes for the jobs that write every holder's rows (``bench/jobs.py``):

* ``ledger_account`` loses the ``varchar_pattern_ops`` twin Django adds to the unique index
  on ``public_id``. Nothing looks public ids up by prefix (the admin's search is a
  case-insensitive substring match, which neither index serves; the explorer looks them up
  whole, through the unique index), and public ids are random: each new account wrote one
  more entry at a random place of a second index as large as the table's primary key. The
  first airdrop, which opens 1,000,000 SHARED wallets, spent 16 of its 45 s there.
* ``ledger_lot`` gets ``fillfactor = 80``: a spend or an expiry changes ``remaining`` in
  place, and with room on the page that is a HOT update (no entry in the lot's three
  indexes). It applies to pages written from now on.
"""

from django.db import migrations

LIKE_INDEX = "ledger_account_public_id_0a55f09e_like"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {LIKE_INDEX}")
        schema_editor.execute("ALTER TABLE ledger_lot SET (fillfactor = 80)")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {LIKE_INDEX} "
                              "ON ledger_account (public_id varchar_pattern_ops)")
        schema_editor.execute("ALTER TABLE ledger_lot RESET (fillfactor)")


class Migration(migrations.Migration):

    dependencies = [
        ("ledger", "0009_cheaper_posting_call"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
