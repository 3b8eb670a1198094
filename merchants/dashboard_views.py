"""Dashboard pages of issue 5: applying to join, staff, API keys, the deposit, member imports.

Each page: the permission table decides who enters (``access_required``), a form reads the
input, one service writes, the template shows the result. Rows are always looked up through
the requester's own merchant (or their own applications), so another merchant's id is a 404.
A service's ``DomainError`` becomes a form error or a message, never a 500.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from alliance.errors import DomainError
from alliance.forms import ApplicationForm, StoreFormSet
from alliance.models import MerchantApplication
from alliance.permissions import access_required, current_merchant
from alliance.services import (
    STORE_FIELDS,
    application_save,
    application_submit,
    application_withdraw,
)
from alliance.uploads import sniff
from ledger.services import alliance_asset

from . import selectors
from .forms import (
    ApiKeyForm,
    ImportUploadForm,
    LeaveForm,
    StaffInviteForm,
    StaffRoleForm,
    TopUpForm,
)
from .imports import member_import_check, member_import_start
from .services import (
    api_key_create,
    api_key_revoke,
    deposit_status,
    deposit_top_up,
    merchant_leave_cancel,
    merchant_leave_request,
    staff_invitation_accept,
    staff_invitation_for_token,
    staff_invitation_revoke,
    staff_invite,
    staff_remove,
    staff_role_change,
)

# --- applying to join --------------------------------------------------------------------------


@access_required("dashboard.apply")
def apply_list(request: HttpRequest) -> HttpResponse:
    applications = selectors.application_list_for(applicant=request.user)
    return render(request, "dashboard/onboarding/list.html", {"applications": applications})


def _store_initial(application: MerchantApplication | None) -> list[dict]:
    if application is None:
        return []
    return [{k: getattr(store, k) for k in STORE_FIELDS} for store in application.stores.all()]


def _save_application(request: HttpRequest, application: MerchantApplication | None):
    """Validate the form and the stores, save the draft, submit if asked. Returns the page
    to show (form errors) or the redirect after success."""
    show_reply = bool(application and application.status ==
                      MerchantApplication.Status.CHANGES_REQUESTED)
    form = ApplicationForm(request.POST, request.FILES, instance=application,
                           show_reply=show_reply)
    stores = StoreFormSet(request.POST, prefix="stores")
    if form.is_valid() and stores.is_valid():
        fields = {name: value for name, value in form.cleaned_data.items()
                  if name != "licence_image"}
        store_rows = [row for row in stores.cleaned_data if row and not row.get("DELETE")]
        for row in store_rows:
            row.pop("DELETE", None)
        try:
            application = application_save(
                applicant=request.user, application=application, fields=fields,
                stores=store_rows, licence_image=form.cleaned_data.get("licence_image"),
            )
            if "submit" in request.POST:
                try:
                    application_submit(application=application, by=request.user)
                except DomainError:
                    # The draft is kept; the form shows why it cannot be sent yet, and now
                    # posts to the saved draft rather than making another.
                    messages.info(request, _("Your draft has been saved."))
                    raise
                messages.success(request, _("Your application has been sent to the alliance."))
            else:
                messages.success(request, _("Your draft has been saved."))
            return redirect("onboarding:apply-detail", pk=application.pk)
        except DomainError as exc:
            field = exc.details.get("field")
            form.add_error(field if field in form.fields else None, str(exc.message))
            if exc.details.get("missing"):
                form.add_error(None, _("Missing: %(fields)s.")
                               % {"fields": ", ".join(exc.details["missing"])})
    return render(request, "dashboard/onboarding/form.html",
                  {"form": form, "stores": stores, "application": application}, status=400)


@access_required("dashboard.apply")
def apply_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save_application(request, None)
    return render(request, "dashboard/onboarding/form.html", {
        "form": ApplicationForm(), "stores": StoreFormSet(prefix="stores"), "application": None,
    })


@access_required("dashboard.apply")
def apply_detail(request: HttpRequest, pk: int) -> HttpResponse:
    application = selectors.application_get_for(applicant=request.user, pk=pk)
    if request.method == "POST":
        if not application.editable:
            messages.error(request, _("This application can no longer be edited."))
            return redirect("onboarding:apply-detail", pk=pk)
        return _save_application(request, application)
    context = {"application": application, "stores_list": application.stores.all()}
    if application.editable:
        context["form"] = ApplicationForm(
            instance=application,
            show_reply=application.status == MerchantApplication.Status.CHANGES_REQUESTED,
        )
        context["stores"] = StoreFormSet(prefix="stores",
                                         initial=_store_initial(application))
    return render(request, "dashboard/onboarding/detail.html", context)


@access_required("dashboard.apply")
@require_POST
def apply_submit(request: HttpRequest, pk: int) -> HttpResponse:
    application = selectors.application_get_for(applicant=request.user, pk=pk)
    try:
        application_submit(application=application, by=request.user)
        messages.success(request, _("Your application has been sent to the alliance."))
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("onboarding:apply-detail", pk=pk)


@access_required("dashboard.apply")
@require_POST
def apply_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    application = selectors.application_get_for(applicant=request.user, pk=pk)
    try:
        application_withdraw(application=application, by=request.user)
        messages.success(request, _("Your application has been withdrawn."))
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("onboarding:apply-detail", pk=pk)


def licence_response(application: MerchantApplication) -> FileResponse:
    """Stream a licence image from private storage with the type its content has."""
    if not application.licence_image:
        raise Http404
    stream = application.licence_image.open("rb")
    head = stream.read(32)
    stream.seek(0)
    found = sniff(head)
    response = FileResponse(
        stream, content_type=found.content_type if found else "application/octet-stream",
        as_attachment=found is None, filename=f"licence-{application.pk}"
        + (found.extension if found else ""),
    )
    response["Cache-Control"] = "private, no-store"
    return response


@access_required("dashboard.apply")
def apply_licence(request: HttpRequest, pk: int) -> HttpResponse:
    return licence_response(selectors.application_get_for(applicant=request.user, pk=pk))


# --- staff -------------------------------------------------------------------------------------


@access_required("dashboard.staff")
def staff_list(request: HttpRequest) -> HttpResponse:
    merchant = current_merchant(request)
    form = StaffInviteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                invitation = staff_invite(
                    merchant=merchant, email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"], invited_by=request.user,
                    site_url=request.build_absolute_uri("/"),
                )
                messages.success(request, _("An invitation was sent to %(email)s.")
                                 % {"email": invitation.email})
                return redirect("onboarding:staff")
            except DomainError as exc:
                form.add_error(None, str(exc.message))
        status = 400
    return render(request, "dashboard/staff/list.html", {
        "merchant": merchant, "form": form,
        "staff": selectors.staff_list(merchant=merchant),
        "invitations": selectors.invitation_open_list(merchant=merchant),
        "role_form": StaffRoleForm(),
    }, status=status)


@access_required("dashboard.staff")
@require_POST
def staff_role(request: HttpRequest, pk: int) -> HttpResponse:
    membership = selectors.staff_get(merchant=current_merchant(request), pk=pk)
    form = StaffRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose owner, manager or cashier."))
    else:
        try:
            staff_role_change(membership=membership, role=form.cleaned_data["role"])
            messages.success(request, _("The role has been changed."))
        except DomainError as exc:
            messages.error(request, str(exc.message))
    return redirect("onboarding:staff")


@access_required("dashboard.staff")
@require_POST
def staff_delete(request: HttpRequest, pk: int) -> HttpResponse:
    membership = selectors.staff_get(merchant=current_merchant(request), pk=pk)
    try:
        staff_remove(membership=membership)
        messages.success(request, _("%(person)s no longer works for this merchant.")
                         % {"person": membership.user})
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("onboarding:staff")


@access_required("dashboard.staff")
@require_POST
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = selectors.invitation_get(merchant=current_merchant(request), pk=pk)
    staff_invitation_revoke(invitation=invitation)
    messages.success(request, _("The invitation has been withdrawn."))
    return redirect("onboarding:staff")


@access_required("dashboard.invitation")
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation = staff_invitation_for_token(token)
    except DomainError as exc:
        raise Http404 from exc
    error = None
    if request.method == "POST":
        try:
            membership = staff_invitation_accept(token=token, user=request.user)
        except DomainError as exc:
            error = str(exc.message)
        else:
            request.session["merchant_id"] = membership.merchant_id
            messages.success(request, _("You now work for %(merchant)s.")
                             % {"merchant": membership.merchant})
            return redirect("dashboard:home")
    return render(request, "dashboard/staff/accept.html",
                  {"invitation": invitation, "error": error}, status=400 if error else 200)


# --- API keys ----------------------------------------------------------------------------------


@never_cache
@access_required("dashboard.api_keys")
def api_keys(request: HttpRequest) -> HttpResponse:
    merchant = current_merchant(request)
    form = ApiKeyForm(request.POST or None)
    created = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                api_key, raw = api_key_create(
                    merchant=merchant, name=form.cleaned_data["name"],
                    scopes=form.cleaned_data["scopes"], created_by=request.user,
                )
                # Shown on this response only: the page is not cached and the key not kept.
                created = {"key": api_key, "raw": raw}
                form = ApiKeyForm()
            except DomainError as exc:
                form.add_error(None, str(exc.message))
                status = 400
        else:
            status = 400
    return render(request, "dashboard/keys/list.html", {
        "merchant": merchant, "form": form, "created": created,
        "keys": selectors.api_key_list(merchant=merchant),
    }, status=status)


@access_required("dashboard.api_keys")
@require_POST
def api_key_delete(request: HttpRequest, pk: int) -> HttpResponse:
    api_key = selectors.api_key_get(merchant=current_merchant(request), pk=pk)
    api_key_revoke(api_key=api_key, revoked_by=request.user)
    messages.success(request, _("The key %(prefix)s… has been revoked.")
                     % {"prefix": api_key.prefix})
    return redirect("onboarding:api-keys")


# --- deposit -----------------------------------------------------------------------------------


@access_required("dashboard.deposit")
def deposit(request: HttpRequest) -> HttpResponse:
    merchant = current_merchant(request)
    form = TopUpForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            shared = alliance_asset("SHARED")
            try:
                deposit_top_up(merchant=merchant,
                               amount=shared.to_minor(form.cleaned_data["amount"]),
                               idempotency_key=f"top-up:{form.cleaned_data['idempotency_key']}")
                messages.success(request, _("%(amount)s SHARED moved into your deposit.")
                                 % {"amount": form.cleaned_data["amount"]})
                return redirect("onboarding:deposit")
            except DomainError as exc:
                form.add_error("amount", str(exc.message))
        status = 400
    return render(request, "dashboard/deposit/deposit.html", {
        "merchant": merchant, "form": form, "status": deposit_status(merchant),
        "shared": alliance_asset("SHARED"),
        "history": selectors.deposit_history(merchant=merchant),
        "leave_request": selectors.leave_request_open(merchant=merchant),
        "leave_requests": selectors.leave_request_list(merchant=merchant)[:10],
        "leave_form": LeaveForm(),
    }, status=status)


@access_required("dashboard.deposit")
@require_POST
def deposit_leave(request: HttpRequest) -> HttpResponse:
    form = LeaveForm(request.POST)
    if form.is_valid():
        try:
            merchant_leave_request(merchant=current_merchant(request), by=request.user,
                                   reason=form.cleaned_data["reason"])
            messages.success(request, _("Your request to leave has been sent to the alliance."))
        except DomainError as exc:
            messages.error(request, str(exc.message))
    else:
        messages.error(request, _("The reason is too long."))
    return redirect("onboarding:deposit")


@access_required("dashboard.deposit")
@require_POST
def deposit_leave_cancel(request: HttpRequest) -> HttpResponse:
    leave_request = selectors.leave_request_open(merchant=current_merchant(request))
    if leave_request is None:
        raise Http404
    try:
        merchant_leave_cancel(leave_request=leave_request, by=request.user)
        messages.success(request, _("You stay in the alliance."))
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("onboarding:deposit")


# --- member imports ----------------------------------------------------------------------------


@access_required("dashboard.import")
def imports(request: HttpRequest) -> HttpResponse:
    merchant = current_merchant(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    report = member_import = None
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                member_import, report = member_import_check(
                    merchant=merchant, upload=form.cleaned_data["file"],
                    uploaded_by=request.user)
                status = 200 if report.ok else 400
            except DomainError as exc:
                form.add_error("file", str(exc.message))
    page = Paginator(selectors.member_import_list(merchant=merchant), 20).get_page(
        request.GET.get("page"))
    return render(request, "dashboard/onboarding/imports.html", {
        "merchant": merchant, "form": form, "report": report, "checked": member_import,
        "page": page,
    }, status=status)


@access_required("dashboard.import")
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    member_import = selectors.member_import_get(merchant=current_merchant(request), pk=pk)
    context = {"member_import": member_import,
               "claims": selectors.member_import_claims_summary(member_import=member_import)}
    template = ("dashboard/onboarding/_import_progress.html" if request.htmx
                else "dashboard/onboarding/import_detail.html")
    return render(request, template, context)


@access_required("dashboard.import")
@require_POST
def import_start(request: HttpRequest, pk: int) -> HttpResponse:
    member_import = selectors.member_import_get(merchant=current_merchant(request), pk=pk)
    try:
        member_import_start(member_import=member_import)
        messages.success(request, _("The import has started."))
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("onboarding:import-detail", pk=pk)
