"""Set-up shared by the human-login benchmarks: `authpi up` as a subprocess (free ports, its own
PostgreSQL and NATS, AUTHPI_IDP_WORKERS processes on the IdP port, the development mail sink on
the Core API port), then through the Core API with the official authpi-admin SDK: one issuer, a
public client (SPA: authorization code with PKCE, no secret), a confidential client (web: a client
secret) and users with an email username and a password.

The redirect URI is a loopback URL that nothing serves: a benchmark reads the `Location` of the
authorization response and never follows it. `python -m tests.bench.human` runs the set-up once
and prints what it made (a smoke check of this module)."""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvloop

from authpi.platform.testing.process import Running, platform_process
from authpi.testing.plugin import eventually

REDIRECT_URI = "http://127.0.0.1:9/callback"
POST_LOGOUT_URI = "http://127.0.0.1:9/signed-out"
USER_SCOPES = ["openid", "profile", "email"]


class BenchUser(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    username: str  # an email address: the login name, and where its mail goes
    password: str
    # False while the Core API refuses a password on Create User: the user exists, but can sign
    # in only once a password is set through the portal (signup, reset).
    password_set: bool


class HumanLoginTenant(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    api_url: str
    idp_url: str
    issuer_id: str
    issuer_url: str  # {idp_url}/{issuer_id}: discovery, /authorize, /token, the portal
    public_client_id: str
    confidential_client_id: str
    confidential_client_secret: str
    redirect_uri: str
    scopes: list[str]
    users: list[BenchUser]

    @property
    def mail_url(self) -> str:
        """Where the platform's mail is captured (authpi.platform.testing.mail reads it)."""
        return f"{self.api_url}/dev/mail.json"


@contextlib.asynccontextmanager
async def human_login_platform(
    *, workers: int = 2, users: int = 1, issuer_settings: dict[str, Any] | None = None
) -> AsyncIterator[tuple[Running, HumanLoginTenant]]:
    """A fresh platform and its login tenant, removed (servers and data) afterwards."""
    work = Path(tempfile.mkdtemp(prefix="authpi-bench-login-"))
    try:
        async with platform_process(workers, work) as running:
            tenant = await set_up_human_login(running, users=users, issuer_settings=issuer_settings)
            yield running, tenant
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def set_up_human_login(
    running: Running, *, users: int = 1, issuer_settings: dict[str, Any] | None = None
) -> HumanLoginTenant:
    """The issuer, both clients and `users` users; returns once the issuer's discovery document,
    its signing keys and both clients are served by the IdP port."""
    from authpi_admin import AuthPIAdmin

    creds = running.creds
    async with AuthPIAdmin(
        api_key=(creds["api_key_id"], creds["api_key_secret"]), account_id=creds["account_id"],
        base_url=running.api_url, retries=False,
    ) as admin:  # fmt: skip
        body: dict[str, Any] = {"name": "bench-login"}
        if issuer_settings is not None:
            body["settings"] = issuer_settings
        issuer = await admin.issuers.create(body)
        clients = admin.issuer(issuer.id).clients
        public = await clients.create(_client("bench-login-spa", "spa"))
        confidential = await clients.create(_client("bench-login-web", "web"))
        made = [await _user(admin, str(issuer.id), i) for i in range(users)]
    tenant = HumanLoginTenant(
        account_id=creds["account_id"], api_url=running.api_url, idp_url=running.idp_url,
        issuer_id=str(issuer.id), issuer_url=f"{running.idp_url}/{issuer.id}",
        public_client_id=str(public.id), confidential_client_id=str(confidential.id),
        confidential_client_secret=str(confidential.secret), redirect_uri=REDIRECT_URI,
        scopes=list(USER_SCOPES), users=made,
    )  # fmt: skip
    async with httpx.AsyncClient(timeout=10) as http:
        await eventually(lambda: _served(http, tenant), 60.0)
    return tenant


def _client(name: str, client_type: str) -> dict[str, Any]:
    return {
        "name": name, "type": client_type,
        "settings": {
            "grant_types": ["authorization_code", "refresh_token"], "scopes": USER_SCOPES,
            "redirect_uris": [REDIRECT_URI], "post_logout_redirect_uris": [POST_LOGOUT_URI],
        },
    }  # fmt: skip


async def _user(admin: Any, issuer_id: str, index: int) -> BenchUser:
    """A user with a password when the Core API takes one on create (core-api.md 3.9), else
    without (see BenchUser.password_set)."""
    from authpi_admin.errors import ValidationError

    username = f"bench-{index}-{secrets.token_hex(4)}@example.test"
    password = secrets.token_urlsafe(18)
    body = {
        "username_type": "email", "username": username, "password": password,
        "profile": {"first_name": "Bench", "last_name": f"User {index}"},
    }  # fmt: skip
    users = admin.issuer(issuer_id).users
    try:
        user = await users.create(body)
        password_set = True
    except ValidationError as refused:
        if not any(f.get("field") == "password" for f in refused.fields):
            raise
        user = await users.create({k: v for k, v in body.items() if k != "password"})
        password_set = False
    return BenchUser(id=str(user.id), username=username, password=password,
                     password_set=password_set)  # fmt: skip


async def _served(http: httpx.AsyncClient, tenant: HumanLoginTenant) -> bool:
    """Discovery and signing keys answer, and the IdP knows both clients: a client_credentials
    request of a client it did not know would be 401 invalid_client; the confidential client,
    registered without that grant, gets 400 unauthorized_client once it is known."""
    discovery = await http.get(f"{tenant.issuer_url}/.well-known/openid-configuration")
    jwks = await http.get(f"{tenant.issuer_url}/jwks.json")
    if discovery.status_code != 200 or jwks.status_code != 200 or not jwks.json()["keys"]:
        return False
    token = await http.post(
        f"{tenant.issuer_url}/token",
        data={
            "grant_type": "client_credentials", "client_id": tenant.confidential_client_id,
            "client_secret": tenant.confidential_client_secret,
        },
    )  # fmt: skip
    return token.status_code == 400


async def _smoke(workers: int, users: int) -> dict[str, Any]:
    async with human_login_platform(workers=workers, users=users) as (_, tenant):
        async with httpx.AsyncClient(timeout=10) as http:
            mail = await http.get(tenant.mail_url)
        summary = msgspec.to_builtins(tenant)
        summary["confidential_client_secret"] = "(set)"
        for user in summary["users"]:
            user["password"] = "(set)"
        summary["dev_mail_status"] = mail.status_code
        return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tests.bench.human")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=1)
    args = parser.parse_args(argv)
    print(json.dumps(uvloop.run(_smoke(args.workers, args.users)), indent=2))


if __name__ == "__main__":
    main()
