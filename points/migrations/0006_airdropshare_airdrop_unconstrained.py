"""The snapshot's rows lose their foreign-key constraint to the airdrop: it was deferred, so
freezing a snapshot of 1,000,000 holders queued 1,000,000 checks that ran one by one at
commit (6 s, as long as computing the split). The rows are written once, in the database
transaction that creates their airdrop, which is never deleted (PROTECT)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("points", "0005_voucher_used_store"),
    ]

    operations = [
        migrations.AlterField(
            model_name="airdropshare",
            name="airdrop",
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name="shares", to="points.airdrop"),
        ),
    ]
