"""Staff console pages of issue 5: the application queue and decisions, departures,
governance (parameters and proposals) and the supervisors' read-only view with alerts.

The permission table decides who enters each page; the services decide what may happen
(approving twice, a fourth approval, ...) and say why in a message.
"""

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ledger.services import alliance_asset
from merchants.dashboard_views import licence_response
from merchants.models import LeaveRequest, Merchant
from merchants.services import merchant_leave_approve, merchant_leave_reject

from . import selectors
from .errors import DomainError
from .forms import (
    ApplicationFilterForm,
    NoteForm,
    ProposalForm,
    ReasonForm,
    RequiredNoteForm,
)
from .models import Alert, MerchantApplication, Proposal
from .parameters import PARAMETERS
from .permissions import access_required, can_access
from .services import (
    alert_acknowledge,
    application_approve,
    application_reject,
    application_request_changes,
    proposal_approve,
    proposal_cancel,
    proposal_create,
)

# --- applications ------------------------------------------------------------------------------


@access_required("console.applications")
def application_queue(request: HttpRequest) -> HttpResponse:
    data = request.GET.copy()
    if "status" not in data:
        data["status"] = MerchantApplication.Status.SUBMITTED
    form = ApplicationFilterForm(data)
    filters = form.cleaned_data if form.is_valid() else {"status": data["status"]}
    applications = selectors.application_queue(**{k: v or "" for k, v in filters.items()})
    page = Paginator(applications, 25).get_page(request.GET.get("page"))
    return render(request, "console/applications/queue.html", {"form": form, "page": page})


@access_required("console.applications")
def application_review(request: HttpRequest, pk: int) -> HttpResponse:
    application = selectors.application_get(pk=pk)
    return render(request, "console/applications/review.html", {
        "application": application, "stores": application.stores.all(),
        "timeline": selectors.application_timeline(application),
        "reason_form": ReasonForm(),
    })


@access_required("console.applications")
def application_licence(request: HttpRequest, pk: int) -> HttpResponse:
    return licence_response(selectors.application_get(pk=pk))


def _decide(request: HttpRequest, pk: int, decide, needs_message: bool, done: str):
    application = selectors.application_get(pk=pk)
    kwargs = {}
    if needs_message:
        form = ReasonForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Write the message the applicant will read."))
            return redirect("governance:application", pk=pk)
        kwargs = form.cleaned_data
    try:
        decide(application=application, by=request.user, **kwargs)
        messages.success(request, done)
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("governance:application", pk=pk)


@access_required("console.applications")
@require_POST
def application_request_changes_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, application_request_changes, True,
                   _("The application was sent back to the applicant."))


@access_required("console.applications")
@require_POST
def application_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, lambda message, **kw: application_reject(reason=message, **kw),
                   True, _("The application was rejected."))


@access_required("console.applications")
@require_POST
def application_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, application_approve, False,
                   _("The application was approved: the merchant is a member."))


# --- departures --------------------------------------------------------------------------------


@access_required("console.applications")
def leaving_queue(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", LeaveRequest.Status.PENDING)
    if status not in LeaveRequest.Status.values and status != "":
        status = LeaveRequest.Status.PENDING
    page = Paginator(selectors.leave_request_queue(status=status), 25).get_page(
        request.GET.get("page"))
    return render(request, "console/applications/leaving.html", {
        "page": page, "status": status, "statuses": LeaveRequest.Status.choices,
        "note_form": RequiredNoteForm(), "approve_form": NoteForm(),
        "shared": alliance_asset("SHARED"),
    })


@access_required("console.applications")
@require_POST
def leaving_approve(request: HttpRequest, pk: int) -> HttpResponse:
    leave_request = selectors.leave_request_get(pk=pk)
    form = NoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    try:
        merchant_leave_approve(leave_request=leave_request, by=request.user, note=note)
        messages.success(request, _("%(merchant)s has left the alliance; its deposit went back "
                                    "to its wallet.") % {"merchant": leave_request.merchant})
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("governance:leaving")


@access_required("console.applications")
@require_POST
def leaving_reject(request: HttpRequest, pk: int) -> HttpResponse:
    leave_request = selectors.leave_request_get(pk=pk)
    form = RequiredNoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the reason."))
        return redirect("governance:leaving")
    try:
        merchant_leave_reject(leave_request=leave_request, by=request.user,
                              note=form.cleaned_data["note"])
        messages.success(request, _("The request to leave was rejected."))
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("governance:leaving")


# --- governance --------------------------------------------------------------------------------


def _proposal_form(data=None) -> ProposalForm:
    return ProposalForm(data, merchants=selectors.merchants_for_proposals(),
                        witness_keys=selectors.witness_keys_pending())


@access_required("console.governance")
def governance_home(request: HttpRequest, form: ProposalForm | None = None,
                    status: int = 200) -> HttpResponse:
    return render(request, "console/governance/home.html", {
        "parameters": selectors.parameter_table(),
        "open_proposals": selectors.proposal_list(status=Proposal.Status.OPEN),
        "closed_proposals": selectors.proposal_list().exclude(status=Proposal.Status.OPEN)[:20],
        "form": form or _proposal_form(),
        "council": selectors.council_members(),
        "can_vote": can_access(request, "console.governance.vote"),
    }, status=status)


@access_required("console.governance")
@require_POST
def proposal_new(request: HttpRequest) -> HttpResponse:
    form = _proposal_form(request.POST)
    if form.is_valid():
        try:
            proposal = proposal_create(kind=form.cleaned_data["kind"], data=form.payload(),
                                       proposed_by=request.user,
                                       reason=form.cleaned_data["reason"])
            messages.success(request, _("The proposal was put to the council."))
            return redirect("governance:proposal", pk=proposal.pk)
        except DomainError as exc:
            field = {"invalid_parameter": "value"}.get(exc.code)
            if exc.details.get("merchant"):
                field = "merchant"
            if exc.details.get("amount"):
                field = "amount"
            form.add_error(field, str(exc.message))
    return governance_home(request, form=form, status=400)


@access_required("console.governance")
def proposal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = selectors.proposal_get(pk=pk)
    approvals = list(proposal.approvals.select_related("member"))
    member_ids = {a.member_id for a in approvals}
    return render(request, "console/governance/proposal.html", {
        "proposal": proposal, "approvals": approvals,
        "can_vote": can_access(request, "console.governance.vote")
        and request.user.pk not in member_ids and proposal.status == Proposal.Status.OPEN,
        "can_cancel": proposal.status == Proposal.Status.OPEN
        and (proposal.proposed_by_id == request.user.pk or request.user.is_alliance_staff),
        "parameter": PARAMETERS.get(proposal.payload.get("key", "")),
        "merchant": proposal.merchant,
        "shared": alliance_asset("SHARED"),
    })


@access_required("console.governance.vote")
@require_POST
def proposal_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = selectors.proposal_get(pk=pk)
    try:
        proposal = proposal_approve(proposal=proposal, member=request.user)
        if proposal.status == Proposal.Status.EXECUTED:
            messages.success(request, _("Your approval carried the proposal: it is executed."))
        elif proposal.status == Proposal.Status.FAILED:
            messages.warning(request, _("The proposal was carried but could not be executed: "
                                        "%(reason)s") % {"reason": proposal.outcome.get("message")})
        else:
            messages.success(request, _("Your approval is recorded."))
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("governance:proposal", pk=pk)


@access_required("console.governance")
@require_POST
def proposal_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    proposal = selectors.proposal_get(pk=pk)
    try:
        proposal_cancel(proposal=proposal, by=request.user)
        messages.success(request, _("The proposal was cancelled."))
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("governance:proposal", pk=pk)


@access_required("console.governance")
def parameter_history(request: HttpRequest, key: str) -> HttpResponse:
    spec = PARAMETERS.get(key)
    if spec is None:
        raise Http404
    return render(request, "console/governance/parameter.html", {
        "key": key, "spec": spec, "changes": selectors.parameter_changes(key=key),
    })


# --- supervision -------------------------------------------------------------------------------


@access_required("console.supervision")
def supervision_home(request: HttpRequest) -> HttpResponse:
    return render(request, "console/supervision/home.html", {
        "rows": selectors.supervision_overview(days=7),
        "alerts": selectors.alert_list(open_only=True)[:20],
        "shared": alliance_asset("SHARED"),
    })


@access_required("console.supervision")
def supervision_merchant(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = get_object_or_404(Merchant, pk=pk)
    flows = selectors.merchant_daily_flows(merchant=merchant, days=30)
    return render(request, "console/supervision/merchant.html", {
        "merchant": merchant,
        "row": next(r for r in selectors.supervision_overview(days=7) if r.merchant == merchant),
        "flows": flows, "flows_json": json.dumps(flows),
        "transactions": selectors.merchant_recent_transactions(merchant=merchant),
        "alerts": selectors.alert_list(open_only=False).filter(merchant=merchant)[:20],
        "shared": alliance_asset("SHARED"),
    })


@access_required("console.supervision")
def alerts(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "open")
    kind = request.GET.get("kind", "")
    if kind not in Alert.Kind.values:
        kind = ""
    page = Paginator(selectors.alert_list(open_only=show != "all", kind=kind), 50).get_page(
        request.GET.get("page"))
    return render(request, "console/supervision/alerts.html", {
        "page": page, "show": show, "kind": kind, "kinds": Alert.Kind.choices,
        "form": NoteForm(),
    })


@access_required("console.supervision")
@require_POST
def alert_ack(request: HttpRequest, pk: int) -> HttpResponse:
    alert = selectors.alert_get(pk=pk)
    form = NoteForm(request.POST)
    alert_acknowledge(alert=alert, by=request.user,
                      note=form.cleaned_data["note"] if form.is_valid() else "")
    messages.success(request, _("The alert is acknowledged."))
    return redirect(request.POST.get("next") if request.POST.get("next", "").startswith(
        "/console/") else "governance:alerts")
