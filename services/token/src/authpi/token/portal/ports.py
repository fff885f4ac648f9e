"""What the portal needs from the authorization flow (authpi.token.endpoints.interactions
`Interactions`) and from outgoing mail (authpi.web.mail), as protocols."""

from __future__ import annotations

from typing import Any, Protocol

import msgspec


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
    @property
    def clients(self) -> Any: ...  # the issuer's clients by id (Known[ClientEntry])
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


class MailMessage(msgspec.Struct, frozen=True, kw_only=True):
    to: str
    subject: str
    text: str
    html: str | None = None


class Mailer(Protocol):
    async def send(self, message: Any) -> None: ...
