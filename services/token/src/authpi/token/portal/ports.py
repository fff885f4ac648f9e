"""What the portal needs from the rest of the platform, as protocols: the authorization flow
and op sessions (authpi.token.endpoints.authorize), the token service's view of users
(authpi.token.queries.people), user sign-up in the directory (authpi.token.adapters.registry)
and outgoing mail (authpi.web.mail). The portal is written against these shapes only."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

import msgspec
import psycopg


class Device(msgspec.Struct, frozen=True, kw_only=True):
    user_agent: str | None = None
    ip: str | None = None


class FlowView(Protocol):
    """A validated authorization request waiting for the user."""

    @property
    def id(self) -> str: ...
    @property
    def issuer_id(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def client_name(self) -> str: ...
    @property
    def scopes(self) -> list[str]: ...
    @property
    def login_hint(self) -> str | None: ...


class OutcomeView(Protocol):
    @property
    def redirect(self) -> str: ...
    @property
    def set_cookie(self) -> str | None: ...
    @property
    def clear_cookie(self) -> bool: ...


class OpSessionView(Protocol):
    @property
    def user_id(self) -> str: ...


class Interactions(Protocol):
    async def flow(self, issuer_id: str, flow_id: str) -> Any: ...
    async def browser_session(self, issuer_id: str, cookie: str | None) -> Any: ...
    async def authenticated(
        self, flow: Any, *, user_id: str, method: str, device: Any, cookie: str | None
    ) -> Any: ...
    async def consented(
        self, flow: Any, *, user_id: str, granted: bool, cookie: str | None
    ) -> Any: ...
    async def login_without_flow(
        self, issuer_id: str, *, user_id: str, method: str, device: Any, cookie: str | None
    ) -> Any: ...


class UserView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def issuer_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def username_type(self) -> str: ...


class People(Protocol):
    async def user(self, conn: psycopg.AsyncConnection[Any], user_id: str) -> Any: ...
    async def user_by_username(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, username: str
    ) -> Any: ...
    def username_hash(self, issuer_id: str, username: str) -> str: ...
    async def claims(
        self, conn: psycopg.AsyncConnection[Any], user: Any, scopes: Collection[str]
    ) -> dict[str, Any]: ...


class Registry(Protocol):
    async def register(
        self,
        *,
        account_id: str,
        issuer_id: str,
        username_type: str,
        username: str,
        profile: dict[str, Any],
    ) -> Any: ...


class MailMessage(msgspec.Struct, frozen=True, kw_only=True):
    to: str
    subject: str
    text: str
    html: str | None = None


class Mailer(Protocol):
    async def send(self, message: Any) -> None: ...
