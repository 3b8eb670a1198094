"""The public explorer's ledger pages (SPEC §4.8): every asset's supply, holders,
distribution and daily flows; the recent journal with pseudonymous accounts; each merchant's
deposit against what it owes. No login, nothing personal: accounts appear by public id only,
and a transaction shows its postings and place in the log, never its metadata (order
references belong to the merchant and the shopper)."""

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from alliance.parameters import parameter_get
from alliance.permissions import access_required
from ledger import selectors
from ledger.models import Asset, Transaction

FLOW_WINDOWS = (30, 90)


@require_GET
@access_required("explorer")
def asset_list(request: HttpRequest) -> HttpResponse:
    return render(request, "explorer/assets.html", {"supplies": selectors.asset_supply_list()})


def _chart(rows: list[dict], series: list[tuple[str, str]]) -> dict:
    return {
        "labels": [row["day"] for row in rows],
        "datasets": [{"label": label, "data": [row[key] for row in rows]}
                     for key, label in series],
    }


@require_GET
@access_required("explorer")
def asset_detail(request: HttpRequest, code: str) -> HttpResponse:
    try:
        asset = selectors.asset_get(code=code)
    except Asset.DoesNotExist:
        raise Http404(_("No such point type.")) from None
    try:
        days = int(request.GET.get("days", FLOW_WINDOWS[0]))
    except ValueError:
        days = FLOW_WINDOWS[0]
    if days not in FLOW_WINDOWS:
        days = FLOW_WINDOWS[0]
    flows = selectors.asset_daily_flows(asset=asset, days=days)
    distribution = selectors.asset_distribution(asset=asset)
    return render(request, "explorer/asset_detail.html", {
        "asset": asset,
        "supply": selectors.asset_supply_get(asset=asset),
        "distribution": distribution,
        "days": days,
        "windows": FLOW_WINDOWS,
        "flows_chart": _chart(flows, [("issued", _("Issued")), ("moved", _("Moved")),
                                      ("burned", _("Burned")), ("expired", _("Expired"))]),
        "distribution_chart": {
            "labels": [row["label"] for row in distribution],
            "datasets": [{"label": _("Wallets"), "data": [r["wallets"] for r in distribution]}],
        },
        "transactions": selectors.transaction_public_list(asset=asset)[:10],
    })


@require_GET
@access_required("explorer")
def transaction_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.transaction_public_list(), 50).get_page(request.GET.get("page"))
    return render(request, "explorer/transactions.html", {"page": page})


@require_GET
@access_required("explorer")
def transaction_detail(request: HttpRequest, transaction_id: int) -> HttpResponse:
    try:
        transaction = selectors.transaction_public_get(transaction_id=transaction_id)
    except Transaction.DoesNotExist:
        raise Http404(_("No such transaction.")) from None
    return render(request, "explorer/transaction_detail.html", {
        "transaction": transaction,
        "place": selectors.transaction_log_place(transaction=transaction),
    })


@require_GET
@access_required("explorer")
def reserve_list(request: HttpRequest) -> HttpResponse:
    price = parameter_get("reference_price")
    return render(request, "explorer/reserves.html", {
        "reserves": selectors.reserve_list(reference_price=price), "reference_price": price,
    })
