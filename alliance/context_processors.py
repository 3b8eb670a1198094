"""Navigation built from the permission table, so a link shows only where it leads somewhere."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .permissions import can_access, current_merchant

NAV = [
    ("storefront", "storefront:home", _("My points")),
    ("dashboard", "dashboard:home", _("Merchant dashboard")),
    ("console", "console:home", _("Staff console")),
    ("explorer", "explorer:home", _("Explorer")),
    ("admin", "admin:index", _("Admin")),
]


def navigation(request) -> dict:
    if request.path.startswith(("/api/", "/static/", "/healthz")):
        return {}
    items = []
    for area, url_name, label in NAV:
        if not can_access(request, area):
            continue
        url = reverse(url_name)
        active = request.path == url if url == "/" else request.path.startswith(url)
        items.append({"label": label, "url": url, "active": active})
    return {"nav_items": items, "current_merchant": current_merchant(request)}
