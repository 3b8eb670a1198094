"""The merchant dashboard's reports: KPIs, 30/90-day charts and a CSV export of the
merchant's own transactions (``dashboard.reports``: managers and owners)."""

import csv

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from alliance.permissions import access_required, current_merchant
from ledger import selectors as ledger_selectors

from . import report_selectors

WINDOWS = (30, 90)


class _Echo:
    """A file-like object whose write returns the line: csv.writer into a stream."""

    def write(self, value: str) -> str:
        return value


@require_GET
@access_required("dashboard.reports")
def reports_home(request: HttpRequest) -> HttpResponse:
    merchant = current_merchant(request)
    if merchant is None:
        return redirect("dashboard:home")
    try:
        days = int(request.GET.get("days", WINDOWS[0]))
    except ValueError:
        days = WINDOWS[0]
    if days not in WINDOWS:
        days = WINDOWS[0]
    kpis = report_selectors.merchant_kpis(merchant=merchant)
    chart = None
    if kpis.asset is not None:
        flows = ledger_selectors.asset_daily_flows(asset=kpis.asset, days=days)
        series = [("issued", _("Issued")), ("burned", _("Redeemed")),
                  ("expired", _("Expired"))]
        chart = {"labels": [row["day"] for row in flows],
                 "datasets": [{"label": label, "data": [row[key] for row in flows]}
                              for key, label in series]}
    return render(request, "dashboard/reports/home.html", {
        "merchant": merchant, "kpis": kpis, "chart": chart, "days": days, "windows": WINDOWS,
    })


@require_GET
@access_required("dashboard.reports")
def transactions_csv(request: HttpRequest) -> HttpResponse:
    """The merchant's own postings as CSV, streamed so a long history never sits in memory."""
    merchant = current_merchant(request)
    if merchant is None:
        return redirect("dashboard:home")
    writer = csv.writer(_Echo())
    header = ["transaction", "recorded_at", "kind", "asset", "account", "account_kind",
              "amount_minor"]

    def rows():
        yield writer.writerow(header)
        for txn, at, kind, code, account, account_kind, amount in (
                report_selectors.merchant_postings_for_export(merchant=merchant)):
            yield writer.writerow([txn, at.isoformat(), kind, code, account, account_kind,
                                   amount])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = (
        f'attachment; filename="transactions-{merchant.slug}-{stamp}.csv"')
    return response
