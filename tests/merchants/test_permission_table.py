"""Role × page: every onboarding, staff, key, deposit, import, application, governance and
supervision page admits exactly the roles ``alliance.permissions.ACCESS`` gives its area.

The cases are generated: each page's area is read from the view itself (``access_required``
marks it), the expectation from the table, so changing either changes the test. A page added
to the URL modules without a case here fails ``test_every_page_of_issue_5_is_covered``.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver, resolve, reverse

from alliance import console_urls
from alliance.models import Alert, Proposal
from alliance.permissions import ACCESS, Role
from alliance.services import alert_raise, proposal_create
from merchants import dashboard_urls
from merchants.models import LeaveRequest, MemberImport, StaffInvitation, StaffMembership
from merchants.services import api_key_create
from tests.alliance.conftest import user_with_role
from tests.factories import UserFactory
from tests.merchants.helpers import (
    _private_media,
    active_merchant,
    council,
    submitted_application,
    verified_user,
)

pytestmark = pytest.mark.django_db
__all__ = ["_private_media"]


@dataclass(frozen=True)
class Page:
    name: str  # "namespace:url-name"
    kwargs: Callable[[dict], dict] = lambda ctx: {}
    post_only: bool = False

    def url(self, ctx: dict) -> str:
        return reverse(self.name, kwargs=self.kwargs(ctx))


PAGES = [
    Page("onboarding:apply"),
    Page("onboarding:apply-new"),
    Page("onboarding:apply-detail", lambda c: {"pk": c["own_application"]}),
    Page("onboarding:apply-submit", lambda c: {"pk": c["own_application"]}, post_only=True),
    Page("onboarding:apply-withdraw", lambda c: {"pk": c["own_application"]}, post_only=True),
    Page("onboarding:apply-licence", lambda c: {"pk": c["own_application"]}),
    Page("onboarding:staff"),
    Page("onboarding:staff-role", lambda c: {"pk": c["membership"]}, post_only=True),
    Page("onboarding:staff-remove", lambda c: {"pk": c["membership"]}, post_only=True),
    Page("onboarding:invitation-revoke", lambda c: {"pk": c["invitation"]}, post_only=True),
    Page("onboarding:invitation-accept", lambda c: {"token": c["token"]}),
    Page("onboarding:api-keys"),
    Page("onboarding:api-key-revoke", lambda c: {"pk": c["api_key"]}, post_only=True),
    Page("onboarding:deposit"),
    Page("onboarding:deposit-leave", post_only=True),
    Page("onboarding:deposit-leave-cancel", post_only=True),
    Page("onboarding:imports"),
    Page("onboarding:import-detail", lambda c: {"pk": c["member_import"]}),
    Page("onboarding:import-start", lambda c: {"pk": c["member_import"]}, post_only=True),
    Page("governance:applications"),
    Page("governance:application", lambda c: {"pk": c["application"]}),
    Page("governance:application-licence", lambda c: {"pk": c["application"]}),
    Page("governance:application-request-changes", lambda c: {"pk": c["application"]},
         post_only=True),
    Page("governance:application-approve", lambda c: {"pk": c["application"]}, post_only=True),
    Page("governance:application-reject", lambda c: {"pk": c["application"]}, post_only=True),
    Page("governance:leaving"),
    Page("governance:leaving-approve", lambda c: {"pk": c["leave"]}, post_only=True),
    Page("governance:leaving-reject", lambda c: {"pk": c["leave"]}, post_only=True),
    Page("governance:home"),
    Page("governance:proposal-new", post_only=True),
    Page("governance:proposal", lambda c: {"pk": c["proposal"]}),
    Page("governance:proposal-approve", lambda c: {"pk": c["proposal"]}, post_only=True),
    Page("governance:proposal-cancel", lambda c: {"pk": c["proposal"]}, post_only=True),
    Page("governance:parameter", lambda c: {"key": "min_deposit_shared"}),
    Page("governance:supervision"),
    Page("governance:supervision-merchant", lambda c: {"pk": c["merchant"]}),
    Page("governance:alerts"),
    Page("governance:alert-ack", lambda c: {"pk": c["alert"]}, post_only=True),
]


class _Rows(dict):
    """The rows object pages need, made on first use: most cases need one or none."""

    def __init__(self, user):
        super().__init__()
        self.user = user
        self.membership = (StaffMembership.objects.filter(user=user)
                           .select_related("merchant").first() if user else None)

    @property
    def own_merchant(self):
        if "_merchant" not in self:
            self["_merchant"] = (self.membership.merchant if self.membership
                                 else active_merchant(code="OTHER"))
        return self["_merchant"]

    def __missing__(self, key):
        self[key] = value = getattr(self, f"make_{key}")()
        return value

    def make_own_application(self):
        return submitted_application(applicant=self.user or verified_user(),
                                     licence_number="LIC-OWN", asset_code="OWNAPP").pk

    def make_application(self):
        return submitted_application(licence_number="LIC-QUEUE", asset_code="QUEUED").pk

    def make_membership(self):
        membership = self.membership or StaffMembership.objects.filter(
            merchant=self.own_merchant).first()
        return membership.pk

    def make_invitation(self):
        return StaffInvitation.objects.create(
            merchant=self.own_merchant, email="x@example.com", role="cashier",
            token_hash=secrets.token_hex(32), expires_at="2099-01-01T00:00:00Z").pk

    def make_token(self):
        return "no-such-token"

    def make_api_key(self):
        return api_key_create(merchant=self.own_merchant, name="Till",
                              scopes=["purchases"])[0].pk

    def make_member_import(self):
        from ledger.services import asset_create_brand

        merchant = self.own_merchant
        asset = merchant.assets.first() or asset_create_brand(
            merchant=merchant, code=f"P{merchant.pk}", name_zh="积分", name_en="Points",
            units_per_cny=1)
        return MemberImport.objects.create(merchant=merchant, asset=asset, filename="m.csv",
                                           sha256="0" * 64).pk

    def make_leave(self):
        return LeaveRequest.objects.create(merchant=active_merchant(code="LEAVER"),
                                           requested_by=UserFactory()).pk

    def make_proposal(self):
        members = council(2)
        return proposal_create(kind=Proposal.Kind.SET_PARAMETER, proposed_by=members[0],
                               data={"key": "inflation_rate", "value": "0.03"}).pk

    def make_merchant(self):
        return self.own_merchant.pk

    def make_alert(self):
        return alert_raise(kind=Alert.Kind.ABUSE, key="abuse:test")[0].pk


def _area(url: str) -> str:
    return resolve(url).func.access_area


CASES = [
    pytest.param(role, page, id=f"{role.value}-{page.name.split(':')[1]}")
    for page in PAGES for role in Role
]


@pytest.mark.parametrize(("role", "page"), CASES)
def test_each_role_reaches_exactly_the_pages_its_areas_allow(role: Role, page: Page):
    # given a user holding only this role (or a visitor), and rows for the object pages
    user = user_with_role(role)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    if user is not None:
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    url = page.url(_Rows(user))
    area = _area(url)

    # when they open the page (a GET, also for a form's target: nothing is changed)
    response = client.get(url)

    # then the table decides
    if role in ACCESS[area]:
        assert response.status_code not in (302, 403), (area, response.status_code)
        if page.post_only:
            assert response.status_code == 405
    elif role == Role.ANONYMOUS:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
    else:
        assert response.status_code == 403


def test_every_page_of_issue_5_is_covered():
    # given the routes of the onboarding and console URL modules
    names = set()
    for module, namespace in ((dashboard_urls, "onboarding"), (console_urls, "governance")):
        for pattern in module.urlpatterns:
            assert isinstance(pattern, URLPattern)
            names.add(f"{namespace}:{pattern.name}")
            # each view names an area of the table
            assert pattern.callback.access_area in ACCESS
    # then each has its generated cases
    assert names == {page.name for page in PAGES}
    assert get_resolver()  # the site's resolver includes both modules
    assert reverse("onboarding:apply") == "/dashboard/apply/"
    assert reverse("governance:home") == "/console/governance/"
