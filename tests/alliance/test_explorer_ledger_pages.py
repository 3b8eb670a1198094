"""The explorer's ledger pages (SPEC §4.8): point types with supply, holders, distribution
and daily flows; the public journal; proof of reserve. Public, nothing personal, and a
bounded number of queries whatever the volume."""

import json
import re

import pytest
from django.test import Client

from ledger import log_services, services
from ledger.models import Account

from ..ledger import log_helpers

pytestmark = pytest.mark.django_db
kit, log_key = log_helpers.kit, log_helpers.log_key  # fixtures


def _deposit(merchant, amount: int) -> None:
    shared = services.alliance_asset("SHARED")
    services.transaction_post(
        kind="deposit", client="test", idempotency_key=f"dep-{merchant.pk}-{amount}",
        legs=[services.Leg(services.issuance_account(shared), -amount),
              services.Leg(services.account_get_or_create(
                  asset=shared, kind=Account.Kind.DEPOSIT, merchant=merchant), amount)],
    )


def _json(page: str, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>',
                      page, re.S)
    assert match, element_id
    return json.loads(match.group(1))


def test_point_types_show_issued_burned_circulating_and_holders(kit):
    # given 300 issued to two shoppers and 50 of it burned
    kit.issue(200, 0)
    kit.issue(100, 1)
    kit.spend(50, 0)

    # when an anonymous visitor opens the point types
    page = Client().get("/explorer/assets/", HTTP_ACCEPT_LANGUAGE="en")

    # then the brand asset shows its totals and its two holders
    assert page.status_code == 200
    html = page.content.decode()
    # (by the code as the row shows it: another asset's code or link may contain this one's)
    row = html[html.index(f'<code class="small">{kit.asset.code}</code>'):]
    row = row[:row.index("</tr>")]
    cells = re.findall(r'<td class="text-end">([^<]*)</td>', row)
    assert cells == ["300", "50", "0", "250", "2"]


def test_an_asset_page_charts_daily_flows_and_the_distribution(kit):
    kit.issue(200, 0)
    kit.issue(5, 1)
    kit.spend(50, 0)

    page = Client().get(f"/explorer/assets/{kit.asset.code}/?days=90",
                        HTTP_ACCEPT_LANGUAGE="en").content.decode()

    flows = _json(page, "flows-data")
    assert len(flows["labels"]) == 90
    issued = next(d for d in flows["datasets"] if d["label"] == "Issued")["data"]
    burned = next(d for d in flows["datasets"] if d["label"] == "Burned")["data"]
    assert issued[-1] == 205 and burned[-1] == 50 and sum(issued) == 205
    distribution = _json(page, "distribution-data")
    # 150 left in one wallet (100–1,000), 5 in the other (0–10)
    assert distribution["datasets"][0]["data"] == [1, 0, 1, 0, 0, 0]
    assert "js/charts.js" in page and "<script>" not in page


def test_an_unknown_asset_is_a_404():
    assert Client().get("/explorer/assets/NOPE/").status_code == 404


def test_transactions_are_pseudonymous(kit):
    kit.issue(42, 0)
    page = Client().get("/explorer/transactions/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert kit.wallets[0].public_id in page
    assert "+42" in page
    for shopper in kit.shoppers:
        assert shopper.email not in page
        assert str(shopper.phone) not in page


def test_a_transaction_links_to_its_checkpoint_once_anchored(kit, log_key):
    # given a transaction waiting for anchoring
    txn = kit.issue(7, 0)
    page = Client().get(f"/explorer/transactions/{txn}/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Not anchored yet" in page.content.decode()

    # when the log is anchored
    log_services.log_anchor()

    # then the page names its leaf, the checkpoint and the inclusion proof
    html = Client().get(f"/explorer/transactions/{txn}/",
                        HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Leaf 0" in html
    assert "/api/v1/log/checkpoints/1" in html
    assert "/api/v1/log/proof/inclusion?index=0&amp;size=1" in html
    assert Client().get("/explorer/transactions/999999/").status_code == 404


def test_proof_of_reserve_compares_deposit_and_liability(kit):
    # given 5,000 points out at 100 per CNY (CNY 50) and a deposit of 40.00 SHARED
    kit.issue(5000, 0)
    _deposit(kit.merchant, 4000)

    html = Client().get("/explorer/reserves/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    row = html[html.index(f'<code class="small">{kit.asset.code}</code>'):]
    row = row[:row.index("</tr>")]
    assert "50.00" in row and "40.00" in row and "80%" in row
    assert "text-bg-warning" in row


def test_the_pages_read_in_chinese(kit):
    kit.issue(3, 0)
    for url in ("/explorer/assets/", "/explorer/transactions/", "/explorer/reserves/",
                f"/explorer/assets/{kit.asset.code}/"):
        page = Client().get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
        assert page.status_code == 200, url


@pytest.mark.parametrize("url", ["/explorer/", "/explorer/assets/", "/explorer/transactions/",
                                 "/explorer/reserves/", "ASSET"])
def test_explorer_pages_run_a_bounded_number_of_queries(kit, url, django_assert_max_num_queries):
    # given a few hundred transactions over many wallets
    for n in range(300):
        kit.issue(n + 1, n % 2)
    url = f"/explorer/assets/{kit.asset.code}/" if url == "ASSET" else url
    client = Client()
    with django_assert_max_num_queries(12):
        assert client.get(url).status_code == 200
