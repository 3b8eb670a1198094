"""The journal row's ``kind`` loses its two indexes (the btree and its LIKE twin): nothing looks
journal rows up by kind alone, and every posting call wrote both."""

from importlib import import_module

from django.db import migrations, models


def restore_sqlite_triggers(apps, schema_editor):
    # SQLite alters ledger_transaction by rebuilding it, which drops its triggers: the demo's
    # append-only journal gets them back.
    if schema_editor.connection.vendor == "sqlite":
        for statement in import_module("ledger.migrations.0002_posting_engine").SQLITE_APPEND_ONLY:
            schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ("ledger", "0007_slimmer_journal"),
    ]

    operations = [
        migrations.AlterField(
            model_name="transaction",
            name="kind",
            field=models.CharField(max_length=32, verbose_name="kind"),
        ),
        migrations.RunPython(restore_sqlite_triggers, migrations.RunPython.noop),
    ]
