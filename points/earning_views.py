"""Earning pages (SPEC §4.1, §4.4).

Storefront: the member QR (a signed token redrawn every minute by htmx polling), the member
tiers with what the next tier needs, and the tasks with a button to complete each.
Dashboard: the cashier's purchase form, the earning rule editor with a live preview, tiers,
and the merchant's tasks.

Each page: ``access_required`` lets the right roles in, a form reads the input, one service
writes, the template shows the result. A service's ``DomainError`` becomes a form error or a
message, never a 500; rows are looked up through the requester's own merchant.
"""

import segno
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from alliance.errors import DomainError
from alliance.idempotency import request_fingerprint
from alliance.permissions import access_required, can_access, current_merchant
from alliance.templatetags.portal import local_name
from ledger.services import alliance_asset

from . import abuse, services, tasks_services
from .earning import active_rule, preview, tier_progress
from .earning_forms import (
    CategoryFormSet,
    EarningRuleForm,
    MemberTierForm,
    PurchaseForm,
    TaskCompleteForm,
    TaskForm,
    TimeWindowFormSet,
    category_multipliers,
)
from .members import QR_REFRESH_SECONDS, member_qr_token, member_resolve
from .models import EarningRule, MemberTier, Task
from .tasks_selectors import merchant_task_list, task_board, task_state


def _posted(request: HttpRequest):
    """The POST data to bind a form to, None on GET (an empty POST still binds)."""
    return request.POST if request.method == "POST" else None


# --- storefront: member QR and tiers ----------------------------------------------------------


def _qr_context(request: HttpRequest) -> dict:
    token = member_qr_token(request.user)
    svg = segno.make(token, error="m").svg_inline(
        scale=5, border=2, dark="#000", light="#fff", svgclass="member-qr-svg",
        omitsize=True, title=_("Member QR code"))
    return {"qr_svg": svg, "refresh_seconds": QR_REFRESH_SECONDS,
            "drawn_at": timezone.now()}


@never_cache
@access_required("storefront")
def member_qr(request: HttpRequest) -> HttpResponse:
    """The member QR to show at the till; htmx redraws it every minute with a fresh token."""
    return render(request, "storefront/earning/member_qr.html", _qr_context(request))


@never_cache
@access_required("storefront")
def member_qr_code(request: HttpRequest) -> HttpResponse:
    """The QR alone, for the page's polling."""
    return render(request, "storefront/earning/_qr_code.html", _qr_context(request))


@access_required("storefront")
def member_tiers(request: HttpRequest) -> HttpResponse:
    progress = sorted(tier_progress(shopper=request.user, at=timezone.now()),
                      key=lambda p: local_name(p.merchant))
    return render(request, "storefront/earning/member_tiers.html", {"progress": progress})


# --- storefront: tasks ------------------------------------------------------------------------

BROWSE_SESSION_KEY = "task_browse_tokens"


def _browse_tokens(request: HttpRequest) -> dict:
    tokens = request.session.get(BROWSE_SESSION_KEY)
    return tokens if isinstance(tokens, dict) else {}


def _browsing_ids(request: HttpRequest) -> set[int]:
    return {int(pk) for pk in _browse_tokens(request) if pk.isdigit()}


@access_required("storefront")
def tasks(request: HttpRequest) -> HttpResponse:
    board = task_board(user=request.user, at=tasks_services.clock())
    response = render(request, "storefront/earning/tasks.html", {
        "board": board, "browsing_ids": _browsing_ids(request), "form": TaskCompleteForm(),
    })
    abuse.device_cookie_set(request, response)
    return response


def _task_card(request: HttpRequest, task: Task, *, error: str = "", status: int = 200,
               done: bool = False) -> HttpResponse:
    state = task_state(user=request.user, task=task, at=tasks_services.clock())
    return render(request, "storefront/earning/_task_card.html", {
        "state": state, "task": task, "error": error, "done": done,
        "browsing_ids": _browsing_ids(request), "form": TaskCompleteForm(),
    }, status=status)


def _after_task(request: HttpRequest, task: Task, *, error: str = "", status: int = 200,
                done: bool = False) -> HttpResponse:
    if request.htmx:
        return _task_card(request, task, error=error, status=status, done=done)
    if error:
        messages.error(request, error)
    elif done:
        messages.success(request, _("Reward received: %(task)s.") % {"task": local_name(task)})
    return redirect("earning:tasks")


@require_POST
@access_required("storefront")
def task_browse(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a browse task: the signed start time waits in the session until the claim."""
    task = get_object_or_404(Task, pk=pk, active=True, kind=Task.Kind.BROWSE)
    try:
        token = tasks_services.browse_start(task=task, user=request.user)
    except DomainError as exc:
        return _after_task(request, task, error=str(exc.message), status=exc.status)
    tokens = _browse_tokens(request)
    tokens[str(task.pk)] = token
    request.session[BROWSE_SESSION_KEY] = tokens
    return _after_task(request, task)


@require_POST
@access_required("storefront")
def task_complete(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("merchant"), pk=pk, active=True)
    form = TaskCompleteForm(request.POST)
    if not form.is_valid():
        return _after_task(request, task, error=_("Reload the page and try again."),
                           status=400)
    proof = {}
    if task.kind == Task.Kind.BROWSE:
        proof["token"] = _browse_tokens(request).get(str(task.pk), "")
    try:
        tasks_services.task_complete(
            task=task, user=request.user, ip=abuse.client_ip(request),
            device=abuse.device_id(request),
            idempotency_key=form.cleaned_data["idempotency_key"], proof=proof)
    except DomainError as exc:
        return _after_task(request, task, error=str(exc.message), status=exc.status)
    if task.kind == Task.Kind.BROWSE:
        tokens = _browse_tokens(request)
        tokens.pop(str(task.pk), None)
        request.session[BROWSE_SESSION_KEY] = tokens
    return _after_task(request, task, done=True)


# --- dashboard --------------------------------------------------------------------------------


def _merchant(request: HttpRequest):
    merchant = current_merchant(request)
    if merchant is None:
        raise Http404
    return merchant


def _page(request: HttpRequest, template: str, context: dict, status: int = 200):
    """A dashboard page: its merchant and whether the tabs that configure show."""
    context.setdefault("merchant", _merchant(request))
    context["can_configure"] = can_access(request, "dashboard.configure")
    return render(request, template, context, status=status)


@access_required("dashboard.configure")
def earning_home(request: HttpRequest) -> HttpResponse:
    merchant = _merchant(request)
    return _page(request, "dashboard/earning/home.html", {
        "merchant": merchant, "rule": active_rule(merchant),
        "tiers": MemberTier.objects.filter(merchant=merchant),
        "task_count": Task.objects.filter(merchant=merchant, active=True).count(),
    })


@access_required("dashboard.purchases")
def purchase_new(request: HttpRequest) -> HttpResponse:
    """The cashier's till: member code or QR, amount, order reference → one purchase."""
    merchant = _merchant(request)
    form = PurchaseForm(_posted(request), merchant=merchant)
    recorded = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                shopper = member_resolve(data["member"])
                recorded, replayed = services.purchase_record(
                    merchant=merchant, shopper=shopper, amount=data["amount"],
                    order_ref=data["order_ref"], idempotency_key=data["idempotency_key"],
                    fingerprint=request_fingerprint(request.path, {
                        "member": shopper.member_code, "amount": str(data["amount"]),
                        "order_ref": data["order_ref"],
                        "store": data["store"].pk if data.get("store") else None}),
                    store=data.get("store"),
                )
            except DomainError as exc:
                field = "member" if exc.code.startswith("member_") else None
                form.add_error(field, str(exc.message))
                status = exc.status if exc.status in (400, 409) else 400
            else:
                if replayed:
                    messages.info(request, _("This purchase was already recorded."))
                else:
                    messages.success(request, _("Purchase recorded."))
                form = PurchaseForm(merchant=merchant)
        else:
            status = 400
    context = {"merchant": merchant, "form": form, "recorded": recorded}
    if recorded is not None:
        context.update(brand=services.brand_asset(merchant),
                       sv=alliance_asset("SV").to_major(recorded.sv_shopper),
                       burned=alliance_asset("SHARED").to_major(recorded.shared_burned))
    return _page(request, "dashboard/earning/purchase.html", context, status=status)


def _rule_forms(request: HttpRequest, merchant, rule: EarningRule | None):
    tiers = list(MemberTier.objects.filter(merchant=merchant))
    data = request.POST if request.method == "POST" else None
    multipliers = (rule.multipliers if rule else {}) or {}
    initial = {"base_rate": rule.base_rate if rule else 1,
               "daily_cap": rule.daily_cap if rule else None,
               "budget": rule.budget if rule else None, "preview_amount": 200}
    for tier in tiers:
        if tier.code in multipliers.get("tiers", {}):
            initial[f"tier_{tier.code}"] = multipliers["tiers"][tier.code]
    windows = [{"weekdays": w.get("weekdays", []), "start": w.get("start"),
                "end": w.get("end"), "multiplier": w.get("multiplier")}
               for w in multipliers.get("time_windows", [])]
    categories = [{"category": c, "multiplier": m}
                  for c, m in multipliers.get("categories", {}).items()]
    form = EarningRuleForm(data, initial=initial, tiers=tiers)
    window_set = TimeWindowFormSet(data, prefix="windows",
                                   initial=windows + [{}] * (2 if data is None else 0))
    category_set = CategoryFormSet(data, prefix="categories",
                                   initial=categories + [{}] * (3 if data is None else 0))
    return form, window_set, category_set


def _draft(form, window_set, category_set, merchant) -> EarningRule:
    multipliers = {}
    windows = [w for w in (f.as_rule() for f in window_set) if w]
    if windows:
        multipliers["time_windows"] = windows
    categories = category_multipliers(category_set)
    if categories:
        multipliers["categories"] = categories
    tiers = form.tier_multipliers()
    if tiers:
        multipliers["tiers"] = tiers
    data = form.cleaned_data
    return EarningRule(merchant=merchant, base_rate=data["base_rate"], multipliers=multipliers,
                       daily_cap=data.get("daily_cap"), budget=data.get("budget"))


def _preview_points(form, draft: EarningRule, merchant) -> dict:
    amount = form.cleaned_data.get("preview_amount") or form.fields["preview_amount"].initial
    return {"preview_amount": amount,
            "preview_points": preview(merchant=merchant, amount=amount, at=timezone.now(),
                                      rule=draft)}


@access_required("dashboard.configure")
def rule_edit(request: HttpRequest) -> HttpResponse:
    """The earning rule: publishing makes a new version; earlier ones stay on record."""
    merchant = _merchant(request)
    rule = active_rule(merchant)
    form, window_set, category_set = _rule_forms(request, merchant, rule)
    context = {"merchant": merchant, "rule": rule, "form": form, "windows": window_set,
               "categories": category_set,
               "versions": EarningRule.objects.filter(merchant=merchant).order_by("-version")}
    status = 200
    if request.method == "POST":
        if form.is_valid() and window_set.is_valid() and category_set.is_valid():
            draft = _draft(form, window_set, category_set, merchant)
            if "preview" in request.POST:
                context.update(_preview_points(form, draft, merchant))
            else:
                try:
                    published = services.earning_rule_publish(
                        merchant=merchant, base_rate=draft.base_rate,
                        multipliers=draft.multipliers, daily_cap=draft.daily_cap,
                        budget=draft.budget, created_by=request.user)
                except DomainError as exc:
                    form.add_error(None, str(exc.message))
                    status = 400
                else:
                    messages.success(request, _("Version %(version)d is now in force.")
                                     % {"version": published.version})
                    return redirect("earning:rule")
        else:
            status = 400
    else:
        context.update(preview_amount=200,
                       preview_points=preview(merchant=merchant, amount=200,
                                              at=timezone.now()))
    return _page(request, "dashboard/earning/rule.html", context, status=status)


@require_POST
@access_required("dashboard.configure")
def rule_preview(request: HttpRequest) -> HttpResponse:
    """htmx: "a CNY 200 purchase now earns N points" for the form as it stands."""
    merchant = _merchant(request)
    form, window_set, category_set = _rule_forms(request, merchant, None)
    context = {}
    if form.is_valid() and window_set.is_valid() and category_set.is_valid():
        context = _preview_points(form, _draft(form, window_set, category_set, merchant),
                                  merchant)
    return render(request, "dashboard/earning/_preview.html", context)


@access_required("dashboard.configure")
def tiers(request: HttpRequest) -> HttpResponse:
    merchant = _merchant(request)
    form = MemberTierForm(_posted(request), merchant=merchant)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            services.member_tier_set(merchant=merchant, code=data["code"],
                                     name_zh=data["name_zh"], name_en=data["name_en"],
                                     threshold=data["threshold"])
            messages.success(request, _("Tier saved."))
            return redirect("earning:tiers")
        status = 400
    return _page(request, "dashboard/earning/tiers.html", {
        "merchant": merchant, "form": form,
        "tiers": MemberTier.objects.filter(merchant=merchant),
    }, status=status)


@require_POST
@access_required("dashboard.configure")
def tier_delete(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = _merchant(request)
    tier = get_object_or_404(MemberTier, pk=pk, merchant=merchant)
    services.member_tier_delete(merchant=merchant, code=tier.code)
    messages.success(request, _("Tier removed."))
    return redirect("earning:tiers")


def _task_fields(form: TaskForm) -> dict:
    return {name: form.cleaned_data.get(name) for name in TaskForm.Meta.fields}


@access_required("dashboard.configure")
def task_manage(request: HttpRequest) -> HttpResponse:
    merchant = _merchant(request)
    form = TaskForm(_posted(request))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                tasks_services.task_save(merchant=merchant, fields=_task_fields(form),
                                         created_by=request.user)
            except DomainError as exc:
                field = exc.details.get("field")
                form.add_error(field if field in form.fields else None, str(exc.message))
                status = 400
            else:
                messages.success(request, _("Task created."))
                return redirect("earning:tasks-manage")
        else:
            status = 400
    return _page(request, "dashboard/earning/tasks.html", {
        "merchant": merchant, "form": form, "tasks": merchant_task_list(merchant=merchant),
    }, status=status)


@access_required("dashboard.configure")
def task_edit(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = _merchant(request)
    task = get_object_or_404(Task, pk=pk, merchant=merchant)
    form = TaskForm(_posted(request), instance=task)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                tasks_services.task_save(merchant=merchant, task=task,
                                         fields=_task_fields(form))
            except DomainError as exc:
                field = exc.details.get("field")
                form.add_error(field if field in form.fields else None, str(exc.message))
                status = 400
            else:
                messages.success(request, _("Task saved."))
                return redirect("earning:tasks-manage")
        else:
            status = 400
    return _page(request, "dashboard/earning/task_form.html",
                  {"merchant": merchant, "form": form, "task": task}, status=status)


@require_POST
@access_required("dashboard.configure")
def task_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = _merchant(request)
    task = get_object_or_404(Task, pk=pk, merchant=merchant)
    tasks_services.task_set_active(task=task, active=not task.active)
    messages.success(request, _("Task resumed.") if task.active else _("Task paused."))
    return redirect("earning:tasks-manage")
