"""``manage.py seed_demo`` builds the demo alliance once; running it again changes nothing."""

import io
import json

import pytest
from django.apps import apps
from django.core.management import call_command

from alliance.demo import DEMO_PASSWORD
from alliance.models import User
from ledger.models import Checkpoint, Transaction
from merchants.models import Merchant
from tests.ledger.log_helpers import log_key

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("log_key")]
__all__ = ["log_key"]


def _row_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def _seed_json() -> dict:
    out = io.StringIO()
    call_command("seed_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_seeding_twice_gives_the_same_data():
    # given a freshly seeded demo
    first = _seed_json()
    counts = _row_counts()
    members = sorted(User.objects.values_list("email", "member_code", "phone"))

    # when seed_demo runs again
    second = _seed_json()

    # then no table changed size, nobody changed, and the printed logins are identical
    assert _row_counts() == counts
    assert sorted(User.objects.values_list("email", "member_code", "phone")) == members
    assert second == first


def test_the_demo_has_what_the_issue_asks_for():
    # given a seeded demo
    report = _seed_json()

    # then it has three merchants with different points and rates, one rebating 10%
    merchants = report["merchants"]
    assert len(merchants) >= 3
    assert len({m["asset"] for m in merchants}) == len(merchants)
    assert len({m["units_per_cny"] for m in merchants}) == len(merchants)
    assert "0.1000" in {m["rebate_rate"] for m in merchants}
    assert all(Merchant.objects.get(slug=m["slug"]).stores.exists() for m in merchants)

    # and shoppers, staff, a supervisor and three council members who can sign in
    assert len(report["shoppers"]) >= 1
    assert all(s["member_code"] for s in report["shoppers"])
    assert len(report["council"]) == 3
    for login in [*report["shoppers"], *report["staff"], report["supervisor"], *report["council"]]:
        assert login["password"] == DEMO_PASSWORD
        assert User.objects.get(email=login["email"]).check_password(DEMO_PASSWORD)


def test_the_printed_logins_work_on_the_sign_in_page(client):
    # given a seeded demo and the first shopper it printed
    shopper = _seed_json()["shoppers"][0]

    # when they sign in with their phone number and the printed password
    response = client.post(
        "/accounts/login/", {"login": shopper["phone"], "password": shopper["password"]}
    )

    # then they reach their wallet, which shows their member code
    assert response.status_code == 302
    assert shopper["member_code"] in client.get("/").content.decode()


@pytest.mark.parametrize(
    ("who", "page"),
    [("owner", "/dashboard/"), ("staff", "/console/"), ("supervisor", "/console/"),
     ("council", "/console/"), ("admin", "/admin/")],
)
def test_every_printed_email_login_reaches_its_section(client, who: str, page: str):
    # given a seeded demo and one of the email-only logins it printed
    report = _seed_json()
    login = {
        "owner": report["merchants"][0]["staff"][0],
        "staff": report["staff"][0],
        "supervisor": report["supervisor"],
        "council": report["council"][0],
        "admin": report["admin"],
    }[who]

    # when they sign in on the sign-in page with the printed password
    response = client.post("/accounts/login/", {"login": login["email"],
                                                "password": login["password"]})

    # then they are in and their section opens
    assert response.status_code == 302
    assert client.get(page).status_code == 200


def test_the_demo_is_anchored_so_the_checkpoints_page_shows_it(client):
    # given a seeded demo
    _seed_json()

    # then one signed checkpoint covers every transaction it posted, and the explorer shows it
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.size == Transaction.objects.count() > 0
    page = client.get("/explorer/checkpoints/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f"/api/v1/log/checkpoints/{checkpoint.size}\">{checkpoint.size}</a>" in page

    # when it is seeded again, nothing new is posted, so nothing new is anchored
    _seed_json()
    assert list(Checkpoint.objects.all()) == [checkpoint]


def test_without_a_log_key_the_demo_is_seeded_unanchored(settings, tmp_path):
    # given no signer key and none to be made (DEBUG off)
    settings.LOG_SIGNER_KEY = ""
    settings.LOG_SIGNER_KEY_FILE = str(tmp_path / "missing.key")

    # when the demo is seeded, then it is there, with no checkpoint yet
    assert _seed_json()["merchants"]
    assert not Checkpoint.objects.exists()
