"""The dashboard's home: a card for every section the role reaches, each linking to its page,
with one id per card."""

import re

import pytest
from django.test import Client

from merchants.models import StaffMembership
from tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

SPENDING_AND_SYSTEMS = {
    "dashboard-catalog": "/dashboard/catalog/",
    "dashboard-lotteries": "/dashboard/lotteries/",
    "dashboard-exchange": "/dashboard/exchange/",
    "dashboard-webhooks": "/dashboard/webhooks/",
}


def _home(role: str) -> str:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(StaffMembershipFactory(role=role).user)
    return client.get("/dashboard/").content.decode()


def _card_links(page: str) -> dict[str, str]:
    return dict(re.findall(r'id="section-([\w-]+)-title">\s*<a class="stretched-link" '
                           r'href="([^"]+)"', page))


def test_an_owner_finds_catalog_lotteries_exchange_and_webhooks_on_the_home():
    # when an owner opens the dashboard
    page = _home(StaffMembership.Role.OWNER)

    # then each of the four has its card, linking to its page, and no card id repeats
    links = _card_links(page)
    assert {slug: links.get(slug) for slug in SPENDING_AND_SYSTEMS} == SPENDING_AND_SYSTEMS
    ids = re.findall(r'<section [^>]*id="(section-[\w-]+)"', page)
    assert len(ids) == len(set(ids))
    assert "Exchange and deduction" in page and "Lotteries" in page


def test_each_role_gets_the_cards_of_the_pages_it_may_open():
    # a manager runs the catalog and lotteries; exchange and webhooks are the owner's
    manager = _card_links(_home(StaffMembership.Role.MANAGER))
    assert {"dashboard-catalog", "dashboard-lotteries"} <= set(manager)
    assert not {"dashboard-exchange", "dashboard-webhooks"} & set(manager)
    # a cashier validates vouchers only
    cashier = _card_links(_home(StaffMembership.Role.CASHIER))
    assert "dashboard-vouchers" in cashier
    assert not set(SPENDING_AND_SYSTEMS) & set(cashier)


@pytest.mark.parametrize(("role", "status"), [("owner", 200), ("manager", 403)])
def test_the_webhooks_pages_follow_their_own_area(role, status):
    client = Client()
    client.force_login(StaffMembershipFactory(role=role).user)
    assert client.get("/dashboard/webhooks/").status_code == status
