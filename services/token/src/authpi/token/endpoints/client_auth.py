"""Client authentication at the machine endpoints (RFC 6749 section 2.3.1, idp-api.md 5.2):
`client_secret_basic` or `client_secret_post`, never both and never with two different ids.
Secrets are compared as SHA-256 digests in constant time (DESIGN.md 6 explains why not Argon2); a
rotated secret keeps working until its grace ends.

Failures are throttled per (client, source address) with backoff (authpi.token.caches.lockouts):
a throttled pair gets 429 with Retry-After, before any look-up. Every other refusal, whether the
id is unknown, of another issuer, inactive, public, or the secret wrong, is the same 401 after
the same work (one digest compare, one counted failure), so answers and timing do not tell
which client ids exist."""

from __future__ import annotations

import base64
import hmac
from typing import Protocol, TypeVar
from urllib.parse import unquote_plus

import msgspec

from authpi.crypto.clock import Clock
from authpi.crypto.ids import sha256_hex
from authpi.token.caches.lockouts import Lockouts
from authpi.token.endpoints.errors import InvalidClient, Throttled
from authpi.token.endpoints.params import Form
from authpi.token.reactions.agents import AgentEntry
from authpi.token.reactions.clients import ClientEntry

T_co = TypeVar("T_co", covariant=True)


class Known(Protocol[T_co]):
    """What authentication reads of a per-process cache (caches.clients, caches.agents)."""

    def get(self, entry_id: str) -> T_co | None: ...


# Compared against when there is nothing to compare against, so that an unknown id costs the
# same digest compare as a known one.
_NO_DIGESTS = {"": "0" * 64}


class Credentials(msgspec.Struct, frozen=True):
    client_id: str
    secret: str | None
    basic: bool
    source: str | None = None  # the client address (authpi.web.addresses)


def presented_credentials(form: Form) -> Credentials:
    """The client's credentials from exactly one method (RFC 6749 section 2.3.1)."""
    header = form.authorization
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise InvalidClient("unsupported Authorization scheme; use Basic", basic=True)
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError as exc:  # non-ASCII text, bad base64 or bad UTF-8
            raise InvalidClient("malformed Basic credentials", basic=True) from exc
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep or not raw_id:
            raise InvalidClient("malformed Basic credentials", basic=True)
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if body_secret is not None:
            raise InvalidClient("use one client authentication method, not two", basic=True)
        if body_id is not None and body_id != client_id:
            raise InvalidClient("client_id does not match the Basic credentials", basic=True)
        return Credentials(client_id, secret, True, form.source)
    if body_id is None:
        raise InvalidClient("client authentication is required")
    return Credentials(body_id, body_secret, False, form.source)


class ClientAuthenticator:
    def __init__(
        self,
        clients: Known[ClientEntry],
        agents: Known[AgentEntry],
        lockouts: Lockouts,
        clock: Clock,
    ) -> None:
        self.clients = clients
        self.agents = agents
        self.lockouts = lockouts
        self.clock = clock

    async def agent(self, issuer_id: str, creds: Credentials) -> tuple[AgentEntry, str]:
        """An active agent of this issuer and the id of the secret verifier that matched
        (platform.md 3.3: any of its secret verifiers), or invalid_client."""
        self._unthrottled(issuer_id, creds)
        agent = self.agents.get(creds.client_id)
        usable = agent is not None and agent.issuer_id == issuer_id and agent.status == "active"
        verifier = await self._verify(issuer_id, creds, agent.secrets if agent and usable else {})
        assert agent is not None  # _verify refuses an empty set of digests
        return agent, verifier

    async def confidential(self, issuer_id: str, creds: Credentials) -> ClientEntry:
        """An active confidential client of this issuer whose secret matches, or invalid_client.
        Every refusal reads the same, so a caller learns nothing about which check failed."""
        self._unthrottled(issuer_id, creds)
        client = self.clients.get(creds.client_id)
        usable = (
            client is not None
            and client.issuer_id == issuer_id
            and client.status == "active"
            and client.confidential
        )
        await self._verify(issuer_id, creds, self._digests(client) if client and usable else {})
        assert client is not None  # _verify refuses an empty set of digests
        return client

    async def client(self, issuer_id: str, creds: Credentials) -> ClientEntry:
        """A public client by its id alone (it has no secret; PKCE binds its codes), else a
        confidential client by its secret (idp-api.md 5.2): the user-facing grants."""
        client = self.clients.get(creds.client_id)
        if (
            client is not None
            and not client.confidential
            and client.issuer_id == issuer_id
            and client.status == "active"
            and creds.secret is None
        ):
            self._unthrottled(issuer_id, creds)
            return client
        return await self.confidential(issuer_id, creds)

    def _digests(self, client: ClientEntry) -> dict[str, str]:
        digests = {"current": client.secret_sha256} if client.secret_sha256 else {}
        if (
            client.previous_sha256
            and client.previous_valid_until is not None
            and client.previous_valid_until > self.clock.now_ms()
        ):
            digests["previous"] = client.previous_sha256  # the rotation grace
        return digests

    def _unthrottled(self, issuer_id: str, creds: Credentials) -> None:
        """A (client, source) pair in backoff is refused before anything is looked up."""
        retry_after = self.lockouts.retry_after(issuer_id, creds.client_id, creds.source)
        if retry_after:
            raise Throttled(retry_after)

    async def _verify(self, issuer_id: str, creds: Credentials, digests: dict[str, str]) -> str:
        """Which of `digests` the presented secret matches; a miss (no digests at all included:
        an unknown or unusable id) counts one failure for the (client id, source) pair."""
        if creds.secret is None:
            raise InvalidClient(basic=creds.basic)
        presented = sha256_hex(creds.secret)
        matched = None
        for name, digest in (digests or _NO_DIGESTS).items():  # every one: no early exit to time
            if hmac.compare_digest(presented, digest):
                matched = name
        if matched is not None and digests:
            await self.lockouts.succeeded(issuer_id, creds.client_id, creds.source)
            return matched
        retry_after = await self.lockouts.failed(issuer_id, creds.client_id, creds.source)
        if retry_after:
            raise Throttled(retry_after)
        raise InvalidClient(basic=creds.basic)
