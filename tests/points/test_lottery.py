"""Provably fair lotteries: the commitment before opening, draws derived from the seed,
recomputation after the reveal, prizes, and refusals that change nothing."""

import hashlib
import hmac

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alliance.errors import DomainError
from ledger.models import Transaction
from points import lottery
from points.models import LotteryCampaign, LotteryDraw, LotteryParticipant, PrizeTier, Voucher
from tests.factories import UserFactory

from .spending_helpers import (
    alliance_assets_restore,
    balance,
    brand,
    catalog_item,
    error_code,
    fund,
    shopper_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alliance_assets():
    # a transactional test run earlier flushes the assets a migration made
    alliance_assets_restore()


@pytest.fixture
def points(merchant):
    return brand(merchant)


@pytest.fixture
def campaign(merchant):
    """Entry 100 points; tiers: 500 points (weight 1, stock 3), a voucher (weight 2, stock 2),
    a coupon (weight 3, stock 5), nothing (weight 10)."""
    found = lottery.campaign_create(merchant=merchant, name_zh="春节抽奖", name_en="New year",
                                    entry_cost=100)
    item = catalog_item(merchant, price=300, name_en="Mug")
    lottery.tier_add(campaign=found, label="Jackpot", kind="points", weight=1, stock=3,
                     points=500)
    lottery.tier_add(campaign=found, label="Mug", kind="voucher", weight=2, stock=2,
                     catalog_item=item)
    lottery.tier_add(campaign=found, label="Coupon", kind="coupon", weight=3, stock=5,
                     coupon_text="10% off any drink")
    lottery.tier_add(campaign=found, label="Thanks", kind="nothing", weight=10)
    return found


@pytest.fixture
def player(points):
    shopper = UserFactory()
    fund(points, shopper, 10_000)
    return shopper


def _draw(client, campaign_id, key):
    return client.post(f"/api/v1/lotteries/{campaign_id}/draws", HTTP_IDEMPOTENCY_KEY=key)


def _recompute(seed_hex: str, draw: LotteryDraw, weights: list[int]) -> int:
    """The documented mapping, written out independently of points.lottery."""
    message = f"{draw.campaign_id}|{draw.shopper_ref}|{draw.nonce}".encode()
    digest = hmac.new(bytes.fromhex(seed_hex), message, hashlib.sha256).digest()
    ticket = int.from_bytes(digest[:8], "big") % sum(weights)
    for position, upper in enumerate(
            [sum(weights[:i + 1]) for i in range(len(weights))], start=1):
        if ticket < upper:
            return position
    raise AssertionError("unreachable")


def test_opening_publishes_and_journals_the_commitment_first(campaign):
    # when the merchant opens the campaign
    opened = lottery.campaign_open(campaign=campaign)

    # then the commitment is SHA-256 of the seed and is in the ledger, with no personal data
    assert opened.state == LotteryCampaign.State.OPEN
    assert opened.commitment == hashlib.sha256(bytes.fromhex(opened.server_seed)).hexdigest()
    logged = Transaction.objects.get(pk=opened.commitment_transaction_id)
    assert logged.kind == "event.lottery.committed" and logged.client == "system"
    assert logged.metadata["commitment"] == opened.commitment
    assert [t["weight"] for t in logged.metadata["tiers"]] == [1, 2, 3, 10]
    assert opened.server_seed not in str(logged.metadata)
    assert logged.created_at <= opened.opened_at
    # and the public sees the commitment but not the seed while it is open
    body = shopper_client(UserFactory()).get(
        f"/api/v1/lotteries/{opened.pk}/verification").json()
    assert body["commitment"] == opened.commitment and body["seed"] is None
    assert "draws" not in body


def test_draws_charge_the_entry_and_recompute_from_the_revealed_seed(campaign, player, points):
    # given an open campaign and a shopper with 10,000 points
    lottery.campaign_open(campaign=campaign)
    client = shopper_client(player)

    # when the shopper draws 30 times
    responses = [_draw(client, campaign.pk, f"d-{i}") for i in range(30)]

    # then each draw was charged 100 and took the next nonce
    assert {r.status_code for r in responses} == {201}
    draws = list(LotteryDraw.objects.filter(campaign=campaign).order_by("nonce"))
    assert [d.nonce for d in draws] == list(range(1, 31))
    won_points = sum(d.prize_points for d in draws)
    assert balance(points, user=player) == 10_000 - 30 * 100 + won_points
    # prizes never beyond stock, and each prize was given as drawn
    for tier in campaign.tiers.all():
        won = [d for d in draws if d.drawn_tier_id == tier.pk and d.outcome == "won"]
        if tier.stock is not None:
            assert len(won) <= tier.stock
            assert PrizeTier.objects.get(pk=tier.pk).remaining == tier.stock - len(won)
    for draw in draws:
        if draw.outcome == "won" and draw.drawn_tier.kind == "voucher":
            assert draw.voucher.source == Voucher.Source.LOTTERY and draw.voucher.price == 0
        if draw.outcome == "won" and draw.drawn_tier.kind == "coupon":
            assert draw.coupon_text == "10% off any drink"

    # when the campaign closes, the seed is revealed
    closed = lottery.campaign_close(campaign=campaign)
    assert closed.revealed_seed == closed.server_seed
    revealed = Transaction.objects.get(pk=closed.reveal_transaction_id)
    assert revealed.metadata["seed"] == closed.server_seed

    # then recomputing every draw from the seed gives the recorded outcomes
    weights = [1, 2, 3, 10]
    assert [_recompute(closed.revealed_seed, d, weights) for d in draws] == [
        d.drawn_tier.position for d in draws]
    report = lottery.lottery_verify(campaign=closed)
    assert report.ok, report.problems
    assert report.commitment_matches and len(report.checks) == 30
    # and the public page's API says the same
    body = client.get(f"/api/v1/lotteries/{closed.pk}/verification").json()
    assert body["verified"] is True and body["seed"] == closed.server_seed
    assert len(body["draws"]) == 30 and all(d["matches"] for d in body["draws"])


def test_a_different_seed_does_not_match_the_commitment(campaign, player):
    lottery.campaign_open(campaign=campaign)
    for i in range(5):
        lottery.lottery_draw(shopper=player, campaign_id=campaign.pk, idempotency_key=str(i))
    closed = lottery.campaign_close(campaign=campaign)
    other = "ab" * 32
    assert other != closed.server_seed

    report = lottery.lottery_verify(campaign=closed, seed=other)

    assert not report.ok and not report.commitment_matches
    assert "does not match the published commitment" in report.problems[0]
    with pytest.raises(CommandError):
        call_command("lottery_verify", str(closed.pk), "--seed", other, "--quiet")
    # a malformed seed is named too
    assert not lottery.lottery_verify(campaign=closed, seed="xyz").ok


def test_the_verify_command_recomputes_every_draw(campaign, player, capsys):
    lottery.campaign_open(campaign=campaign)
    for i in range(4):
        lottery.lottery_draw(shopper=player, campaign_id=campaign.pk, idempotency_key=str(i))
    lottery.campaign_close(campaign=campaign)
    call_command("lottery_verify", str(campaign.pk))
    out = capsys.readouterr().out
    assert "matches the commitment" in out and "all 4 draws verify" in out
    assert out.count("\nok ") == 4


def test_a_tampered_draw_is_named(campaign, player):
    lottery.campaign_open(campaign=campaign)
    draw = lottery.lottery_draw(shopper=player, campaign_id=campaign.pk, idempotency_key="t")
    lottery.campaign_close(campaign=campaign)
    other_tier = campaign.tiers.exclude(pk=draw.drawn_tier_id).first()
    LotteryDraw.objects.filter(pk=draw.pk).update(drawn_tier=other_tier)
    report = lottery.lottery_verify(campaign=campaign)
    assert not report.ok
    assert any("does not recompute" in p for p in report.problems)
    with pytest.raises(CommandError):
        call_command("lottery_verify", str(campaign.pk), "--quiet")


def test_an_exhausted_tier_falls_back_to_no_prize(merchant, player, points):
    # given a campaign whose only tier has no stock left
    found = lottery.campaign_create(merchant=merchant, name_zh="空", name_en="Empty",
                                    entry_cost=10)
    lottery.tier_add(campaign=found, label="Gone", kind="points", weight=5, stock=0, points=99)
    lottery.campaign_open(campaign=found)

    draw = lottery.lottery_draw(shopper=player, campaign_id=found.pk, idempotency_key="e")

    # then the draw is recorded as out of stock and gives nothing
    assert draw.outcome == LotteryDraw.Outcome.OUT_OF_STOCK and draw.prize_points == 0
    assert balance(points, user=player) == 9_990
    lottery.campaign_close(campaign=found)
    assert lottery.lottery_verify(campaign=found).ok


# --- refusals that change nothing -------------------------------------------------------------


def _state(campaign, player, points):
    return (balance(points, user=player), LotteryDraw.objects.count(),
            LotteryParticipant.objects.filter(shopper=player).values_list("draws", flat=True)
            .first(), sorted(PrizeTier.objects.filter(campaign=campaign)
                             .values_list("remaining", flat=True), key=str))


def test_a_closed_or_draft_campaign_refuses_draws(campaign, player, points):
    client = shopper_client(player)
    before = _state(campaign, player, points)
    draft = _draw(client, campaign.pk, "draft")
    assert draft.status_code == 409 and error_code(draft) == "campaign_not_open"
    lottery.campaign_open(campaign=campaign)
    lottery.campaign_close(campaign=campaign)
    closed = _draw(client, campaign.pk, "closed")
    assert closed.status_code == 409 and error_code(closed) == "campaign_not_open"
    assert _state(campaign, player, points) == before


def test_a_shopper_who_cannot_pay_changes_nothing(campaign, points):
    lottery.campaign_open(campaign=campaign)
    poor = UserFactory()
    fund(points, poor, 99)
    before = _state(campaign, poor, points)
    response = _draw(shopper_client(poor), campaign.pk, "p")
    assert response.status_code == 409 and error_code(response) == "insufficient_balance"
    assert _state(campaign, poor, points) == before


def test_unknown_campaigns_missing_keys_and_visitors(campaign, player):
    from rest_framework.test import APIClient

    lottery.campaign_open(campaign=campaign)
    client = shopper_client(player)
    unknown = _draw(client, 987654, "u")
    assert unknown.status_code == 404 and error_code(unknown) == "campaign_not_found"
    keyless = client.post(f"/api/v1/lotteries/{campaign.pk}/draws")
    assert keyless.status_code == 400 and error_code(keyless) == "idempotency_key_required"
    assert _draw(APIClient(), campaign.pk, "v").status_code in (401, 403)
    assert not LotteryDraw.objects.exists()


def test_the_same_key_draws_once(campaign, player, points):
    lottery.campaign_open(campaign=campaign)
    client = shopper_client(player)
    first = _draw(client, campaign.pk, "same")
    again = _draw(client, campaign.pk, "same")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert LotteryDraw.objects.count() == 1


def test_tiers_are_checked_and_frozen_once_open(campaign, merchant):
    for bad in ({"kind": "points", "weight": 0, "stock": 1, "points": 5},
                {"kind": "points", "weight": 1, "stock": -1, "points": 5},
                {"kind": "points", "weight": 1, "stock": 1, "points": 0},
                {"kind": "coupon", "weight": 1, "stock": 1},
                {"kind": "voucher", "weight": 1, "stock": 1},
                {"kind": "jackpot", "weight": 1, "stock": 1}):
        with pytest.raises(DomainError) as refused:
            lottery.tier_add(campaign=campaign, label="x", **bad)
        assert refused.value.code == "campaign_invalid", bad
    lottery.campaign_open(campaign=campaign)
    with pytest.raises(DomainError) as frozen:
        lottery.tier_add(campaign=campaign, label="late", kind="nothing", weight=1)
    assert frozen.value.code == "campaign_not_draft"
    with pytest.raises(DomainError):
        lottery.campaign_open(campaign=campaign)
    assert campaign.tiers.count() == 4
    with pytest.raises(DomainError):
        lottery.campaign_create(merchant=merchant, name_zh="x", name_en="x", entry_cost=0)
