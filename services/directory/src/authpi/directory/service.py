"""The directory service as a process part: accounts, account domains, issuers, clients, users,
organizations, API keys (Core API resources), and the agents it learns from the agent service."""

from __future__ import annotations

from pathlib import Path

from authpi.directory.api.accounts import accounts_router
from authpi.directory.api.api_keys import api_keys_router
from authpi.directory.api.domains import domains_router
from authpi.directory.api.issuer_routes import issuers_router
from authpi.directory.api.me import get_me
from authpi.directory.api.org_api_key_items import org_api_key_items_router
from authpi.directory.api.organization_routes import organizations_router
from authpi.directory.api.tokens import tokens_router
from authpi.directory.api.users import users_router
from authpi.directory.dns import DnsProbe
from authpi.directory.handlers import Directory
from authpi.directory.handlers.clients import Clients
from authpi.directory.handlers.domains import AccountDomains
from authpi.directory.handlers.issuers import Issuers
from authpi.directory.handlers.organizations import Organizations
from authpi.directory.handlers.tokens import PersonalTokens
from authpi.directory.handlers.users import Users
from authpi.directory.reactions.agents import AgentsReaction
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    directory = Directory(rt)
    # A custom domain verifies when its DNS publishes the account's TXT challenge.
    domains = AccountDomains(directory, DnsProbe())
    users = Users(rt)
    personal_tokens = PersonalTokens(rt, users)
    issuers = Issuers(rt, account_reactions=directory.projections)
    clients = Clients(issuers)
    organizations = Organizations(rt)
    return ServiceParts(
        name="directory",
        core_routes=[
            get_me,
            users_router(users),
            tokens_router(personal_tokens),
            accounts_router(directory),
            domains_router(domains),
            api_keys_router(directory),
            issuers_router(issuers, clients),
            organizations_router(organizations),
            org_api_key_items_router(directory, organizations),
        ],
        projections=[AgentsReaction(rt.schema("directory"), organizations.agents)],
        inline_projections=[
            directory.accounts_view,
            directory.account_domains_view,
            directory.api_keys_view,
            directory.users_view,
            personal_tokens.view,
            issuers.issuers_view,
            issuers.clients_view,
            organizations.view,
        ],
        tasks=[("directory:organization-cascade", organizations.cascade_task)],
        exports={
            "directory": directory,
            "account_domains": domains,
            "users": users,
            "personal_tokens": personal_tokens,
            "issuers": issuers,
            "clients": clients,
            "organizations": organizations,
        },
    )


MODULE = ServiceModule(name="directory", migrations=MIGRATIONS, build=build)
