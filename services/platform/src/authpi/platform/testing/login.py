"""Human login from the outside, for end-to-end tests over the `platform` fixture: an issuer and
its clients made through the Core API with the official `authpi-admin` SDK, a person's browser
as an httpx client that reads the hosted portal's HTML forms (hidden fields included) and posts
them the way a browser would, and a small HTTP server on loopback for a browser to land on after
a redirect. Nothing here reaches inside the platform: every step is an HTTP request."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from authpi_admin import AuthPIAdmin
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from authpi.platform.testing.running import RunningPlatform
from authpi.testing.plugin import eventually

PASSWORD = "correct horse battery staple"
SCOPES = ["openid", "profile", "email"]
SIGNING_ALGS = 3  # an issuer publishes one key per algorithm (ES256, EdDSA, RS256)


def admin_sdk(platform: RunningPlatform) -> AuthPIAdmin:
    """The admin SDK with the platform's bootstrap key and account."""
    return AuthPIAdmin(
        api_key=(platform.api_key_id, platform.api_key_secret),
        account_id=platform.account_id,
        base_url=platform.api_url,
        retries=False,
    )


def new_email(prefix: str = "user") -> str:
    return f"{prefix}-{secrets.token_hex(5)}@example.com"


def query_of(url: str) -> dict[str, str]:
    """The first value of each query parameter of `url`."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


# Tenants


@dataclass
class LoginTenant:
    """An issuer with a public client (SPA, PKCE, no secret) and a confidential client (web,
    client secret), both on the same redirect and post-logout URIs."""

    platform: RunningPlatform
    admin: AuthPIAdmin
    issuer_id: str
    issuer_url: str
    redirect_uri: str
    post_logout_uri: str
    spa_id: str
    web_id: str
    web_secret: str

    async def discovery(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"{self.issuer_url}/.well-known/openid-configuration")
        response.raise_for_status()
        return response.json()

    async def token(self, data: dict[str, str]) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(f"{self.issuer_url}/token", data=data)

    async def introspect(self, token: str) -> dict[str, Any]:
        """What the issuer says of `token`, asked by the confidential client (introspection
        answers only about the asking client's own tokens: any other is `active: false`)."""
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.post(
                f"{self.issuer_url}/introspect",
                data={"token": token, "client_id": self.web_id, "client_secret": self.web_secret},
            )
        response.raise_for_status()
        return response.json()


async def issuer_ready(platform: RunningPlatform, issuer_id: str) -> None:
    """Wait until the IdP serves the issuer's discovery document and its signing keys."""
    base = f"{platform.idp_url}/{issuer_id}"

    async def served() -> bool:
        async with httpx.AsyncClient(timeout=30) as http:
            found = await http.get(f"{base}/.well-known/openid-configuration")
            keys = await http.get(f"{base}/jwks.json")
        return (
            found.status_code == 200
            and keys.status_code == 200
            and len(keys.json().get("keys", [])) == SIGNING_ALGS
        )

    await eventually(served)


async def client_ready(issuer_url: str, client_id: str, redirect_uri: str) -> None:
    """Wait until /authorize knows the client: a valid request is redirected (not a 400 page)."""
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": "openid", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256", "state": "ready",
    }  # fmt: skip

    async def known() -> bool:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(f"{issuer_url}/authorize", params=params)
        return response.status_code == 302

    await eventually(known)


async def settings_applied(issuer_url: str, check: Any) -> None:
    """Wait until the portal's login page satisfies `check(html)` (issuer settings travel to the
    token service through events)."""

    async def applied() -> bool:
        async with httpx.AsyncClient(timeout=30) as http:
            page = await http.get(f"{issuer_url}/login")
        return page.status_code == 200 and bool(check(page.text))

    await eventually(applied)


async def login_tenant(
    platform: RunningPlatform,
    *,
    redirect_uri: str = "https://app.example.com/callback",
    post_logout_uri: str = "https://app.example.com/signed-out",
    name: str = "e2e",
    settings: dict[str, Any] | None = None,
    client_name: str = "Example App",
) -> LoginTenant:
    """A new issuer (with `settings`, when given) and both clients, once the IdP serves them."""
    admin = admin_sdk(platform)
    issuer = await admin.issuers.create({"name": f"{name}-{secrets.token_hex(4)}"})
    if settings is not None:
        await admin.issuers.update(issuer.id, {"settings": settings})
    scope = admin.issuer(issuer.id)
    client_settings = {
        "redirect_uris": [redirect_uri],
        "post_logout_redirect_uris": [post_logout_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": SCOPES,
    }
    spa = await scope.clients.create(
        {"name": client_name, "type": "spa", "settings": client_settings}
    )
    web = await scope.clients.create(
        {"name": f"{client_name} (server)", "type": "web", "settings": client_settings}
    )
    issuer_url = f"{platform.idp_url}/{issuer.id}"
    await issuer_ready(platform, issuer.id)
    await client_ready(issuer_url, spa.id, redirect_uri)
    await client_ready(issuer_url, web.id, redirect_uri)
    assert web.secret is not None
    return LoginTenant(
        platform=platform, admin=admin, issuer_id=issuer.id, issuer_url=issuer_url,
        redirect_uri=redirect_uri, post_logout_uri=post_logout_uri, spa_id=spa.id,
        web_id=web.id, web_secret=web.secret,
    )  # fmt: skip


# A person's browser over httpx


@dataclass
class Form:
    action: str  # absolute
    method: str
    fields: dict[str, str]
    buttons: list[tuple[str, str]]  # (name, value) of each submit button (e.g. decision=allow)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"attrs": a, "inputs": [], "buttons": []})
        elif tag == "input" and self.forms:
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return  # a box left unticked sends nothing
            self.forms[-1]["inputs"].append(a)
        elif tag == "button" and self.forms:
            self.forms[-1]["buttons"].append(a)


def forms_of(html: str, page_url: str) -> list[Form]:
    """The page's forms: absolute action, method, the value of every named input, and the
    name/value of each submit button."""
    parser = _FormParser()
    parser.feed(html)
    found: list[Form] = []
    for raw in parser.forms:
        fields = {i["name"]: i.get("value", "") for i in raw["inputs"] if i.get("name")}
        buttons = [(b["name"], b.get("value", "")) for b in raw["buttons"] if b.get("name")]
        found.append(
            Form(
                action=urljoin(page_url, raw["attrs"].get("action") or page_url),
                method=(raw["attrs"].get("method") or "get").lower(),
                fields=fields,
                buttons=buttons,
            )
        )
    return found


def form_of(html: str, page_url: str) -> Form:
    """The page's one form."""
    found = forms_of(html, page_url)
    assert len(found) == 1, f"expected one form on {page_url}, found {len(found)}:\n{html}"
    return found[0]


class PortalBrowser:
    """One person's browser: its own cookie jar, redirects followed step by step so that each
    hop can be checked. `trail` lists every URL it requested, in order."""

    def __init__(self) -> None:
        self.http = httpx.AsyncClient(timeout=30, follow_redirects=False)
        self.trail: list[str] = []

    async def __aenter__(self) -> PortalBrowser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def get(self, url: str) -> httpx.Response:
        self.trail.append(url)
        return await self.http.get(url)

    async def post(self, url: str, data: dict[str, str]) -> httpx.Response:
        self.trail.append(url)
        return await self.http.post(url, data=data)

    async def page(self, url: str) -> tuple[httpx.Response, Form]:
        """GET a portal page and read its one form."""
        response = await self.get(url)
        assert response.status_code == 200, (url, response.status_code, response.text)
        return response, form_of(response.text, str(response.url))

    async def submit(
        self, url: str, values: dict[str, str], *, button: str | None = None
    ) -> httpx.Response:
        """Load the page at `url`, fill its form with `values` (hidden fields kept as the page
        set them, csrf included) and post it; `button` names the submit button's value to send."""
        _, form = await self.page(url)
        data = {**form.fields, **values}
        if button is not None:
            [name] = [k for k, v in form.buttons if v == button]
            data[name] = button
        return await self.post(form.action, data)

    async def send(self, form: Form, values: dict[str, str]) -> httpx.Response:
        """Post `form` as its page set it (hidden fields and csrf kept) with `values` added: a
        form kept from a page loaded earlier, sent now."""
        return await self.post(form.action, {**form.fields, **values})

    async def sign_up(
        self, issuer_url: str, email: str, password: str = PASSWORD, name: str = "Ada Lovelace"
    ) -> httpx.Response:
        """Sign up on the portal (no authorization): the answer is the redirect after it."""
        return await self.submit(
            f"{issuer_url}/signup", {"email": email, "password": password, "name": name}
        )

    async def authorize(
        self,
        authorize_url: str,
        email: str,
        password: str = PASSWORD,
        *,
        redirect_uri: str,
        consent: str = "allow",
        second_factor: Callable[[], dict[str, str]] | None = None,
    ) -> str:
        """Follow an authorization request through the portal as a person would: the login page
        (if asked), the second-factor page (if asked: `second_factor()` gives the fields to
        send, e.g. `{"code": ...}`), the consent page (if asked), until the browser is sent to
        `redirect_uri`; returns that callback URL."""
        location = authorize_url
        response = await self.get(location)
        for _ in range(8):
            if response.status_code not in (302, 303):
                raise AssertionError(
                    f"{location} answered {response.status_code}: {response.text[:2000]}"
                )
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(redirect_uri):
                return location
            path = urlsplit(location).path
            if path.endswith("/login"):
                response = await self.submit(location, {"email": email, "password": password})
            elif path.endswith("/mfa"):
                if second_factor is None:
                    raise AssertionError(f"a second factor was asked for at {location}")
                response = await self.submit(location, second_factor())
            elif path.endswith("/consent"):
                response = await self.submit(location, {}, button=consent)
            else:
                response = await self.get(location)
        raise AssertionError(f"no redirect to {redirect_uri}; trail {self.trail}")

    def cookie(self, name: str) -> str | None:
        for c in self.http.cookies.jar:
            if c.name == name:
                return c.value
        return None


# A page for a real browser to land on


@dataclass
class Landing:
    """An HTTP server on 127.0.0.1 that answers every GET with a small HTML page and records the
    URLs it was asked for."""

    url: str  # http://127.0.0.1:<port>
    requests: list[str] = field(default_factory=list[str])

    async def wait_for(self, path: str, timeout: float = 30.0) -> str:
        """The first request to `path` (its full URL, query included)."""

        async def arrived() -> str | None:
            for url in self.requests:
                if urlsplit(url).path == path:
                    return url
            return None

        found = await eventually(arrived, timeout=timeout)
        assert found is not None
        return found


@contextmanager
def landing_server() -> Generator[Landing]:
    landing = Landing(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            landing.requests.append(f"{landing.url}{self.path}")
            body = (
                b"<!doctype html><html><head><meta charset='utf-8'><title>Example App</title>"
                b"</head><body><h1 id='landed'>Example App</h1></body></html>"
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    landing.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield landing
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def until(check: Any, timeout: float = 30.0) -> Any:
    """`eventually` for a synchronous check (e.g. a WebDriver probe run in a thread)."""

    async def probe() -> Any:
        return await asyncio.to_thread(check)

    return await eventually(probe, timeout=timeout)


# Steps for the headless Chromium (run them with `await browser.run(step)`)

WAIT_S = 30


def fill(fields: dict[str, str], submit: str = "submit") -> Callable[[WebDriver], None]:
    """Type into the page's fields (by id) and click the button `submit`, then wait until the
    browser has left the page (the clicked button is gone from the document)."""

    def typed(d: WebDriver) -> bool:
        # A page still settling (the document of a redirect replacing the one just found) makes
        # an element stale between find and type: type the whole form again on the new document.
        # Nothing is submitted before every field is typed, so a retry never sends twice.
        try:
            for field_id, value in fields.items():
                element = d.find_element(By.ID, field_id)
                element.clear()
                element.send_keys(value)
        except WebDriverException as exc:
            if not node_gone(exc):
                raise
            return False
        return True

    def steps(d: WebDriver) -> None:
        WebDriverWait(d, WAIT_S).until(typed)
        button = d.find_element(By.ID, submit)
        button.click()
        WebDriverWait(d, WAIT_S).until(left_document(button))

    return steps


def node_gone(exc: WebDriverException) -> bool:
    """Whether a WebDriver error says that the element's document has been replaced."""
    return isinstance(exc, StaleElementReferenceException) or (
        "does not belong to the document" in str(exc)
    )


def left_document(element: WebElement) -> Callable[[WebDriver], bool]:
    """A wait condition: the element is gone from the document. Chromium reports a node of a
    replaced document either as stale or, mid-navigation, with an inspector error saying that
    the node "does not belong to the document"; both mean the page has been left."""

    def gone(_d: WebDriver) -> bool:
        try:
            element.is_enabled()
        except WebDriverException as exc:
            if not node_gone(exc):
                raise
            return True
        return False

    return gone


def click(element_id: str) -> Callable[[WebDriver], None]:
    """Click the link or button `element_id` and wait until the browser has left the page."""

    def steps(d: WebDriver) -> None:
        element = d.find_element(By.ID, element_id)
        element.click()
        WebDriverWait(d, WAIT_S).until(left_document(element))

    return steps


def alert_open(d: WebDriver) -> bool:
    """Whether a JavaScript dialog (alert, confirm, prompt) is showing."""
    try:
        d.switch_to.alert  # noqa: B018 (raises when there is none)
    except NoAlertPresentException:
        return False
    return True


def page_state(d: WebDriver) -> dict[str, Any]:
    """What a person sees: URL, title, heading, the page's alert boxes and body text, and
    whether a JavaScript dialog is open."""
    headings = d.find_elements(By.TAG_NAME, "h1")
    return {
        "url": d.current_url,
        "title": d.title,
        "h1": headings[0].text if headings else "",
        "alerts": [a.text for a in d.find_elements(By.CSS_SELECTOR, ".alert")],
        "alert_open": alert_open(d),
        "text": d.find_element(By.TAG_NAME, "body").text,
    }
