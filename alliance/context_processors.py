"""Navigation built from the permission table, so a link shows only where it leads somewhere.

The top navigation (``NAV``) and the section cards of the dashboard and console shells
(``Section``) both ask ``alliance.permissions`` whether the requester may go there; no template
or view decides that on its own.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .permissions import ACCESS, Role, can_access, current_merchant, roles_of

NAV = [
    ("storefront", "storefront:home", _("My points")),
    ("dashboard", "dashboard:home", _("Merchant dashboard")),
    ("console", "console:home", _("Staff console")),
    ("explorer", "explorer:home", _("Explorer")),
    ("dashboard.apply", "onboarding:apply", _("Join as a merchant")),
    ("admin", "admin:index", _("Admin")),
]

# Paths that never render a page, so they skip the permission lookups (and their queries).
_NO_PAGE_PREFIXES = ("/api/", "/static/", "/media/", "/healthz")


@dataclass(frozen=True)
class Section:
    """A card on a shell page leading to one area of ``ACCESS``.

    ``url_name`` stays empty until the section's page exists; the card then says "coming soon"
    instead of linking to a 404.
    """

    area: str
    title: str | Promise
    description: str | Promise
    url_name: str = ""

    def __post_init__(self) -> None:
        if self.area not in ACCESS:
            raise KeyError(self.area)

    @property
    def slug(self) -> str:
        return self.area.replace(".", "-")

    @property
    def url(self) -> str:
        if not self.url_name:
            return ""
        try:
            return reverse(self.url_name)
        except NoReverseMatch:
            return ""


def visible_sections(request: HttpRequest, sections: Iterable[Section]) -> list[Section]:
    """The sections whose area the requester's roles reach, in their given order."""
    return [section for section in sections if can_access(request, section.area)]


def role_labels(request: HttpRequest) -> list[str]:
    """The requester's roles, most specific first, as translated labels for display."""
    held = roles_of(request)
    return [str(role.label) for role in reversed(Role) if role in held]


def navigation(request: HttpRequest) -> dict:
    if request.path.startswith(_NO_PAGE_PREFIXES):
        return {}
    items = []
    for area, url_name, label in NAV:
        if not can_access(request, area):
            continue
        url = reverse(url_name)
        active = request.path == url if url == "/" else request.path.startswith(url)
        items.append({"label": label, "url": url, "active": active})
    return {
        "nav_items": items,
        "current_merchant": current_merchant(request),
        "user_roles": role_labels(request),
    }
