"""The alliance's own assets exist from the start: every feature refers to them by code."""

from decimal import Decimal

from django.db import migrations

ASSETS = [
    {"code": "SHARED", "family": "shared", "name_zh": "共享积分", "name_en": "Shared point",
     "description": "Used for merchant deposits, settlement between merchants and the daily "
                    "airdrop.", "scale": 2, "units_per_cny": Decimal("1"), "transferable": True},
    {"code": "SV", "family": "share_value", "name_zh": "共享值", "name_en": "Share value",
     "description": "A non-transferable accrual that entitles its holder to a share of the "
                    "daily airdrop.", "scale": 2, "units_per_cny": Decimal("1"),
     "transferable": False},
    {"code": "ALLY", "family": "alliance", "name_zh": "联盟积分", "name_en": "Alliance point",
     "description": "The members' governance and reward point, minted yearly by inflation.",
     "scale": 2, "units_per_cny": Decimal("1"), "transferable": True},
]


def create(apps, schema_editor):
    Asset = apps.get_model("ledger", "Asset")
    for spec in ASSETS:
        Asset.objects.get_or_create(code=spec["code"], defaults=spec)


def remove(apps, schema_editor):
    apps.get_model("ledger", "Asset").objects.filter(
        code__in=[a["code"] for a in ASSETS], accounts__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_posting_engine")]

    operations = [migrations.RunPython(create, remove)]
