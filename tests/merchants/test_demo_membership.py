"""The demo alliance of issue 5: brand points, SHARED allocated by the council, a deposit,
and an API key per merchant that every run of ``seed_demo`` prints the same."""

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client

from alliance.models import Proposal
from ledger.models import Asset
from merchants.models import ApiKey, Merchant
from tests.merchants.helpers import shared_balance

pytestmark = pytest.mark.django_db


def _seed() -> dict:
    out = io.StringIO()
    call_command("seed_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_each_demo_merchant_has_points_shared_a_deposit_and_a_working_key():
    # given the demo seeded twice
    first = _seed()
    second = _seed()

    # then each merchant has its point type, 3,000 SHARED in its wallet and 2,000 deposited
    expected = {"BURGER": 100, "BEAN": 10, "PARK": 1}
    for entry in second["merchants"]:
        merchant = Merchant.objects.get(slug=entry["slug"])
        asset = Asset.objects.get(code=entry["asset"])
        assert asset.issuer == merchant and asset.units_per_cny == expected[asset.code]
        assert asset.expiry_months == 12
        assert shared_balance(merchant, "wallet") == 300_000
        assert shared_balance(merchant, "deposit") == 200_000
        assert entry["deposit_shared"] == "2000.00"
        # allocated by a council proposal, executed once
        proposal = Proposal.objects.get(kind="allocate_shared", merchant=merchant)
        assert proposal.status == "executed" and proposal.approvals.count() == 2

        # and its printed key is the same on both runs, and works on the API
        assert entry["api_key"] == next(m["api_key"] for m in first["merchants"]
                                        if m["slug"] == entry["slug"])
        response = Client(HTTP_AUTHORIZATION=f"Api-Key {entry['api_key']}").get(
            "/api/v1/merchant/key")
        assert response.status_code == 200
        assert response.json()["merchant"] == entry["slug"]
        assert set(response.json()["scopes"]) == {"purchases", "holds", "vouchers"}
    assert ApiKey.objects.count() == 3
