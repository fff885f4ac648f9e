"""The directory service as a process part: accounts, account domains, issuers, clients, users,
organizations, API keys, notes (Core API resources), and the agents it learns from the agent
service."""

from __future__ import annotations

from pathlib import Path

from authpi.crypto.pii import PiiVault, region_store
from authpi.directory.adapters.dns_probe import DnsProbe
from authpi.directory.api.accounts import accounts_router
from authpi.directory.api.api_keys import api_keys_router
from authpi.directory.api.approvals import approvals_router
from authpi.directory.api.domains import domains_router
from authpi.directory.api.issuer_routes import issuers_router
from authpi.directory.api.me import get_me
from authpi.directory.api.notes import notes_router
from authpi.directory.api.org_api_key_items import org_api_key_items_router
from authpi.directory.api.org_invitations import invitations_router
from authpi.directory.api.organization_routes import organizations_router
from authpi.directory.api.tokens import tokens_router
from authpi.directory.api.users import users_router
from authpi.directory.handlers.account_domains import AccountDomains
from authpi.directory.handlers.accounts import Directory
from authpi.directory.handlers.approvals import Approvals
from authpi.directory.handlers.clients import Clients
from authpi.directory.handlers.invitations import Invitations
from authpi.directory.handlers.issuers import Issuers
from authpi.directory.handlers.notes import Notes
from authpi.directory.handlers.org_sso import OrganizationSso
from authpi.directory.handlers.organizations import Organizations
from authpi.directory.handlers.personal_tokens import PersonalTokens
from authpi.directory.handlers.sso_sign_in import SsoSignIns
from authpi.directory.handlers.users import Users
from authpi.directory.projections import inline_views
from authpi.directory.projections.invitations import LegacyRows
from authpi.directory.reactions.agents import AgentsReaction
from authpi.directory.reactions.billing import BillingReaction
from authpi.eventstore.store import EventStore
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    schema = rt.schema("directory")
    # One store for every handler, with the directory's inline views: each committed event
    # reaches the views that declare its type, whichever handler wrote it. The region's PII key
    # store holds the users' and invitations' data keys.
    vault = PiiVault(rt.kek, region_store(rt.namespace, rt.settings.region))
    views = inline_views(schema, vault)
    store = EventStore(rt.pool, schema, "directory", rt.ids, views)
    directory = Directory(rt, store)
    # A custom domain verifies when its DNS publishes the account's TXT challenge.
    domains = AccountDomains(directory, DnsProbe())
    users = Users(rt, store)
    personal_tokens = PersonalTokens(rt, store, users)
    issuers = Issuers(rt, store, account_reactions=directory.projections)
    clients = Clients(issuers)
    organizations = Organizations(rt, store)
    # An organization's SSO domain verifies when its DNS publishes the TXT challenge.
    organization_sso = OrganizationSso(organizations, DnsProbe())
    notes = Notes(rt, store)
    invitations = Invitations(organizations, users)
    return ServiceParts(
        name="directory",
        core_routes=[
            get_me,
            users_router(users),
            approvals_router(Approvals(users)),
            tokens_router(personal_tokens),
            accounts_router(directory),
            domains_router(domains),
            api_keys_router(directory),
            issuers_router(issuers, clients),
            organizations_router(organizations, organization_sso),
            invitations_router(invitations),
            org_api_key_items_router(directory, organizations),
            notes_router(notes),
        ],
        projections=[AgentsReaction(schema, organizations.agents), BillingReaction(schema)],
        inline_projections=list(views),
        tasks=[("directory:organization-cascade", organizations.cascade_task)],
        # Invitations written before their personal data was sealed (migration 0016).
        prepare=[LegacyRows(store, vault).seal],
        exports={
            "directory": directory,
            "account_domains": domains,
            "users": users,
            # Signup (authpi.contracts.directory.UserRegistry), wired into the token service.
            "user_registry": users,
            # Organization SSO sign-in (authpi.contracts.directory.SsoDirectory), likewise.
            "sso_directory": SsoSignIns(users, organizations),
            "personal_tokens": personal_tokens,
            "issuers": issuers,
            "clients": clients,
            "organizations": organizations,
            "organization_sso": organization_sso,
            "notes": notes,
            # The portal's invitation page (accept or decline through the emailed link).
            "invitations": invitations,
        },
    )


MODULE = ServiceModule(name="directory", migrations=MIGRATIONS, build=build)
