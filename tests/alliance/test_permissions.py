"""Each role reaches exactly its sections: the cases are generated from ``ACCESS``.

A page's area is read from the view itself (``access_required`` marks it), so a page that
changes its area, or a row of the table that changes, changes the expectations here too.
"""

import pytest
from django.contrib.admin.sites import site as admin_site
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from alliance.permissions import ACCESS, Role

from .conftest import user_with_role

pytestmark = pytest.mark.django_db

SECTION_PAGES = ["/", "/dashboard/", "/console/", "/explorer/", "/admin/"]
# The Django admin guards itself (``admin.site.has_permission``); it must follow the table's row.
ADMIN_AREA = "admin"
FORBIDDEN_PAGE_TEXT = "You do not have access to this page"

ALL_ROLES = list(Role)


def area_of(path: str) -> str:
    if path.startswith("/admin/"):
        return ADMIN_AREA
    view = resolve(path).func
    return view.access_area


def expected_outcome(role: Role, area: str) -> str:
    if role in ACCESS[area]:
        return "allowed"
    return "login" if role == Role.ANONYMOUS else "forbidden"


PAGE_CASES = [
    pytest.param(role, path, id=f"{role.value}-{path.strip('/') or 'root'}")
    for path in SECTION_PAGES
    for role in ALL_ROLES
]


@pytest.mark.parametrize(("role", "path"), PAGE_CASES)
def test_each_role_reaches_exactly_its_section_pages(client_as, role: Role, path: str):
    # given a user holding only this role (or nobody signed in)
    client = client_as(role)
    outcome = expected_outcome(role, area_of(path))

    # when they open the section's page, following the site's own redirects
    response = client.get(path, follow=True, HTTP_ACCEPT_LANGUAGE="en")

    # then the table decides: the page, the 403 page, or the sign-in page
    if outcome == "allowed":
        assert response.status_code == 200
        assert response.redirect_chain == []
    elif outcome == "forbidden":
        assert response.status_code == 403
        assert FORBIDDEN_PAGE_TEXT in response.content.decode()
        # the admin first sends to its login URL, which answers 403 for a signed-in user
        assert len(response.redirect_chain) <= (1 if path == "/admin/" else 0)
    else:
        assert response.status_code == 200
        final_url = response.redirect_chain[-1][0]
        assert final_url.startswith(reverse("account_login"))
        assert "next=" in final_url


def test_the_root_page_shows_the_wallet_only_to_those_the_storefront_admits(client_as):
    # given a visitor and a shopper
    visitor = Client()
    shopper = client_as(Role.SHOPPER)

    # when each opens /
    as_visitor = visitor.get("/", HTTP_ACCEPT_LANGUAGE="en")
    as_shopper = shopper.get("/", HTTP_ACCEPT_LANGUAGE="en")

    # then the visitor gets the welcome page and the shopper the wallet
    assert Role.ANONYMOUS not in ACCESS["storefront"]
    assert Role.SHOPPER in ACCESS["storefront"]
    assert as_visitor.templates[0].name == "storefront/landing.html"
    # (the wallet page extends the storefront's home shell)
    assert as_shopper.templates[0].name == "storefront/wallet/home.html"
    assert "storefront/home.html" in [t.name for t in as_shopper.templates]


def _site_patterns(resolver: URLResolver, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            found += _site_patterns(entry, prefix + str(entry.pattern))
        else:
            found.append((prefix + str(entry.pattern), entry))
    return found


# Areas of the site that are not section pages: allauth's own account pages, the API (guarded
# per endpoint by DRF permissions), the admin, language switching and the health probe.
_NOT_SECTION_PAGES = ("accounts/", "api/", "admin/", "i18n/", "healthz", "static/", "media/")


def test_every_page_declares_its_area_in_the_permission_table():
    # given every URL of the site that renders one of our pages
    pages = [
        (route, pattern)
        for route, pattern in _site_patterns(get_resolver())
        if not route.startswith(_NOT_SECTION_PAGES)
    ]
    assert len(pages) >= 4

    # when we look at what guards each view
    areas = {
        route: getattr(pattern.callback, "access_area", None)
        or getattr(getattr(pattern.callback, "view_class", None), "access", None)
        for route, pattern in pages
    }

    # then each one goes through the permission layer with an area of the table
    assert {route: area for route, area in areas.items() if area not in ACCESS} == {}


def test_the_admin_site_follows_the_tables_admin_row(rf):
    # given a request from a user of each role
    # then the admin lets in exactly the roles of ACCESS["admin"]
    for role in ALL_ROLES:
        user = user_with_role(role)
        request = rf.get("/admin/")
        request.user = user if user is not None else AnonymousUser()
        assert admin_site.has_permission(request) == (role in ACCESS[ADMIN_AREA]), role


# --- The API: the same table through DRF, answering SPEC §7's error shape ---------------------


def _assert_error_shape(response, status: int | tuple[int, ...], code: str) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


API_CASES = [pytest.param(role, id=role.value) for role in ALL_ROLES]


@pytest.mark.parametrize("role", API_CASES)
def test_console_api_admits_exactly_the_console_roles(client_as, role: Role):
    # given a user holding only this role
    client = client_as(role)

    # when they ask for the console's system status
    response = client.get("/api/v1/console/status", HTTP_ACCEPT_LANGUAGE="en")

    # then console roles get the status; others get 403 (401/403 anonymous) in the error shape
    if role in ACCESS["console"]:
        assert response.status_code == 200
        assert set(response.json()["checks"]) == {"database", "broker", "cache"}
    elif role == Role.ANONYMOUS:
        _assert_error_shape(response, (401, 403), "not_authenticated")
    else:
        _assert_error_shape(response, 403, "permission_denied")


def test_me_answers_the_signed_in_users_roles_and_member_code(client_as):
    # given the owner of a merchant
    client = client_as(Role.OWNER)

    # when they ask who they are
    response = client.get("/api/v1/me")

    # then they see their member code, both roles, and the merchant they work for
    assert response.status_code == 200
    body = response.json()
    user = response.wsgi_request.user
    assert body["member_code"] == user.member_code
    assert body["roles"] == ["owner", "shopper"]
    assert body["merchant"]["slug"] == user.merchant_roles.get().merchant.slug


def test_me_refuses_an_anonymous_caller_in_the_error_shape(client):
    # given nobody signed in
    # when the API is asked who they are
    response = client.get("/api/v1/me", HTTP_ACCEPT_LANGUAGE="en")

    # then it answers 401/403 in the error shape
    _assert_error_shape(response, (401, 403), "not_authenticated")


def test_an_unknown_api_path_answers_404_in_the_error_shape(client_as):
    # given a signed-in shopper
    client = client_as(Role.SHOPPER)

    # when they ask for an API path that does not exist
    response = client.get("/api/v1/no-such-thing", HTTP_ACCEPT_LANGUAGE="en")

    # then the answer is JSON in the error shape, not the HTML 404 page
    assert response["Content-Type"].startswith("application/json")
    _assert_error_shape(response, 404, "not_found")
