"""Yearly alliance-point inflation (SPEC §4.7): ALLY minted at the inflation rate and shared
among the members that witnessed the transparency log that year.

* Mint: ``floor(inflation_rate × supply)`` in minor units, where supply is the ALLY held in
  bounded accounts (wallets) when the run starts. With no ALLY in existence yet, the first
  mint is the genesis amount ``settings.ALLY_GENESIS_SUPPLY`` (major units), since a rate of
  nothing is nothing.
* Split: by the number of distinct checkpoints each member merchant's witness keys cosigned
  in the calendar year (alliance time zone), largest remainder with ties to the lower
  merchant id, so the parts sum to exactly the mint. Members that cosigned nothing, and
  merchants that have left, forfeit: their weight is zero. Cosignatures are only ever
  stored for approved keys (``ledger.log_services``), so every one counts.
* Once per year: ``JobRun`` per year, and the ledger key ``inflation:<year>``.

The members are a few hundred at most, so the mint is one ordinary ``transaction_post``.
"""

from datetime import date
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import transaction as db_transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ledger import services as ledger
from ledger.models import Account, Cosignature, Transaction
from merchants.models import Merchant
from points.allocation import largest_remainder
from points.jobs import day_start, job_run, progress_step, progress_total
from points.models import JobRun

from .errors import DomainError
from .parameters import parameter_get

KIND = "inflation"


class InflationTooEarly(DomainError):
    code = "inflation_too_early"
    default_message = _("A year's inflation is minted once the year is over.")


def inflation_year_bounds(year: int):
    return day_start(date(year, 1, 1)), day_start(date(year + 1, 1, 1))


def inflation_witness_counts(*, year: int) -> dict[int, int]:
    """{merchant id: distinct checkpoints its witness keys cosigned in ``year``}, for members
    that have not left; merchants that cosigned nothing are absent."""
    start, end = inflation_year_bounds(year)
    rows = (Cosignature.objects
            .filter(checkpoint__created_at__gte=start, checkpoint__created_at__lt=end,
                    witness__merchant__isnull=False)
            .exclude(witness__merchant__status=Merchant.Status.LEFT)
            .values("witness__merchant")
            .annotate(checkpoints=Count("checkpoint", distinct=True)))
    return {row["witness__merchant"]: row["checkpoints"] for row in rows}


def inflation_run_for_year(*, year: int) -> JobRun:
    """Mint ``year``'s ALLY once the year is over, once."""
    if timezone.now() < inflation_year_bounds(year)[1]:
        raise InflationTooEarly(details={"year": year})
    return job_run(job=JobRun.Job.INFLATION, period=str(year),
                   work=lambda run: _inflate(run, year))


def _inflate(run: JobRun, year: int) -> dict:
    key = f"inflation:{year}"
    progress_total(run, 1)
    if Transaction.objects.filter(client=ledger.SYSTEM_CLIENT, idempotency_key=key).exists():
        # A crash between the mint and the run's "done": the mint stands, with its counts.
        return run.counts
    ally = ledger.alliance_asset("ALLY")
    supply = (Account.objects.filter(asset=ally, bounded=True)
              .aggregate(total=Sum("balance"))["total"]) or 0
    rate = parameter_get("inflation_rate")
    if supply:
        minted = int((Decimal(supply) * rate).to_integral_value(rounding=ROUND_FLOOR))
        basis = "supply"
    else:
        minted = ally.to_minor(Decimal(str(settings.ALLY_GENESIS_SUPPLY)))
        basis = "genesis"
    weights = inflation_witness_counts(year=year)
    members = sorted(weights)
    parts = largest_remainder(minted, [weights[m] for m in members])
    counts = {"supply": supply, "rate": str(rate), "basis": basis, "members": len(members),
              "checkpoints": sum(weights.values()), "minted": sum(parts)}
    if not sum(parts):
        progress_step(run, 1, **{k: v for k, v in counts.items() if isinstance(v, int)})
        return {**run.counts, **counts}
    with db_transaction.atomic(durable=True):
        issuance = ledger.issuance_account(ally)
        merchants = Merchant.objects.in_bulk(members)
        legs = [ledger.Leg(issuance, -sum(parts))] + [
            ledger.Leg(ledger.account_get_or_create(asset=ally, kind=Account.Kind.WALLET,
                                                    merchant=merchants[merchant_id]), part)
            for merchant_id, part in zip(members, parts, strict=True) if part
        ]
        ledger.transaction_post(
            kind=KIND, legs=legs, client=ledger.SYSTEM_CLIENT, idempotency_key=key,
            metadata={"year": year, "rate": str(rate), "supply": supply, "basis": basis,
                      "minted": sum(parts),
                      "checkpoints": {str(m): weights[m] for m in members}},
        )
        progress_step(run, 1, **{k: v for k, v in counts.items() if isinstance(v, int)})
    return {**run.counts, **counts}
