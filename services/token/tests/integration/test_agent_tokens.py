"""Agent tokens (idp-api.md 5.5, platform.md 3): an agent created with the official authpi-admin
SDK mints a token with a secret verifier through the official authpi-idp SDK; the token service
knows the agent only from agent.* events. Lifetime exactly 300 s, `dat.type` agent, no `sid`,
scopes within the agent's; suspension, deletion and a removed verifier stop new tokens within a
second; another issuer's agent id is refused."""

from __future__ import annotations

import asyncio

import httpx
import jwt
import pytest
from authpi_admin import AuthPIAdmin
from authpi_idp import IdpClient
from authpi_idp.errors import OAuthError

from authpi.testing.plugin import eventually

# Public APIs only: also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


class Issuer:
    def __init__(self, platform, admin: AuthPIAdmin, issuer_id: str) -> None:
        self.platform = platform
        self.admin = admin
        self.id = issuer_id
        self.url = f"{platform.idp_url}/{issuer_id}"

    @property
    def agents(self):
        return self.admin.issuer(self.id).agents

    def verifiers(self, agent_id: str):
        return self.admin.issuer(self.id).agent(agent_id).verifiers

    async def token(self, agent_id: str, secret: str, **extra) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as http:
            return await http.post(
                f"{self.url}/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": agent_id,
                    "client_secret": secret,
                    **extra,
                },
            )

    async def agent(self, scopes: list[str]) -> tuple[str, str, str]:
        agent = await self.agents.create({"name": "bot", "scopes": scopes})
        verifier = await self.verifiers(agent.id).create({"type": "secret"})

        async def usable() -> bool:
            return (await self.token(agent.id, verifier.secret)).status_code == 200

        await eventually(usable)
        return agent.id, verifier.id, verifier.secret


@pytest.fixture
def new_issuer(platform, issuer_with_keys):
    async def make() -> Issuer:
        admin, issuer_id = await issuer_with_keys(platform, "agents")
        return Issuer(platform, admin, issuer_id)

    return make


@pytest.fixture
async def issuer(new_issuer) -> Issuer:
    return await new_issuer()


async def test_sdk_agent_token_verifies_with_300s_and_narrowed_scope(issuer):
    agent_id, _, secret = await issuer.agent(["tickets:read", "tickets:write"])
    async with IdpClient(issuer.url, agent_id, client_secret=secret) as idp:
        authenticated = await idp.client_credentials(["tickets:read"])
    assert authenticated.id == agent_id and authenticated.type.value == "agent"
    assert authenticated.tokens.refresh_token is None and authenticated.tokens.id_token is None
    token = authenticated.tokens.access_token
    async with httpx.AsyncClient(timeout=30) as http:
        config = (await http.get(f"{issuer.url}/.well-known/openid-configuration")).json()
    jwks = jwt.PyJWKClient(config["jwks_uri"], cache_keys=False)
    key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(
        token, key.key, algorithms=[header["alg"]], issuer=issuer.url, audience=agent_id
    )
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == agent_id and claims["client_id"] == agent_id
    assert claims["dat"] == {"type": "agent"} and "sid" not in claims
    assert claims["exp"] - claims["iat"] == 300 and claims["scope"] == "tickets:read"
    resp = await issuer.token(agent_id, secret)
    assert resp.json()["expires_in"] == 300
    assert resp.json()["scope"] == "tickets:read tickets:write"


async def test_wider_scope_is_invalid_scope(issuer):
    agent_id, _, secret = await issuer.agent(["tickets:read"])
    async with IdpClient(issuer.url, agent_id, client_secret=secret) as idp:
        with pytest.raises(OAuthError) as caught:
            await idp.client_credentials(["tickets:read", "tickets:write"])
    assert caught.value.error == "invalid_scope"


async def test_suspend_stops_new_tokens_and_reactivation_restores(issuer):
    agent_id, _, secret = await issuer.agent(["tickets:read"])
    await issuer.agents.update(agent_id, {"status": "suspended", "status_reason": "review"})

    async def refused() -> bool:
        resp = await issuer.token(agent_id, secret)
        return resp.status_code == 401 and resp.json()["error"] == "invalid_client"

    await eventually(refused, timeout=1.0)
    await issuer.agents.update(agent_id, {"status": "active"})

    async def accepted() -> bool:
        return (await issuer.token(agent_id, secret)).status_code == 200

    await eventually(accepted, timeout=1.0)
    await issuer.agents.update(agent_id, {"status": "blocked"})
    await eventually(refused, timeout=1.0)


async def test_removed_verifier_and_deleted_agent_stop_within_a_second(issuer):
    agent_id, verifier_id, secret = await issuer.agent(["tickets:read"])
    second = await issuer.verifiers(agent_id).create({"type": "secret"})

    async def works(s: str) -> bool:
        return (await issuer.token(agent_id, s)).status_code == 200

    await eventually(lambda: works(second.secret))
    await issuer.verifiers(agent_id).delete(verifier_id)

    async def first_refused() -> bool:
        return (await issuer.token(agent_id, secret)).status_code == 401

    await eventually(first_refused, timeout=1.0)
    assert await works(second.secret)
    await issuer.agents.delete(agent_id)

    async def second_refused() -> bool:
        return (await issuer.token(agent_id, second.secret)).status_code == 401

    await eventually(second_refused, timeout=1.0)


async def test_another_issuers_agent_is_refused(issuer, new_issuer):
    agent_id, _, secret = await issuer.agent(["tickets:read"])
    other = await new_issuer()
    resp = await other.token(agent_id, secret)
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    wrong = await issuer.token(agent_id, "agts_" + "x" * 43)
    assert wrong.status_code == 401
