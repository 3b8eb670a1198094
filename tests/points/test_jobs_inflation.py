"""Yearly ALLY inflation (SPEC §4.7): minted at the rate, shared by cosigned checkpoints."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from alliance.inflation import InflationTooEarly, inflation_run_for_year
from ledger import services as ledger
from ledger.models import Account, Checkpoint, Cosignature, Transaction, WitnessKey
from merchants.models import Merchant
from points.models import JobRun
from tests.factories import MerchantFactory
from tests.points.jobs_helpers import alliance_assets, ledger_consistent

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
_sizes = iter(range(1, 10_000))


@pytest.fixture(autouse=True)
def _assets():
    alliance_assets()


def _checkpoint(at: datetime) -> Checkpoint:
    return Checkpoint.objects.create(size=next(_sizes), root_hash=b"\0" * 32, note="note",
                                     supply={}, horizon=at, created_at=at)


def _key(merchant, name: str) -> WitnessKey:
    return WitnessKey.objects.create(name=name, vkey=f"{name}+00000000+key", key_id=len(name),
                                     merchant=merchant, status=WitnessKey.Status.APPROVED)


def _cosign(key: WitnessKey, checkpoint: Checkpoint) -> None:
    Cosignature.objects.create(checkpoint=checkpoint, witness=key, line=f"— {key.name} sig",
                               timestamp=int(checkpoint.created_at.timestamp()))


def _ally(merchant) -> int:
    account = Account.objects.filter(asset__code="ALLY", kind="wallet",
                                     holder_key=f"m:{merchant.pk}").first()
    return account.balance if account else 0


def _hold_ally(merchant, amount: int) -> None:
    ally = ledger.alliance_asset("ALLY")
    wallet = ledger.account_get_or_create(asset=ally, kind=Account.Kind.WALLET, merchant=merchant)
    ledger.transaction_post(kind="issue", client="test", idempotency_key=f"ally-{merchant.pk}",
                            legs=[ledger.Leg(ledger.issuance_account(ally), -amount),
                                  ledger.Leg(wallet, amount)])


def test_the_mint_is_shared_by_checkpoints_cosigned_in_the_year_and_the_rest_forfeit():
    # given 1,000,000 ALLY minor units in circulation, and four members: A cosigned 3
    # checkpoints of 2025 (two of them with both its keys), B one, C none, D one but has left
    a, b, c, d = (MerchantFactory() for _ in range(4))
    _hold_ally(c, 1_000_000)
    in_year = [_checkpoint(datetime(2025, m, 1, 12, tzinfo=SHANGHAI)) for m in (1, 6, 12)]
    before = _checkpoint(datetime(2024, 12, 31, 23, 59, tzinfo=SHANGHAI))
    after = _checkpoint(datetime(2026, 1, 1, 0, 1, tzinfo=SHANGHAI))
    a1, a2, b1, d1 = _key(a, "a1"), _key(a, "a22"), _key(b, "b333"), _key(d, "d4444")
    for checkpoint in in_year:
        _cosign(a1, checkpoint)
    _cosign(a2, in_year[0])
    _cosign(a2, in_year[1])
    _cosign(b1, in_year[2])
    _cosign(b1, before)
    _cosign(b1, after)
    _cosign(d1, in_year[0])
    Merchant.objects.filter(pk=d.pk).update(status=Merchant.Status.LEFT)

    # when the 2025 inflation runs (default rate 2%)
    run = inflation_run_for_year(year=2025)

    # then 20,000 were minted and split 3:1 between A and B; C and D got nothing
    assert (_ally(a), _ally(b), _ally(c), _ally(d)) == (15_000, 5_000, 1_000_000, 0)
    assert run.counts["minted"] == 20_000 and run.counts["members"] == 2
    assert run.counts["checkpoints"] == 4 and run.counts["basis"] == "supply"
    txn = Transaction.objects.get(kind="inflation")
    assert txn.metadata["checkpoints"] == {str(a.pk): 3, str(b.pk): 1}
    assert ledger_consistent() == []


def test_with_no_ally_yet_the_genesis_amount_is_minted_and_split_exactly(settings):
    settings.ALLY_GENESIS_SUPPLY = "1000.01"
    a, b, c = (MerchantFactory() for _ in range(3))
    checkpoint = _checkpoint(datetime(2025, 5, 5, tzinfo=SHANGHAI))
    for merchant, name in ((a, "ka"), (b, "kbb"), (c, "kccc")):
        _cosign(_key(merchant, name), checkpoint)

    run = inflation_run_for_year(year=2025)

    # 100,001 minor units in three equal shares: the extra unit to the lowest merchant id
    assert (_ally(a), _ally(b), _ally(c)) == (33_334, 33_334, 33_333)
    assert run.counts["basis"] == "genesis"


def test_a_year_mints_once_and_not_before_it_ends():
    a = MerchantFactory()
    _cosign(_key(a, "k"), _checkpoint(datetime(2025, 5, 5, tzinfo=SHANGHAI)))

    inflation_run_for_year(year=2025)
    call_command("mint_inflation", "--year", "2025")
    inflation_run_for_year(year=2025)

    assert Transaction.objects.filter(kind="inflation").count() == 1
    assert JobRun.objects.get(job="inflation", period="2025").attempts == 1
    with pytest.raises(InflationTooEarly):
        inflation_run_for_year(year=date.today().year)


def test_a_year_nobody_witnessed_mints_nothing():
    MerchantFactory()
    run = inflation_run_for_year(year=2024)
    assert run.status == JobRun.Status.DONE
    assert run.counts["minted"] == 0
    assert not Transaction.objects.filter(kind="inflation").exists()
