"""Property test: whatever sequence of postings, holds, captures, voids and reversals runs,
the ledger's invariants hold (on PostgreSQL, for both posting engines)."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance.errors import DomainError
from ledger import services, verification
from ledger.models import Account, Hold, Lot, Posting, Transaction
from ledger.services import Leg
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

who = st.integers(0, 1)
amount = st.integers(1, 300)
# Issues and spends weigh most: lots only get interesting when a wallet holds several
# expiries and is partly spent.
op = st.one_of(
    st.tuples(st.just("issue"), who, amount, st.integers(0, 3)),
    st.tuples(st.just("issue"), who, amount, st.integers(0, 3)),
    st.tuples(st.just("spend"), who, amount),
    st.tuples(st.just("transfer"), who, who, amount),
    st.tuples(st.just("hold"), who, amount),
    st.tuples(st.just("capture"), st.integers(0, 4), amount),
    st.tuples(st.just("void"), st.integers(0, 4)),
    st.tuples(st.just("reverse"), st.integers(0, 12)),
    st.tuples(st.just("shared"), who, st.integers(1, 10_000)),
)


class Rollback(Exception):
    pass


def _apply(ops, wallets, issuance, shared_wallets, shared_issuance):
    now = timezone.now()
    expiries = [now + timedelta(days=d) for d in (5, 40, 200, 400)]
    for n, step in enumerate(ops):
        key = f"op-{n}"
        try:
            match step:
                case ("issue", w, amount, e):
                    services.transaction_post(
                        kind="issue", client="p", idempotency_key=key,
                        legs=[Leg(issuance, -amount), Leg(wallets[w], amount, expiries[e])])
                case ("transfer", a, b, amount) if a != b:
                    services.transaction_post(
                        kind="transfer", client="p", idempotency_key=key,
                        legs=[Leg(wallets[a], -amount), Leg(wallets[b], amount)])
                case ("spend", w, amount):
                    services.transaction_post(
                        kind="spend", client="p", idempotency_key=key,
                        legs=[Leg(wallets[w], -amount), Leg(issuance, amount)])
                case ("hold", w, amount):
                    services.hold_place(wallet=wallets[w], amount=amount, client="p",
                                        idempotency_key=key)
                case ("capture", h, amount):
                    hold = Hold.objects.order_by("pk")[h:h + 1].first()
                    if hold:
                        services.hold_capture(hold_id=hold.pk, destination=issuance,
                                              amount=min(amount, hold.amount), client="p",
                                              idempotency_key=key)
                case ("void", h):
                    hold = Hold.objects.order_by("pk")[h:h + 1].first()
                    if hold:
                        services.hold_void(hold_id=hold.pk, client="p", idempotency_key=key)
                case ("reverse", t):
                    txn = (Transaction.objects.exclude(kind__in=["reversal", "hold"])
                           .order_by("pk")[t:t + 1].first())
                    if txn:
                        services.transaction_reverse(transaction=txn)
                case ("shared", w, amount):
                    services.transaction_post(
                        kind="allocate", client="p", idempotency_key=key,
                        legs=[Leg(shared_issuance, -amount), Leg(shared_wallets[w], amount)])
        except DomainError:
            pass  # refusals (insufficient balance, settled hold) are part of the game


def _assert_invariants():
    per_txn_asset = (Posting.objects.values("transaction", "asset")
                     .annotate(total=Sum("amount")).exclude(total=0))
    assert not per_txn_asset.exists()
    for account in Account.objects.filter(bounded=True):
        total = Posting.objects.filter(account=account).aggregate(t=Sum("amount"))["t"] or 0
        assert account.balance == total >= 0
        if account.tracks_lots:
            lots = Lot.objects.filter(account=account).aggregate(t=Sum("remaining"))["t"] or 0
            assert lots == account.balance
    problems = [p for check in (verification.check_transactions_balance,
                                verification.check_account_balances, verification.check_lots)
                for p in check()]
    assert not problems, problems


@pytest.mark.parametrize("ledger_engine", ["sql", "python"])
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_invariants_hold_for_any_sequence(ledger_engine, ops, brand, issuance, django_settings):
    django_settings.LEDGER_ENGINE = ledger_engine
    shared = services.alliance_asset("SHARED")
    try:
        with transaction.atomic():
            users = [UserFactory() for _ in range(2)]
            wallets = [services.account_get_or_create(asset=brand, kind="wallet", user=u)
                       for u in users]
            shared_wallets = [services.account_get_or_create(asset=shared, kind="wallet",
                                                             user=u) for u in users]
            _apply(ops, wallets, issuance, shared_wallets, services.issuance_account(shared))
            _assert_invariants()
            raise Rollback
    except Rollback:
        pass


@pytest.fixture
def django_settings(settings):
    return settings
