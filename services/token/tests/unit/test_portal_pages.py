"""Portal rendering: issuer branding reduced to safe values (an escaped name, an https logo URL,
a hex colour), every value escaped, strict security headers, and the CSRF field bound to the
flow and the browser's cookie."""

from __future__ import annotations

import pytest

from authpi.token.portal.common import (
    Page,
    links,
    message,
    require_verified_email,
    valid_email,
)
from authpi.token.portal.csrf import Csrf
from authpi.token.portal.pages import (
    DEFAULT_COLOR,
    NEUTRAL_MARK,
    Pages,
    branding,
    safe_color,
    safe_logo_url,
)

EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


@pytest.fixture(scope="module")
def pages() -> Pages:
    return Pages()


def login_context(**extra) -> dict:
    return {
        "title": "Sign in", "email": "", "error": None, "notice": None, "client_name": None,
        "signup_open": True, "links": links("i_1", "f_1"), "csrf": "c", "action": "/i_1/login",
        **extra,
    }  # fmt: skip


@pytest.mark.parametrize(
    "value",
    ["#fff", "#A0b1C2"],
)
def test_hex_colours_are_kept(value):
    assert safe_color(value) == value.lower()


@pytest.mark.parametrize(
    "value",
    ["red", "#ffff", "#fff;}body{background:url(x)", "expression(alert(1))", "", None, 7],
)
def test_anything_but_a_hex_colour_is_dropped(value):
    assert safe_color(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "http://cdn.example.com/logo.png",
        "javascript:alert(1)",
        "data:image/svg+xml,<svg onload=alert(1)>",
        'https://cdn.example.com/a"onerror="alert(1)',
        "https://user:pw@cdn.example.com/logo.png",
        "https://cdn.example.com;script-src */x.png",
        "https:///nohost.png",
        "//cdn.example.com/logo.png",
    ],
)
def test_logo_urls_other_than_plain_https_are_dropped(value):
    assert safe_logo_url(value) is None


def test_https_logo_url_is_kept():
    assert safe_logo_url("https://cdn.example.com:8443/l.png?v=1") == (
        "https://cdn.example.com:8443/l.png?v=1"
    )


def test_branding_falls_back_to_the_issuer_name_and_default_colour():
    brand = branding("acme-prod", {"branding": {"primary_color": "blue", "logo_url": "x"}})
    assert (brand.name, brand.logo_url, brand.primary_color) == ("acme-prod", None, DEFAULT_COLOR)


def test_script_in_branding_and_values_is_escaped(pages):
    brand = branding(EVIL, {"branding": {"display_name": EVIL, "primary_color": EVIL}})
    rendered = pages.render(
        "login.html", 200, brand, login_context(email=EVIL, error=EVIL, client_name=EVIL)
    )
    assert "<script>" not in rendered.html
    assert "<img src=x" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert f"--primary: {DEFAULT_COLOR};" in rendered.html


def test_every_template_escapes_its_values(pages):
    brand = branding("acme", {})
    common = {"csrf": "c", "action": EVIL, "error": EVIL, "notice": EVIL, "title": EVIL}
    signup = {"email": EVIL, "name": EVIL, "client_name": EVIL, "allowed": True}
    form = {"lead": EVIL, "button": EVIL, "email": EVIL}
    for page in (
        message(EVIL, EVIL, link={"href": EVIL, "label": EVIL}),
        message(EVIL, EVIL, detail=EVIL, secondary={"href": EVIL, "label": EVIL}, sent_to=EVIL),
        Page(template="consent.html", context={"client_name": EVIL, "scopes": [EVIL]}),
        Page(
            template="consent.html",
            context={"client_name": EVIL, "scopes": [EVIL], "account": EVIL},
        ),
        Page(
            template="email_form.html",
            context={**form, "links": links("i_1", None), "sent": True, "again": EVIL},
        ),
        Page(template="reset.html", context={"token": EVIL}),
        Page(
            template="confirm.html", context={"token": EVIL, "address": EVIL, "client_name": EVIL}
        ),
        Page(template="signup.html", context={**signup, "links": links("i_1", None)}),
        Page(template="email_form.html", context={**form, "links": links("i_1", None)}),
    ):
        html = pages.render(page.template, 200, brand, {**common, **page.context}).html
        assert "<script>" not in html, page.template
        assert "<img src=x" not in html, page.template


def test_pages_carry_a_strict_policy(pages):
    brand = branding("acme", {"branding": {"logo_url": "https://cdn.example.com/l.png"}})
    rendered = pages.render("login.html", 200, brand, login_context())
    policy = rendered.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "script-src" not in policy  # no script may run at all (default-src 'none')
    assert "img-src 'self' data: https://cdn.example.com" in policy
    assert rendered.headers["X-Frame-Options"] == "DENY"
    assert rendered.headers["Cache-Control"] == "no-store"
    nonce = policy.split("'nonce-", 1)[1].split("'", 1)[0]
    assert f'<style nonce="{nonce}">' in rendered.html


def test_login_page_has_the_ids_a_browser_test_drives(pages):
    html = pages.render("login.html", 200, branding("acme", {}), login_context()).html
    for element in ('id="email"', 'id="password"', 'id="submit"', 'name="csrf"'):
        assert element in html


def test_csrf_field_is_bound_to_the_flow_and_the_cookie():
    csrf = Csrf(b"k" * 32)
    cookie = Csrf.new_cookie()
    field = csrf.field("f_1", cookie)
    assert csrf.valid("f_1", cookie, field)
    assert not csrf.valid("f_2", cookie, field)
    assert not csrf.valid("f_1", Csrf.new_cookie(), field)
    assert not csrf.valid("f_1", None, field)
    assert not csrf.valid("f_1", cookie, None)
    assert not Csrf(b"j" * 32).valid("f_1", cookie, field)


@pytest.mark.parametrize(
    ("settings", "required"),
    [
        ({}, False),
        ({"access": {}}, False),
        ({"access": {"require_verified_email": False}}, False),
        ({"access": {"require_verified_email": True}}, True),
        ({"access": {"require_verified_email": "no"}}, True),  # malformed: fails closed
        ({"access": "nonsense"}, False),
    ],
)
def test_require_verified_email_setting(settings, required):
    assert require_verified_email(settings) is required


def test_consent_names_what_each_scope_allows(pages):
    context = {"csrf": "c", "action": "/i_1/consent", "client_name": "Acme", "scopes": [
        "openid", "email", "billing:read"]}  # fmt: skip
    html = pages.render("consent.html", 200, branding("acme", {}), context).html
    assert "See your email address" in html and "Confirm who you are" in html
    assert "Use the \u201cbilling:read\u201d permission" in html


def test_confirm_page_names_the_account_and_posts_the_token(pages):
    context = {"csrf": "c", "action": "/i_1/login-link/callback?token=t", "token": "t",
               "address": "ada@example.com", "client_name": None}  # fmt: skip
    html = pages.render("confirm.html", 200, branding("acme", {}), context).html
    assert 'Continue as <span class="address">ada@example.com</span>' in html
    assert '<form method="post"' in html and 'name="token" value="t"' in html


def test_without_a_logo_the_brand_shows_its_initial(pages):
    html = pages.render("login.html", 200, branding("acme", {}), login_context()).html
    assert '<span class="mark" aria-hidden="true">a</span>' in html
    with_logo = branding("acme", {"branding": {"logo_url": "https://cdn.example.com/l.png"}})
    html = pages.render("login.html", 200, with_logo, login_context()).html
    assert 'class="mark"' not in html and 'src="https://cdn.example.com/l.png"' in html


@pytest.mark.parametrize(
    ("name", "mark"),
    [
        ("acme", "a"),
        ('"Quoted" Corp', "Q"),
        ("(beta) portal", "b"),
        ("\u00c9cole", "\u00c9"),
        ("42 Labs", "4"),
        ("--", NEUTRAL_MARK),
        ("\u2014 \u2014", NEUTRAL_MARK),
    ],
)
def test_the_monogram_is_the_first_letter_or_digit(pages, name, mark):
    brand = branding(name, {})
    assert brand.mark == mark
    html = pages.render("login.html", 200, brand, login_context()).html
    assert f'<span class="mark" aria-hidden="true">{mark}</span>' in html


def test_a_sent_mail_form_shows_only_the_confirmation_and_a_send_again_link(pages):
    context = {
        "csrf": "c", "action": "/i_1/password/forgot", "title": "Reset your password",
        "lead": "Enter your email", "button": "Send reset link", "email": "",
        "notice": "If an account exists for that address, we have sent it an email.",
        "links": links("i_1", "f_1"), "sent": True, "again": links("i_1", "f_1")["forgot"],
    }  # fmt: skip
    html = pages.render("email_form.html", 200, branding("acme", {}), context).html
    assert "we have sent it an email" in html
    assert "<form" not in html and 'id="submit"' not in html and 'id="email"' not in html
    assert '<a href="/i_1/password/forgot?flow=f_1" id="again">send again</a>' in html
    unsent = pages.render("email_form.html", 200, branding("acme", {}), {**context, "sent": False})
    assert 'id="submit"' in unsent.html and 'id="again"' not in unsent.html


def test_consent_says_who_is_signed_in_and_offers_another_account(pages):
    context = {"csrf": "c", "action": "/i_1/consent?flow=f_1", "client_name": "Acme",
               "scopes": ["openid"], "account": "ada@example.com"}  # fmt: skip
    html = pages.render("consent.html", 200, branding("acme", {}), context).html
    assert 'Signed in as <strong class="address">ada@example.com</strong>' in html
    assert 'name="decision" value="switch"' in html and "Not you? Use another account" in html
    # the switch posts the consent form (one form, its CSRF field) with decision=switch
    assert (
        html.count("<form") == 1
        and '<form method="post" action="/i_1/consent?flow=f_1" id="decide">' in html
    )
    assert 'form="decide" id="switch"' in html


def test_a_message_shows_its_technical_detail_in_small_print(pages):
    page = message("Sign-in error", "This sign-in link is not valid", 400, detail="x: <b>y</b>")
    html = pages.render(page.template, 400, branding("acme", {}), page.context).html
    assert (
        '<p class="detail" id="detail">Technical detail: <code>x: &lt;b&gt;y&lt;/b&gt;</code>'
        in html
    )


def test_addresses_may_break_anywhere_but_other_text_keeps_its_words(pages):
    html = pages.render("login.html", 200, branding("acme", {}), login_context()).html
    assert ".address { overflow-wrap: anywhere; word-break: break-all; }" in html
    assert "word-break: break-all" not in html.replace(
        ".address { overflow-wrap: anywhere; word-break: break-all; }", ""
    )


@pytest.mark.parametrize(
    "raw",
    ["a@x.test,b@evil.test", "a;b@x.test", "Eve <e@x.test>", "a\x00b@x.test", "a\x7fb@x.test",
     "a b@x.test", "(a)@x.test", "a@x"],
)  # fmt: skip
def test_an_address_list_or_control_characters_are_not_an_email(raw: str):
    assert not valid_email(raw)


def test_plain_and_international_addresses_are_emails():
    assert valid_email("alice.smith+tag@example.com")
    assert valid_email("élise@bücher.de")
