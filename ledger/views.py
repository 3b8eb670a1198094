"""The explorer's transparency-log pages: checkpoints, and checking a receipt.

Public like the rest of the explorer (no login, nothing personal): checkpoints are public by
design, and a receipt is checked on the server against the log key and the approved witness
keys, exactly as ``python -m ledger.verify`` would check it offline.
"""

import base64
from datetime import UTC, datetime

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from alliance.permissions import access_required

from . import log_selectors, log_services
from .forms import ReceiptDownloadForm, ReceiptForm
from .log_errors import LogKeyMissing
from .models import Asset
from .verify import ReceiptError, verify_receipt


def _log_key() -> str | None:
    try:
        return log_services.log_verifier().to_key()
    except LogKeyMissing:
        return None


def _when(timestamp: int) -> datetime | None:
    try:
        return datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


@require_GET
@access_required("explorer")
def checkpoint_list(request: HttpRequest) -> HttpResponse:
    """Every checkpoint, newest first: size, root, time, the log's signature, witnesses."""
    page = Paginator(log_selectors.checkpoint_list(), 25).get_page(request.GET.get("page"))
    rows = [
        {
            "size": checkpoint.size,
            "root": base64.b64encode(bytes(checkpoint.root_hash)).decode("ascii"),
            "created_at": checkpoint.created_at,
            "signed_by": log_selectors.checkpoint_signature(checkpoint),
            "witnesses": [
                {"name": c.witness.name, "at": _when(c.timestamp)}
                for c in log_selectors.cosignatures_of(checkpoint)
            ],
            "supply": sorted(checkpoint.supply.items()),
        }
        for checkpoint in page
    ]
    return render(request, "explorer/checkpoints.html", {
        "page": page, "rows": rows, "log_key": _log_key(),
        "witness_keys": log_selectors.witness_key_list(),
    })


def _postings(summary: dict) -> list[dict]:
    transaction = summary["transaction"]
    postings = transaction.get("postings", []) if isinstance(transaction, dict) else []
    codes = {row[1] for row in postings if isinstance(row, list) and len(row) == 3}
    assets = {a.code: a for a in Asset.objects.filter(code__in=codes)}
    shown = []
    for row in postings:
        if not (isinstance(row, list) and len(row) == 3):
            continue
        account, code, amount = row
        asset = assets.get(code)
        try:
            value = asset.to_major(int(amount)) if asset else amount
        except (TypeError, ValueError):
            value = amount
        shown.append({"account": account, "asset": code, "amount": value})
    return shown


@require_http_methods(["GET", "POST"])
@access_required("explorer")
def receipt_verify(request: HttpRequest) -> HttpResponse:
    """Check a pasted or uploaded receipt against the current log key and approved
    witnesses; say what it proves, or why it proves nothing."""
    result = None
    form = ReceiptForm()
    if request.method == "POST":
        form = ReceiptForm(request.POST, request.FILES)
        if form.is_valid():
            log_key = _log_key()
            if log_key is None:
                result = {"ok": False, "reason": _("The log key is not configured here.")}
            else:
                witnesses = list(log_selectors.witness_verifiers())
                try:
                    summary = verify_receipt(form.cleaned_data["receipt"], log_key, witnesses)
                except ReceiptError as exc:
                    result = {"ok": False, "reason": str(exc)}
                else:
                    result = {
                        "ok": True, "summary": summary, "postings": _postings(summary),
                        "witnesses": [
                            {"name": w["name"], "at": _when(w["timestamp"])}
                            for w in summary["witnesses"]
                        ],
                    }
    return render(request, "explorer/verify.html", {
        "form": form, "result": result, "log_key": _log_key(),
        "download_form": ReceiptDownloadForm(),
    })


@require_GET
@access_required("storefront")
def receipt_download(request: HttpRequest) -> HttpResponse:
    """Hand a signed-in party the receipt file of one of their transactions (the API checks
    that they are a party)."""
    form = ReceiptDownloadForm(request.GET)
    if not form.is_valid():
        return render(request, "explorer/verify.html", {
            "form": ReceiptForm(), "result": None, "log_key": _log_key(),
            "download_form": form,
        }, status=400)
    url = reverse("api:transaction-receipt", args=[form.cleaned_data["transaction"]])
    return HttpResponseRedirect(f"{url}?download=1")
