"""Verifiers of an agent (platform.md 3.3, 4.3, contract 4.14): list (one unpaged page), add
(`secret`: the plaintext once in `data.secret`; `wallet`: CAIP-2 network + address, or a CAIP-10
`address`), remove, and the wallet proof challenge (`POST …/verifiers/challenge`).

Scopes: `issuers.agents:read` to list, `:write` to add and remove; a `secret` verifier, which
hands out a credential that mints tokens, takes `issuers.agents:manage` (core-api.md 5.2)."""

from __future__ import annotations

import msgspec
from litestar import Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.agent.api.agents import AGENT, READ, WRITE
from authpi.agent.api.models import (
    ChallengeCreate,
    ChallengeOut,
    CreatedVerifier,
    VerifierCreate,
    VerifierOut,
    WalletCredential,
)
from authpi.agent.domain import wallets
from authpi.agent.domain.wallets import Wallet, bad
from authpi.agent.handlers.agents import Agents, Proof, VerifierSpec
from authpi.agent.queries.agents import VerifierRow
from authpi.errors import InsufficientScope, NotFound
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.web.text import check_storable

VERIFIERS = AGENT + "/verifiers"
VERIFIER = VERIFIERS + "/{verifier_id:str}"
CHALLENGE = VERIFIERS + "/challenge"
TAGS = ["Agent verifiers"]
SECRET_SCOPE = "issuers.agents:manage"


def _wallet(credential: WalletCredential | None) -> tuple[Wallet, Proof | None]:
    if credential is None or credential.address is None:
        raise bad("credential.address", "is required for a wallet verifier", "required")
    address = credential.address
    if credential.network is None:
        found = wallets.account(address, "credential.address")
    elif address.count(":") == 2:  # a CAIP-10 account id: it must agree with `network`
        found = wallets.account(address, "credential.address")
        if found.network != wallets.network(credential.network):
            raise bad("credential.address", "is on another network than credential.network")
    else:
        found = wallets.wallet(wallets.network(credential.network), address)
    if (credential.proof is None) != (credential.nonce is None):
        raise bad("credential.proof", "and credential.nonce go together", "required")
    if credential.proof is None or credential.nonce is None:
        return found, None
    return found, Proof(nonce=credential.nonce, signature=credential.proof)


async def _verifier(agents: Agents, issuer_id: str, agent_id: str, verifier_id: str) -> VerifierRow:
    async with agents.rt.pool.connection() as conn:
        rows = await agents.queries.verifiers(conn, issuer_id, agent_id, verifier_id)
    if not rows:
        raise NotFound("no such verifier", reason="agent.verifier_not_found")
    return rows[0]


@get(VERIFIERS, operation_id="listAgentVerifiers", summary="List Agent Verifiers", tags=TAGS,
     guards=READ)  # fmt: skip
async def list_verifiers(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    agent_id: FromPath[str],
    agents: NamedDependency[Agents],
) -> Page[VerifierOut]:
    """The whole collection (at most 20), never a next page (contract 3.4)."""
    await agents.get(account_id, issuer_id, agent_id)
    async with agents.rt.pool.connection() as conn:
        rows = await agents.queries.verifiers(conn, issuer_id, agent_id)
    return Page(data=[VerifierOut.of(r) for r in rows], has_more=False, next_cursor=None)


@post(VERIFIERS, operation_id="addAgentVerifier", summary="Add Agent Verifier", tags=TAGS,
      guards=WRITE)  # fmt: skip
async def add_verifier(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    agent_id: FromPath[str],
    data: JSONBody[VerifierCreate],
    principal: InjectedPrincipal,
    agents: NamedDependency[Agents],
) -> Response[One[CreatedVerifier]]:
    check_storable(data)
    spec = VerifierSpec(name=data.name, description=data.description)
    actor = principal.actor()
    secret: str | None = None
    if data.type == "secret":
        # The scope depends on the body's `type`, so no route guard can tell it.
        if not principal.may(SECRET_SCOPE):
            raise InsufficientScope(f"a secret verifier requires the {SECRET_SCOPE} scope",
                                    reason="auth.scope_missing")  # fmt: skip
        verifier_id, secret = await agents.add_secret_verifier(
            account_id, issuer_id, agent_id, spec, actor=actor
        )
    else:
        wallet, proof = _wallet(data.credential)
        verifier_id = await agents.add_wallet_verifier(
            account_id, issuer_id, agent_id, wallet, spec, proof, actor=actor
        )
    row = await _verifier(agents, issuer_id, agent_id, verifier_id)
    out = CreatedVerifier(secret=secret, **msgspec.structs.asdict(VerifierOut.of(row)))
    return one(out, etag=etag_of(row.created_at, row.updated_at), status=201)


@delete(VERIFIER, operation_id="removeAgentVerifier", summary="Remove Agent Verifier", tags=TAGS,
        guards=WRITE, status_code=204)  # fmt: skip
async def remove_verifier(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    agent_id: FromPath[str],
    verifier_id: FromPath[str],
    principal: InjectedPrincipal,
    agents: NamedDependency[Agents],
    if_match: IfMatch = None,
) -> Response[None]:
    await agents.remove_verifier(account_id, issuer_id, agent_id, verifier_id,
                                 actor=principal.actor(), if_match=if_match)  # fmt: skip
    return no_content()


@post(CHALLENGE, operation_id="createAgentVerifierChallenge", summary="Create Wallet Challenge",
      tags=TAGS, guards=WRITE, status_code=201)  # fmt: skip
async def create_challenge(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    agent_id: FromPath[str],
    data: JSONBody[ChallengeCreate],
    agents: NamedDependency[Agents],
) -> Response[One[ChallengeOut]]:
    """A one-time challenge (platform.md 4.3 rule 4) for an eip155 network, valid 10 minutes."""
    check_storable(data)
    network = wallets.network(data.network, "network")
    if not network.startswith("eip155:"):
        raise bad("network", "must be an eip155 network: proofs are EIP-191 signatures",
                  "unsupported")  # fmt: skip
    challenge = await agents.challenge(account_id, issuer_id, agent_id, network)
    return one(ChallengeOut(**msgspec.structs.asdict(challenge)), status=201)


ROUTES = [list_verifiers, add_verifier, remove_verifier, create_challenge]
