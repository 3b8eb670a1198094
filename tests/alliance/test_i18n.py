"""The portal speaks zh-hans (the default) and en, chosen from the browser or by the switch."""

import pytest
from django.conf import settings
from django.test import Client

from alliance.permissions import Role

pytestmark = pytest.mark.django_db

# One sentence of the landing page and its translation in the catalog.
LANDING_EN = "Welcome to Alliance Points"
LANDING_ZH = "欢迎使用联盟积分"


@pytest.mark.parametrize(
    ("accept_language", "expected", "absent", "html_lang"),
    [
        ("zh-CN,zh;q=0.9", LANDING_ZH, LANDING_EN, "zh-hans"),
        ("zh-Hans", LANDING_ZH, LANDING_EN, "zh-hans"),
        ("en-US,en;q=0.8", LANDING_EN, LANDING_ZH, "en"),
    ],
)
def test_the_browser_language_picks_the_pages_language(
    client: Client, accept_language: str, expected: str, absent: str, html_lang: str
):
    # given a visitor whose browser asks for a language
    # when they open the start page
    response = client.get("/", HTTP_ACCEPT_LANGUAGE=accept_language)

    # then the page is in that language, and says so
    page = response.content.decode()
    assert response.status_code == 200
    assert expected in page
    assert absent not in page
    assert f'<html lang="{html_lang}">' in page


def test_a_browser_asking_for_neither_language_gets_chinese(client: Client):
    # given a browser that asks for French only
    # when it opens the start page
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="fr-FR").content.decode()

    # then the alliance's default language, Simplified Chinese, is used
    assert LANDING_ZH in page


@pytest.mark.parametrize(("cookie", "expected"), [("en", LANDING_EN), ("zh-hans", LANDING_ZH)])
def test_the_language_cookie_wins_over_the_browser(client: Client, cookie: str, expected: str):
    # given a visitor who chose a language earlier, against their browser's wish
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = cookie
    browser = "zh-CN" if cookie == "en" else "en-US"

    # when they open the start page
    page = client.get("/", HTTP_ACCEPT_LANGUAGE=browser).content.decode()

    # then their choice is honoured
    assert expected in page


def test_the_language_switch_works_as_a_plain_form_without_javascript(client: Client):
    # given a Chinese page with its language form
    page = client.get("/explorer/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert 'action="/i18n/setlang/"' in page

    # when the visitor presses "English" (a plain POST, as a browser without JS sends it)
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/explorer/"})

    # then they come back to the same page, now in English, and it stays English
    assert response.status_code == 302
    assert response["Location"] == "/explorer/"
    page = client.get("/explorer/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "Member merchants" in page
    assert "成员商家" not in page


@pytest.mark.parametrize(
    ("role", "path", "english", "chinese"),
    [
        (Role.OWNER, "/dashboard/", "Your role: Owner", "您的角色：负责人"),
        (Role.ALLIANCE_STAFF, "/console/", "Applications", "入盟申请"),
        (Role.SHOPPER, "/", "Member code", "会员码"),
    ],
)
def test_signed_in_shells_render_in_both_languages(
    client_as, role: Role, path: str, english: str, chinese: str
):
    # given a user of the role that uses the page
    client = client_as(role)

    # when they open it in each language
    in_english = client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    in_chinese = client.get(path, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    # then each rendering carries its own translation
    assert english in in_english and chinese not in in_english
    assert chinese in in_chinese and english not in in_chinese


@pytest.mark.parametrize(
    ("language", "text"),
    [("en", "Page not found"), ("zh-hans", "页面不存在")],
)
def test_the_404_page_speaks_both_languages(client: Client, language: str, text: str):
    # given a visitor in one language
    # when they follow a dead link
    response = client.get("/no/such/page/", HTTP_ACCEPT_LANGUAGE=language)

    # then the 404 page is in their language
    assert response.status_code == 404
    assert text in response.content.decode()
