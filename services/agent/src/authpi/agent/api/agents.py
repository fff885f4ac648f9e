"""Agents of an issuer (platform.md 3.2, contract 4.13, `Agent` in 5.6): list (filters `status`,
`model`, `provider`, `has_verifiers`), create, get, update (incl. `status`, `status_reason`,
`status_by`, `scopes`) and delete. Scopes `issuers.agents:read|write|delete`.

Wallet resolution (platform.md 4.4, OP-8) is the list with `wallet=<CAIP-10>`: 0 or 1 agents,
each with the matching wallet verifier; `expand=memberships` adds organization memberships."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.agent.api.models import (
    AgentCreate,
    AgentListItem,
    AgentOut,
    AgentPatch,
    MembershipOut,
    VerifierOut,
    check_agent_body,
)
from authpi.agent.domain import wallets
from authpi.agent.domain.agent import STATUSES
from authpi.agent.domain.wallets import Wallet
from authpi.agent.handlers.agents import Agents
from authpi.agent.queries.agents import AgentFilters, AgentRow
from authpi.errors import FieldProblem, InvalidRequest
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.web.text import check_storable

ISSUER = "/v1/accounts/{account_id:str}/issuers/{issuer_id:str}"
AGENTS = ISSUER + "/agents"
AGENT = AGENTS + "/{agent_id:str}"
COLLECTION = "agents"
TAGS = ["Agents"]
READ = [require_scope("issuers.agents:read")]
WRITE = [require_scope("issuers.agents:write")]
DELETE = [require_scope("issuers.agents:delete")]
EXPANSIONS = ("memberships",)


def _etag(row: AgentRow) -> str:
    return etag_of(row.created_at, row.updated_at)


def _bad_query(name: str, message: str) -> InvalidRequest:
    problem = FieldProblem(field=name, code="invalid_value", message=f"{name} {message}")
    return InvalidRequest(problem.message, reason=f"agent.filter.{name}", fields=[problem])


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        raise _bad_query(name, f"must be one of {', '.join(allowed)}")
    return value


def _expansions(expand: str | None) -> set[str]:
    asked = {part.strip() for part in (expand or "").split(",") if part.strip()}
    if asked - set(EXPANSIONS):
        raise _bad_query("expand", f"may name only {', '.join(EXPANSIONS)}")
    return asked


def _filters(
    status: str | None, model: str | None, provider: str | None, has_verifiers: str | None,
    wallet: str | None,
) -> tuple[AgentFilters, Wallet | None]:  # fmt: skip
    check_storable({"model": model, "provider": provider, "wallet": wallet})
    resolved = wallets.account(wallet, "wallet") if wallet is not None else None
    has = _choice("has_verifiers", has_verifiers, ("true", "false"))
    filters = AgentFilters(
        status=_choice("status", status, STATUSES), model=model, provider=provider,
        has_verifiers=None if has is None else has == "true",
        network=resolved and resolved.network, lookup_address=resolved and resolved.lookup,
    )  # fmt: skip
    return filters, resolved


async def _items(
    agents: Agents, issuer_id: str, rows: list[AgentRow], wallet: Wallet | None,
    expand: set[str],
) -> list[AgentListItem]:  # fmt: skip
    extra: dict[str, dict[str, Any]] = {row.id: {} for row in rows}
    if wallet is not None and rows:
        async with agents.rt.pool.connection() as conn:
            found = await agents.queries.wallet_verifier(
                conn, issuer_id, wallet.network, wallet.lookup
            )
        if found is not None and found.agent_id in extra:
            await agents.count_wallet_use(found.id)
            async with agents.rt.pool.connection() as conn:
                counted = await agents.queries.verifiers(conn, issuer_id, found.agent_id, found.id)
            extra[found.agent_id]["wallet_verifier"] = VerifierOut.of((counted or [found])[0])
    if "memberships" in expand and rows:
        async with agents.rt.pool.connection() as conn:
            memberships = await agents.queries.memberships(conn, list(extra))
        for row in rows:
            extra[row.id]["memberships"] = []
        for m in memberships:
            extra[m.member_id]["memberships"].append(MembershipOut.of(m))
    return [
        AgentListItem(**msgspec.structs.asdict(AgentOut.of(row)), **extra[row.id]) for row in rows
    ]


@get(AGENTS, operation_id="listAgents", summary="List Agents", tags=TAGS, guards=READ)
async def list_agents(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    page: InjectedPage,
    agents: NamedDependency[Agents],
    status: FromQuery[str | None] = None,
    model: FromQuery[str | None] = None,
    provider: FromQuery[str | None] = None,
    has_verifiers: FromQuery[str | None] = None,
    wallet: FromQuery[str | None] = None,
    expand: FromQuery[str | None] = None,
) -> Page[AgentListItem]:
    filters, resolved = _filters(status, model, provider, has_verifiers, wallet)
    expansions = _expansions(expand)
    after = page.after(COLLECTION)
    await agents.issuers.require(account_id, issuer_id)
    async with agents.rt.pool.connection() as conn:
        rows = await agents.queries.agents(
            conn, account_id, issuer_id, filters, after, page.fetch_limit
        )
    listed = paginate(rows, page, COLLECTION, lambda r: (r.created_at, r.id))
    items = await _items(agents, issuer_id, listed.data, resolved, expansions)
    return Page(data=items, has_more=listed.has_more, next_cursor=listed.next_cursor)


@post(AGENTS, operation_id="createAgent", summary="Create Agent", tags=TAGS, guards=WRITE)
async def create_agent(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    data: JSONBody[AgentCreate],
    principal: InjectedPrincipal,
    agents: NamedDependency[Agents],
) -> Response[One[AgentOut]]:
    scopes = check_agent_body(data)
    fields = {**msgspec.structs.asdict(data), "scopes": scopes or [],
              "metadata": data.metadata or {}}  # fmt: skip
    agent_id = await agents.create(account_id, issuer_id, fields, actor=principal.actor())
    row = await agents.get(account_id, issuer_id, agent_id)
    return one(AgentOut.of(row), etag=_etag(row), status=201)


@get(AGENT, operation_id="getAgent", summary="Get Agent", tags=TAGS, guards=READ)
async def get_agent(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    agent_id: FromPath[str],
    agents: NamedDependency[Agents],
) -> Response[One[AgentOut]]:
    row = await agents.get(account_id, issuer_id, agent_id)
    return one(AgentOut.of(row), etag=_etag(row))


@patch(AGENT, operation_id="updateAgent", summary="Update Agent", tags=TAGS, guards=WRITE)
async def update_agent(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    agent_id: FromPath[str],
    data: JSONBody[AgentPatch],
    principal: InjectedPrincipal,
    agents: NamedDependency[Agents],
    if_match: IfMatch = None,
) -> Response[One[AgentOut]]:
    scopes = check_agent_body(data)
    fields = {f: getattr(data, f) for f in data.__struct_fields__}
    patch_ = {k: v for k, v in fields.items() if v is not msgspec.UNSET}
    if "scopes" in patch_:
        patch_["scopes"] = scopes or []  # `"scopes": null` clears them
    await agents.update(
        account_id, issuer_id, agent_id, patch_, actor=principal.actor(), if_match=if_match
    )
    row = await agents.get(account_id, issuer_id, agent_id)
    return one(AgentOut.of(row), etag=_etag(row))


@delete(AGENT, operation_id="deleteAgent", summary="Delete Agent", tags=TAGS, guards=DELETE,
        status_code=204)  # fmt: skip
async def delete_agent(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    agent_id: FromPath[str],
    principal: InjectedPrincipal,
    agents: NamedDependency[Agents],
    if_match: IfMatch = None,
) -> Response[None]:
    await agents.delete(account_id, issuer_id, agent_id, actor=principal.actor(),
                        if_match=if_match)  # fmt: skip
    return no_content()


ROUTES = [list_agents, create_agent, get_agent, update_agent, delete_agent]
