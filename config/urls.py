from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularSwaggerSplitView,
)

from alliance import views as alliance_views
from alliance.jobs_views import jobs_patterns
from alliance.urls import console_patterns, explorer_patterns
from points import spending_urls

urlpatterns = [
    path("healthz", alliance_views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: the CSP refuses inline code.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    # Onboarding, staff, keys, deposit and imports (merchants.dashboard_urls, "onboarding"),
    # then the dashboard's own shell.
    path("dashboard/", include("merchants.dashboard_urls")),
    # Spending: catalog, vouchers, exchange settings, lotteries (points.spending_urls).
    path("dashboard/", include(spending_urls.dashboard_patterns)),
    # Reports: KPIs, charts and the CSV export (merchants.report_urls).
    path("dashboard/", include("merchants.report_urls")),
    # Webhooks: endpoints, delivery log, replay (merchants.webhook_urls).
    path("dashboard/", include("merchants.webhook_urls")),
    path("dashboard/", include("merchants.urls")),
    # Scheduled jobs: progress, history, schedule (alliance.jobs_views).
    path("console/jobs/", include(jobs_patterns)),
    # Applications, governance and supervision (alliance.console_urls, "governance").
    path("console/", include("alliance.console_urls")),
    path("console/", include(spending_urls.console_patterns)),
    path("console/", include(console_patterns)),
    # The explorer's ledger pages (point types, transactions, proof of reserve).
    path("explorer/", include("alliance.explorer_urls")),
    # The transparency log's explorer pages (checkpoints, verify a receipt) come first.
    path("explorer/", include("ledger.urls")),
    path("explorer/", include(explorer_patterns)),
    # The shopper's wallet, history, notifications and nearby offers (points.storefront_urls).
    path("", include("points.storefront_urls")),
    # Spending: catalog, vouchers, exchange, lotteries (points.spending_urls).
    path("", include(spending_urls.storefront_patterns)),
    # Earning: member QR, tiers and tasks, and /dashboard/earning/ (points.earning_urls).
    path("", include("points.earning_urls")),
    path("", include("points.urls")),
]

if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

handler400 = "alliance.views.error_400"
handler403 = "alliance.views.error_403"
handler404 = "alliance.views.error_404"
handler500 = "alliance.views.error_500"
