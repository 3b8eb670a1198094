"""Pages of the staff console and the public explorer, the error pages and the health endpoint."""

from datetime import timedelta

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import requires_csrf_token
from django.views.decorators.http import require_GET

from merchants.selectors import merchant_public_list

from .api_errors import json_error
from .context_processors import Section, visible_sections
from .health import health_report
from .permissions import access_required, can_access
from .selectors import HEARTBEAT_STALE_AFTER_SECONDS, worker_heartbeat_list

CONSOLE_SECTIONS = (
    Section(
        "console.applications", gettext_lazy("Applications"),
        gettext_lazy("Review merchants' applications to join: approve, reject, ask for changes."),
        "governance:applications",
    ),
    Section(
        "console.governance", gettext_lazy("Governance"),
        gettext_lazy(
            "Proposals to change alliance parameters, approved by M of N council members."
        ),
        "governance:home",
    ),
    Section(
        "console.supervision", gettext_lazy("Supervision"),
        gettext_lazy("Every merchant's issuance and flows, read-only, with anomaly alerts."),
        "governance:supervision",
    ),
    Section(
        "console.jobs", gettext_lazy("Jobs"),
        gettext_lazy("Scheduled jobs: airdrop, expiry, anchoring, with their progress."),
        "console_jobs:list",
    ),
)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every part answers; 503 naming each part that does not."""
    report = health_report()
    down = sorted(name for name, state in report.items() if state != "ok")
    body = {"status": "ok" if not down else "unavailable", "down": down, "checks": report}
    return JsonResponse(body, status=503 if down else 200)


@access_required("console")
def console_home(request: HttpRequest) -> HttpResponse:
    """The console shell: one card per section the requester's roles open."""
    context = {"sections": visible_sections(request, CONSOLE_SECTIONS)}
    if can_access(request, "console.jobs"):
        stale_before = timezone.now() - timedelta(seconds=HEARTBEAT_STALE_AFTER_SECONDS)
        context["workers"] = [
            {"name": beat.worker, "seen_at": beat.seen_at, "stale": beat.seen_at < stale_before}
            for beat in worker_heartbeat_list()[:20]
        ]
    return render(request, "console/home.html", context)


@access_required("explorer")
def explorer_home(request: HttpRequest) -> HttpResponse:
    """The public explorer's front page; it shows nothing personal."""
    return render(request, "explorer/home.html", {"merchants": merchant_public_list()})


def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """Stands in for the Django admin's own login form (``admin.site.login``).

    The admin form would be a second way in that skips allauth's MFA, rate limits and phone
    login, so visitors sign in through allauth and come back; a signed-in user who is not a
    superuser (SPEC §7: ``/admin/`` is for superusers only) gets the 403 page instead of the
    admin's "log in as someone else" form.
    """
    next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    next_url = next_url or reverse("admin:index")
    if not request.user.is_authenticated:
        return redirect_to_login(next_url)
    if not can_access(request, "admin"):
        raise PermissionDenied
    return redirect(next_url)


# --- Error pages ------------------------------------------------------------------------------
# ``/api/`` answers in SPEC §7's error shape; pages render in the active language.


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


@requires_csrf_token
def error_400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return json_error("bad_request", _("Bad request."), 400)
    return render(request, "400.html", status=400)


@requires_csrf_token
def error_403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return json_error("permission_denied", _("You do not have permission to do this."), 403)
    return render(request, "403.html", status=403)


@requires_csrf_token
def error_404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return json_error("not_found", _("Not found."), 404)
    return render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    # Rendered without the request's context: whatever broke (the database, a context
    # processor) must not break the error page too.
    if _wants_json(request):
        return json_error("server_error", _("Internal error; it has been logged."), 500)
    return HttpResponseServerError(loader.get_template("500.html").render())
