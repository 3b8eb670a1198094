"""Provably fair lotteries (抽奖, SPEC §4.5).

How a draw is derived: anyone can redo this with the revealed seed (``lottery_verify``,
``manage.py lottery_verify`` and the public fairness page all call the functions below).

1. When the campaign opens, a 32-byte ``server_seed`` is drawn from the operating system's
   CSPRNG. Its commitment ``SHA-256(seed bytes)`` (hex) is published on the campaign's page
   and journalled in the ledger (``event.lottery.committed``, with the tiers' weights and
   stock) before any draw can happen. Tiers are frozen from then on.
2. A shopper's n-th draw in the campaign (``nonce`` = 1, 2, 3, …) computes
   ``digest = HMAC-SHA256(key=seed bytes, msg=f"{campaign_id}|{shopper_ref}|{nonce}")``
   where ``shopper_ref`` is the public (pseudonymous) id of the shopper's wallet of the
   campaign's point type, as the explorer shows it.
3. ``ticket = int.from_bytes(digest[:8], "big") % total_weight``; the tiers, in position
   order, cover consecutive ranges of ``weight`` tickets; the tier whose range holds the
   ticket is drawn. (The modulo bias is under total_weight / 2**64: negligible.)
4. A drawn tier with stock left gives its prize (points, a voucher for a catalog item, or a
   coupon text) and its stock falls by one in one conditional ``UPDATE … WHERE remaining > 0``,
   so parallel draws never give more prizes than the stock. A drawn tier with no stock left
   gives no prize (the fallback): the draw is recorded as ``out_of_stock``. A "no prize" tier
   gives nothing.
5. At close the seed is revealed (and journalled, ``event.lottery.revealed``).

The entry cost is charged through the ledger in the same transaction as the draw (retired to
the merchant's issuance); a refusal (closed campaign, low balance) changes nothing.
"""

import hashlib
import hmac
import secrets
from collections import Counter
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alliance.errors import DomainError
from ledger.errors import InsufficientBalance
from ledger.models import Account
from ledger.services import (
    SYSTEM_CLIENT,
    Leg,
    account_get_or_create,
    event_record,
    issuance_account,
    transaction_post,
)
from merchants.api_auth import TRADING_STATUSES
from merchants.models import Merchant

from .catalog import voucher_issue_prize
from .models import CatalogItem, LotteryCampaign, LotteryDraw, LotteryParticipant, PrizeTier
from .spending import (
    CampaignNotFound,
    SpendingConflict,
    brand_asset,
    key_check,
    ledger_key,
    shopper_client,
)

SEED_BYTES = 32
_CAMPAIGN_FOR_SHARE = 'SELECT 1 FROM "points_lotterycampaign" WHERE id = %s FOR SHARE'


class CampaignNotOpen(SpendingConflict):
    code = "campaign_not_open"
    default_message = _("This lottery is not open for draws.")


class CampaignNotDraft(SpendingConflict):
    code = "campaign_not_draft"
    default_message = _("Only a draft lottery can be changed or opened.")


class CampaignInvalid(DomainError):
    code = "campaign_invalid"
    default_message = _("The lottery is not complete.")


class _Replayed(Exception):
    pass


# --- the derivation (pure functions: the verifier uses exactly these) -------------------------


def seed_commitment(seed_hex: str) -> str:
    """SHA-256 of the seed's bytes, hex."""
    return hashlib.sha256(bytes.fromhex(seed_hex)).hexdigest()


def draw_message(campaign_id: int, shopper_ref: str, nonce: int) -> bytes:
    return f"{campaign_id}|{shopper_ref}|{nonce}".encode()


def draw_digest(seed_hex: str, campaign_id: int, shopper_ref: str, nonce: int) -> bytes:
    return hmac.new(bytes.fromhex(seed_hex), draw_message(campaign_id, shopper_ref, nonce),
                    hashlib.sha256).digest()


def draw_ticket(digest: bytes, total_weight: int) -> int:
    return int.from_bytes(digest[:8], "big") % total_weight


def tier_index(weights: list[int], ticket: int) -> int:
    """The position (0-based, in tier order) of the tier whose ticket range holds ``ticket``."""
    upper = 0
    for index, weight in enumerate(weights):
        upper += weight
        if ticket < upper:
            return index
    raise ValueError("ticket beyond the total weight")


# --- campaigns ---------------------------------------------------------------------------------


def campaign_create(*, merchant: Merchant, name_zh: str, name_en: str, entry_cost: int,
                    description: str = "") -> LotteryCampaign:
    """A draft campaign paid in the merchant's brand points (``entry_cost`` minor units)."""
    if type(entry_cost) is not int or entry_cost <= 0:
        raise CampaignInvalid(_("The entry cost must be more than zero."),
                              details={"entry_cost": "must be positive"})
    if not (name_zh.strip() or name_en.strip()):
        raise CampaignInvalid(_("Give the lottery a name."), details={"name": "required"})
    return LotteryCampaign.objects.create(
        merchant=merchant, name_zh=name_zh.strip(), name_en=name_en.strip(),
        description=description, asset=brand_asset(merchant), entry_cost=entry_cost,
    )


def _locked_draft(campaign: LotteryCampaign) -> LotteryCampaign:
    locked = LotteryCampaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.state != LotteryCampaign.State.DRAFT:
        raise CampaignNotDraft(details={"state": locked.state})
    return locked


@transaction.atomic
def tier_add(
    *, campaign: LotteryCampaign, label: str, kind: str, weight: int, stock: int | None = None,
    points: int | None = None, catalog_item: CatalogItem | None = None, coupon_text: str = "",
) -> PrizeTier:
    """Add a prize tier at the end of a draft campaign. A prize tier needs a stock; "no
    prize" has none. Points are the campaign's points; a voucher's item must be the
    merchant's own."""
    campaign = _locked_draft(campaign)
    problems = {}
    if type(weight) is not int or weight <= 0:
        problems["weight"] = "must be a positive whole number"
    if kind not in PrizeTier.Kind.values:
        problems["kind"] = "unknown"
    elif kind == PrizeTier.Kind.NOTHING:
        stock, points, catalog_item, coupon_text = None, None, None, ""
    elif type(stock) is not int or stock < 0:
        problems["stock"] = "required, zero or more"
    if kind == PrizeTier.Kind.POINTS and (type(points) is not int or points <= 0):
        problems["points"] = "must be positive"
    if kind != PrizeTier.Kind.POINTS:
        points = None
    if kind == PrizeTier.Kind.VOUCHER and (
            catalog_item is None or catalog_item.merchant_id != campaign.merchant_id):
        problems["catalog_item"] = "one of the merchant's items"
    if kind != PrizeTier.Kind.VOUCHER:
        catalog_item = None
    if kind == PrizeTier.Kind.COUPON and not coupon_text.strip():
        problems["coupon_text"] = "required"
    if not label.strip():
        problems["label"] = "required"
    if problems:
        raise CampaignInvalid(_("The prize tier is not complete."), details=problems)
    last = campaign.tiers.order_by("-position").values_list("position", flat=True).first()
    return PrizeTier.objects.create(
        campaign=campaign, position=(last or 0) + 1, label=label.strip(), kind=kind,
        weight=weight, stock=stock, remaining=stock, points=points, catalog_item=catalog_item,
        coupon_text=coupon_text.strip(),
    )


@transaction.atomic
def tier_remove(*, campaign: LotteryCampaign, tier_id: int) -> None:
    campaign = _locked_draft(campaign)
    campaign.tiers.filter(pk=tier_id).delete()


def _tier_summary(tiers) -> list[dict]:
    return [{"position": t.position, "kind": t.kind, "weight": t.weight, "stock": t.stock}
            for t in tiers]


@transaction.atomic
def campaign_open(*, campaign: LotteryCampaign) -> LotteryCampaign:
    """Draw the seed, publish and journal its commitment, open for draws (see the module
    docstring, step 1)."""
    campaign = _locked_draft(campaign)
    tiers = list(campaign.tiers.order_by("position"))
    if not tiers:
        raise CampaignInvalid(_("Add at least one prize tier before opening."),
                              details={"tiers": "none"})
    seed = secrets.token_hex(SEED_BYTES)
    commitment = seed_commitment(seed)
    posted = event_record(
        kind="event.lottery.committed",
        metadata={"campaign": campaign.pk, "merchant": campaign.merchant_id,
                  "asset": campaign.asset.code, "entry_cost": campaign.entry_cost,
                  "commitment": commitment, "tiers": _tier_summary(tiers)},
        client=SYSTEM_CLIENT, idempotency_key=f"lottery:{campaign.pk}:committed",
    )
    campaign.server_seed = seed
    campaign.commitment = commitment
    campaign.commitment_transaction_id = posted.transaction_id
    campaign.state = LotteryCampaign.State.OPEN
    campaign.opened_at = timezone.now()
    campaign.save(update_fields=["server_seed", "commitment", "commitment_transaction",
                                 "state", "opened_at"])
    return campaign


@transaction.atomic
def campaign_close(*, campaign: LotteryCampaign) -> LotteryCampaign:
    """Stop draws and reveal the seed. Waits for draws in flight (they hold the campaign row
    FOR SHARE), so every draw is either in before the reveal or refused."""
    campaign = LotteryCampaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.state != LotteryCampaign.State.OPEN:
        raise CampaignNotOpen(details={"state": campaign.state})
    posted = event_record(
        kind="event.lottery.revealed",
        metadata={"campaign": campaign.pk, "commitment": campaign.commitment,
                  "seed": campaign.server_seed, "draws": campaign.draws.count()},
        client=SYSTEM_CLIENT, idempotency_key=f"lottery:{campaign.pk}:revealed",
    )
    campaign.state = LotteryCampaign.State.CLOSED
    campaign.closed_at = timezone.now()
    campaign.reveal_transaction_id = posted.transaction_id
    campaign.save(update_fields=["state", "closed_at", "reveal_transaction"])
    return campaign


# --- drawing -----------------------------------------------------------------------------------


def _campaign_for_draw(campaign_id: int) -> LotteryCampaign:
    if connection.vendor == "postgresql":
        # FOR SHARE: draws run side by side, while closing (FOR UPDATE) waits for them.
        with connection.cursor() as cursor:
            cursor.execute(_CAMPAIGN_FOR_SHARE, [campaign_id])
    campaign = (LotteryCampaign.objects.select_related("asset", "merchant")
                .filter(pk=campaign_id).first())
    if campaign is None:
        raise CampaignNotFound(details={"campaign": campaign_id})
    if campaign.state != LotteryCampaign.State.OPEN \
            or campaign.merchant.status not in TRADING_STATUSES:
        raise CampaignNotOpen(details={"state": campaign.state})
    return campaign


def _charge_entry(campaign: LotteryCampaign, shopper, wallet: Account, key: str, nonce: int):
    asset = campaign.asset
    try:
        return transaction_post(
            kind="lottery_entry",
            legs=[Leg(wallet, -campaign.entry_cost),
                  Leg(issuance_account(asset), campaign.entry_cost)],
            client=shopper_client(shopper),
            idempotency_key=ledger_key(f"lottery-entry:{campaign.pk}", key),
            metadata={"campaign": campaign.pk, "nonce": nonce},
        )
    except InsufficientBalance as exc:
        wallet.refresh_from_db(fields=["balance"])
        raise InsufficientBalance(
            _("You have %(balance)s %(asset)s points; a draw costs %(cost)s.")
            % {"balance": asset.to_major(wallet.balance), "asset": asset.code,
               "cost": asset.to_major(campaign.entry_cost)},
            details={**exc.details, "available": str(asset.to_major(wallet.balance))},
        ) from None


def _award(draw: LotteryDraw, tier: PrizeTier, campaign: LotteryCampaign, wallet: Account,
           shopper) -> None:
    if tier.kind == PrizeTier.Kind.POINTS:
        posted = transaction_post(
            kind="lottery_prize",
            legs=[Leg(issuance_account(campaign.asset), -tier.points), Leg(wallet, tier.points)],
            client=SYSTEM_CLIENT, idempotency_key=f"lottery-prize:{draw.pk}",
            metadata={"campaign": campaign.pk, "draw": draw.pk, "tier": tier.position},
        )
        draw.prize_points = tier.points
        draw.prize_transaction_id = posted.transaction_id
    elif tier.kind == PrizeTier.Kind.VOUCHER:
        draw.voucher = voucher_issue_prize(item=tier.catalog_item, shopper=shopper)
    else:
        draw.coupon_text = tier.coupon_text
    draw.save(update_fields=["prize_points", "prize_transaction", "voucher", "coupon_text"])


@transaction.atomic(durable=True)
def _draw(*, shopper, campaign_id: int, key: str) -> LotteryDraw:
    campaign = _campaign_for_draw(campaign_id)
    tiers = list(campaign.tiers.select_related("catalog_item").order_by("position"))
    wallet = account_get_or_create(asset=campaign.asset, kind=Account.Kind.WALLET, user=shopper)
    participant, _created = LotteryParticipant.objects.get_or_create(
        campaign=campaign, shopper=shopper, defaults={"shopper_ref": wallet.public_id})
    # One shopper's draws queue here, each taking the next nonce.
    participant = LotteryParticipant.objects.select_for_update().get(pk=participant.pk)
    nonce = participant.draws + 1
    LotteryParticipant.objects.filter(pk=participant.pk).update(draws=nonce)
    entry = _charge_entry(campaign, shopper, wallet, key, nonce)
    if entry.replayed:
        raise _Replayed
    digest = draw_digest(campaign.server_seed, campaign.pk, participant.shopper_ref, nonce)
    ticket = draw_ticket(digest, sum(t.weight for t in tiers))
    tier = tiers[tier_index([t.weight for t in tiers], ticket)]
    if tier.kind == PrizeTier.Kind.NOTHING:
        outcome = LotteryDraw.Outcome.NO_PRIZE
    elif PrizeTier.objects.filter(pk=tier.pk, remaining__gt=0).update(
            remaining=F("remaining") - 1):
        outcome = LotteryDraw.Outcome.WON
    else:
        outcome = LotteryDraw.Outcome.OUT_OF_STOCK
    draw = LotteryDraw.objects.create(
        campaign=campaign, shopper=shopper, shopper_ref=participant.shopper_ref, nonce=nonce,
        digest=digest.hex(), ticket=ticket, drawn_tier=tier, outcome=outcome,
        entry_transaction_id=entry.transaction_id, idempotency_key=key,
    )
    if outcome == LotteryDraw.Outcome.WON:
        _award(draw, tier, campaign, wallet, shopper)
    return draw


def lottery_draw(*, shopper, campaign_id: int, idempotency_key: str) -> LotteryDraw:
    """Enter an open campaign once: charge the entry cost, derive the draw from the seed and
    give the prize drawn (see the module docstring). Refusals change nothing:
    ``campaign_not_found`` 404, ``campaign_not_open`` and ``insufficient_balance`` 409. The
    same idempotency key returns the first draw."""
    key = key_check(idempotency_key)
    existing = LotteryDraw.objects.filter(campaign_id=campaign_id, shopper=shopper,
                                          idempotency_key=key).first()
    if existing is None:
        try:
            return _draw(shopper=shopper, campaign_id=campaign_id, key=key)
        except (_Replayed, IntegrityError):
            existing = LotteryDraw.objects.filter(campaign_id=campaign_id, shopper=shopper,
                                                  idempotency_key=key).first()
            if existing is None:
                raise
    # Idempotent: the shopper's retry of a draw already made.
    existing.replayed = True
    return existing


# --- verifying ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawCheck:
    draw: LotteryDraw
    digest: str
    ticket: int
    tier_position: int

    @property
    def ok(self) -> bool:
        return (self.digest == self.draw.digest and self.ticket == self.draw.ticket
                and self.tier_position == self.draw.drawn_tier.position)


@dataclass
class Verification:
    """The outcome of recomputing a campaign: every mismatch is named in ``problems``."""

    campaign: LotteryCampaign
    seed: str
    commitment_matches: bool = False
    checks: list[DrawCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def lottery_verify(*, campaign: LotteryCampaign, seed: str | None = None) -> Verification:
    """Recompute every draw of ``campaign`` from ``seed`` (default: the revealed seed) and
    check the commitment, the journalled commitment, the frozen tiers and the prize stock."""
    campaign = LotteryCampaign.objects.select_related("commitment_transaction").get(
        pk=campaign.pk)
    seed = (seed if seed is not None else campaign.revealed_seed).strip().lower()
    report = Verification(campaign=campaign, seed=seed)
    try:
        seed_bytes = bytes.fromhex(seed)
    except ValueError:
        seed_bytes = b""
    if len(seed_bytes) != SEED_BYTES:
        report.problems.append(
            "the seed is not revealed yet" if not seed
            else f"the seed is not {SEED_BYTES} bytes of hex")
        return report
    report.commitment_matches = seed_commitment(seed) == campaign.commitment
    if not report.commitment_matches:
        report.problems.append("SHA-256 of the seed does not match the published commitment")
    tiers = list(campaign.tiers.order_by("position"))
    committed = campaign.commitment_transaction
    if committed is None or committed.metadata.get("commitment") != campaign.commitment:
        report.problems.append("the commitment is not the one journalled in the ledger")
    elif committed.metadata.get("tiers") != _tier_summary(tiers):
        report.problems.append("the prize tiers differ from those journalled at opening")
    draws = list(campaign.draws.select_related("drawn_tier").order_by("pk"))
    if committed is not None and draws and draws[0].created_at < committed.created_at:
        report.problems.append("a draw was made before the commitment was journalled")
    weights = [t.weight for t in tiers]
    total = sum(weights)
    for draw in draws:
        digest = draw_digest(seed, campaign.pk, draw.shopper_ref, draw.nonce)
        ticket = draw_ticket(digest, total)
        check = DrawCheck(draw=draw, digest=digest.hex(), ticket=ticket,
                          tier_position=tiers[tier_index(weights, ticket)].position)
        report.checks.append(check)
        if not check.ok:
            report.problems.append(f"draw {draw.pk} ({draw.shopper_ref} #{draw.nonce}) does not "
                                   "recompute to its recorded outcome")
        nothing = draw.drawn_tier.kind == PrizeTier.Kind.NOTHING
        if nothing != (draw.outcome == LotteryDraw.Outcome.NO_PRIZE):
            report.problems.append(f"draw {draw.pk} records {draw.outcome} for tier "
                                   f"{draw.drawn_tier.position}")
    won = Counter(d.drawn_tier_id for d in draws if d.outcome == LotteryDraw.Outcome.WON)
    short = {d.drawn_tier_id for d in draws if d.outcome == LotteryDraw.Outcome.OUT_OF_STOCK}
    for tier in tiers:
        if tier.stock is None:
            continue
        if won[tier.pk] > tier.stock or tier.remaining != tier.stock - won[tier.pk]:
            report.problems.append(f"tier {tier.position} gave {won[tier.pk]} prizes from a "
                                   f"stock of {tier.stock}")
        if tier.pk in short and won[tier.pk] != tier.stock:
            report.problems.append(f"tier {tier.position} refused a prize while stock was left")
    return report
