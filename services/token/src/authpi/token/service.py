"""The token service as a process part: the issuers and clients it learns from directory events,
their signing keys (creation, monthly rotation, JWKS), the discovery routes and the machine
endpoints (token, introspection, revocation); the people of each issuer (users, organizations,
memberships, organizations' SSO settings) learnt from directory events, their claims, signup
and invitation answers through the directory, and the federated sign-in through organizations'
upstream IdPs; the hosted portal, with users' second factors and trusted devices (and their
Core API routes).

Per process (every HTTP worker): the key cache, the client cache (loaded from clients_view, then
following client.* events with its own ordered consumer), the throttle mirror and the
fact publisher, the signup waiters' LISTEN connection. Per deployment: the projections
token-issuers, token-clients, token-agents, token-users, token-organizations and
token-invitations, the approval mail (token-approval-mail), key rotation and the sweep of
expired revocations."""

from __future__ import annotations

from pathlib import Path

from authpi.crypto.passwords import Passwords
from authpi.eventstore.store import EventStore
from authpi.messaging.entries import EntryCache
from authpi.messaging.follower import Feed
from authpi.token.adapters.facts import FactPublisher
from authpi.token.adapters.registry import Registry, UserArrivals
from authpi.token.adapters.upstream_oidc import UpstreamOidc
from authpi.token.api.authorize import authorize_routes
from authpi.token.api.cors import cors_routes
from authpi.token.api.discovery import discovery_routes
from authpi.token.api.machine import MachineEndpoints
from authpi.token.api.oidc import OidcEndpoints
from authpi.token.api.portal import PortalRoutes
from authpi.token.api.sessions import SessionAdmin, sessions_router
from authpi.token.api.sso import sso_routes
from authpi.token.api.trusted_devices import trusted_devices_router
from authpi.token.api.verifiers import verifiers_router
from authpi.token.caches.issuer_keys import KeyCache
from authpi.token.caches.lockouts import CREDENTIAL_POLICY, MAIL_POLICY, Lockouts
from authpi.token.endpoints.check_session import CheckSessionEndpoint
from authpi.token.endpoints.client_auth import ClientAuthenticator
from authpi.token.endpoints.consents import ConsentsEndpoint
from authpi.token.endpoints.cors import CorsOrigins
from authpi.token.endpoints.interactions import Interactions
from authpi.token.endpoints.introspection import IntrospectionEndpoint
from authpi.token.endpoints.logout import LogoutEndpoint
from authpi.token.endpoints.revocation import RevocationEndpoint
from authpi.token.endpoints.sso import PortalOrigin, SsoDiscoveryEndpoint
from authpi.token.endpoints.sso_login import SsoLogin, SsoStates
from authpi.token.endpoints.token import TokenEndpoint
from authpi.token.endpoints.userinfo import BearerCheck, UserInfoEndpoint
from authpi.token.grants.authorization_code import AuthorizationCodeGrant
from authpi.token.grants.client_credentials import ClientCredentialsGrant
from authpi.token.grants.codes import Codes, Flows
from authpi.token.grants.refresh_token import RefreshTokenGrant
from authpi.token.handlers.code_exchanges import CodeExchanges
from authpi.token.handlers.consents import Consents
from authpi.token.handlers.credentials import Credentials
from authpi.token.handlers.enrolments import Enrolments
from authpi.token.handlers.mfa_support import FactorAttempts, TotpKeys
from authpi.token.handlers.refresh_families import FamilyRevocations, RefreshFamilies
from authpi.token.handlers.revoked_tokens import Revocations
from authpi.token.handlers.sessions import Sessions
from authpi.token.handlers.signing_keys import KeyRing
from authpi.token.handlers.trusted_devices import TrustedDevices
from authpi.token.handlers.user_lookup import UserLookup
from authpi.token.handlers.verifiers import Verifiers
from authpi.token.portal.csrf import Csrf
from authpi.token.portal.flows import Portal
from authpi.token.portal.mail_tokens import MailTokens
from authpi.token.portal.outbox import Outbox
from authpi.token.portal.pages import Pages
from authpi.token.portal.second_factor import SecondFactor
from authpi.token.projections.credentials import CredentialsView
from authpi.token.projections.mfa import MfaVerifiersView, TrustedDevicesView
from authpi.token.projections.revoked_tokens import RevokedTokensSweeper, RevokedTokensView
from authpi.token.projections.sessions import (
    ConsentsView,
    EphemeralSweeper,
    RefreshFamiliesView,
    SessionsView,
)
from authpi.token.projections.signing_keys import SigningKeysView
from authpi.token.queries.invitations import InvitationQueries
from authpi.token.queries.keys import Sql
from authpi.token.queries.mfa import MfaQueries
from authpi.token.queries.people import People
from authpi.token.queries.portal import PortalQueries
from authpi.token.queries.revoked_tokens import RevokedTokens
from authpi.token.queries.sessions import Liveness, SessionQueries
from authpi.token.queries.sso import SsoQueries
from authpi.token.reactions.agents import AGENT_EVENTS, agents_projection
from authpi.token.reactions.approval_mail import ApprovalMailReaction
from authpi.token.reactions.clients import CLIENT_EVENTS, clients_projection
from authpi.token.reactions.invitations import InvitationsReaction
from authpi.token.reactions.issuers import IssuersReaction
from authpi.token.reactions.people import OrganizationsReaction, UsersReaction, users_channel
from authpi.token.signing.signer import TokenSigner
from authpi.token.signing.verifier import TokenVerifier
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    schema = rt.schema("token")
    idp_base = rt.settings.idp_url
    # The inline projections: the store applies each committed event to those naming its type.
    views = [
        SigningKeysView(schema),
        RevokedTokensView(schema),
        SessionsView(schema),
        RefreshFamiliesView(schema),
        ConsentsView(schema),
        CredentialsView(schema),
        MfaVerifiersView(schema),
        TrustedDevicesView(schema),
    ]
    store = EventStore(rt.pool, schema, "token", rt.ids, projections=views)
    queries = Sql(schema)
    keys = KeyRing(rt, store, queries)
    cache = KeyCache(rt.pool, rt.dsn, rt.kek, queries)
    feed = Feed(rt.pool, rt.js, rt.namespace, schema)
    clients_view = clients_projection(schema)
    clients = EntryCache(feed, clients_view, CLIENT_EVENTS)
    agents_view = agents_projection(schema)
    agents = EntryCache(feed, agents_view, AGENT_EVENTS)
    for progress in (cache, clients.follower, agents.follower):
        rt.sync.track(progress)  # a Core API write waits for them (read-your-writes)
    lockouts = Lockouts(rt.js, rt.namespace, rt.clock)
    facts = FactPublisher(rt.js, rt.namespace)
    auth = ClientAuthenticator(clients, agents, lockouts, rt.clock)
    verifier = TokenVerifier(idp_base, rt.clock)
    sweeper = RevokedTokensSweeper(rt.pool, schema, rt.clock)
    people = People(schema, rt.kek, rt.namespace)
    arrivals = UserArrivals(rt.dsn, users_channel(schema))
    invitation_queries = InvitationQueries(schema, people.vault)
    # Signup and invitation answers: the host connects it to the directory's UserRegistry and
    # InvitationAnswers (platform modules.wire).
    registry = Registry(rt.pool, people, arrivals, invitation_queries)
    # Human login: sessions, refresh families and consents (inline views of their events), the
    # ephemeral login flows and codes, the grants, and the OIDC endpoints.
    session_queries = SessionQueries(rt.pool, schema)
    sessions = Sessions(store, session_queries, rt.ids, rt.clock)
    families = RefreshFamilies(store, session_queries, people)
    consents = Consents(store, session_queries, rt.clock)
    revocations = Revocations(store)
    codes = Codes(rt.pool, schema)
    credentials = Credentials(store)
    # Second factors and trusted devices (inline views of their events), their lockout, and the
    # portal's challenge; their Core API routes are the users' sub-resources.
    credential_lockouts = Lockouts(rt.js, rt.namespace, rt.clock, CREDENTIAL_POLICY)
    mfa_queries = MfaQueries(schema)
    lookup = UserLookup(rt.pool, PortalQueries(schema), people)
    totp_keys = TotpKeys(rt.kek, rt.ids)
    factor_attempts = FactorAttempts(credential_lockouts, credentials, rt.clock)
    verifiers = Verifiers(
        store=store, pool=rt.pool, queries=mfa_queries, keys=totp_keys, attempts=factor_attempts,
        clock=rt.clock,
    )  # fmt: skip
    enrolments = Enrolments(
        store=store, pool=rt.pool, queries=mfa_queries, people=people, keys=totp_keys,
        attempts=factor_attempts, clock=rt.clock, ids=rt.ids,
    )  # fmt: skip
    devices = TrustedDevices(
        store=store, pool=rt.pool, queries=mfa_queries, clock=rt.clock, ids=rt.ids
    )
    second_factor = SecondFactor(
        pool=rt.pool, queries=mfa_queries, lookup=lookup, verifiers=verifiers,
        enrolments=enrolments, devices=devices, clock=rt.clock, ids=rt.ids,
    )  # fmt: skip
    interactions = Interactions(
        idp_base=idp_base,
        clock=rt.clock,
        issuers=cache,
        clients=clients,
        flows=Flows(rt.pool, schema),
        codes=codes,
        sessions=sessions,
        queries=session_queries,
        consents=consents,
        people=people,
        second_factor=second_factor,
    )
    revoked = RevokedTokens(rt.pool, schema)
    bearer = BearerCheck(verifier, revoked, session_queries, people, rt.clock)
    token = TokenEndpoint(
        auth,
        ClientCredentialsGrant(idp_base, rt.clock, facts),
        AuthorizationCodeGrant(
            idp_base=idp_base,
            clock=rt.clock,
            ids=rt.ids,
            codes=codes,
            sessions=sessions,
            exchanges=CodeExchanges(store, codes, sessions, session_queries, people),
            revocations=revocations,
            facts=facts,
            attempts=credentials,
        ),
        RefreshTokenGrant(
            idp_base=idp_base,
            clock=rt.clock,
            verifier=verifier,
            families=families,
            sessions=sessions,
            facts=facts,
            pool=rt.pool,
        ),
    )
    # CORS of /token, /revoke and /userinfo: the origins of the public clients' redirect URIs.
    cors = CorsOrigins(clients)
    machine = MachineEndpoints(
        idp_base=idp_base,
        cors=cors,
        keys=cache,
        token=token,
        introspection=IntrospectionEndpoint(
            auth, verifier, revoked, Liveness(session_queries, rt.clock, people)
        ),
        revocation=RevocationEndpoint(
            auth, verifier, revocations, rt.clock, FamilyRevocations(store, session_queries)
        ),
    )
    oidc = OidcEndpoints(
        idp_base=idp_base,
        cors=cors,
        keys=cache,
        clients=clients,
        userinfo=UserInfoEndpoint(bearer, people, clients),
        logout=LogoutEndpoint(
            idp_base=idp_base,
            verifier=verifier,
            clients=clients,
            sessions=sessions,
            queries=session_queries,
        ),
        check_session=CheckSessionEndpoint(interactions, clients),
        consents=ConsentsEndpoint(bearer, consents),
    )
    ephemeral = EphemeralSweeper(rt.pool, schema, rt.clock)
    # The hosted login portal: credentials (an inline view of their events), their lockout,
    # one-time mail tokens, and the pages.
    mail_throttle = Lockouts(rt.js, rt.namespace, rt.clock, MAIL_POLICY)
    mail_tokens = MailTokens(rt.pool, schema, rt.clock, rt.ids)
    outbox = Outbox()
    # Organization SSO: the federated sign-in through each organization's upstream IdP.
    sso_queries = SsoQueries(rt.pool, schema)
    sso_login = SsoLogin(
        idp_base=idp_base, clock=rt.clock, ids=rt.ids, kek=rt.kek, queries=sso_queries,
        states=SsoStates(rt.pool, schema),
        upstream=UpstreamOidc(rt.clock, allow_insecure=rt.settings.sso_allow_insecure),
    )  # fmt: skip
    portal = Portal(
        idp_base=idp_base, pool=rt.pool, queries=PortalQueries(schema),
        credentials=credentials, mail_tokens=mail_tokens,
        passwords=Passwords(
            memory_kib=rt.settings.argon2_memory_kib, time_cost=rt.settings.argon2_time_cost,
            parallelism=rt.settings.argon2_parallelism,
        ),
        hash_key=rt.kek.derive("credential-password"), lockouts=credential_lockouts,
        mail_throttle=mail_throttle,
        clock=rt.clock, ids=rt.ids, interactions=interactions, sessions=sessions,
        session_queries=session_queries, people=people, registry=registry,
        invitations=invitation_queries, mailer=rt.mailer, outbox=outbox,
        second_factor=second_factor, sso=sso_login,
    )  # fmt: skip
    # SSO discovery answers the portal only: its pages carry a portal-origin token.
    origin = PortalOrigin(rt.kek.derive("portal-origin"), rt.clock)
    sso = SsoDiscoveryEndpoint(idp_base, origin, sso_queries)
    portal_http = PortalRoutes(
        portal=portal,
        pages=Pages(),
        csrf=Csrf(rt.kek.derive("portal-csrf")),
        idp_base=idp_base,
        origin=origin,
    )
    return ServiceParts(
        name="token",
        core_routes=[
            sessions_router(SessionAdmin(sessions, session_queries, clients)),
            verifiers_router(lookup, enrolments, verifiers),
            trusted_devices_router(lookup, devices),
        ],
        idp_routes=[
            *cors_routes(cors),  # before the routes of the same paths: their OPTIONS
            *discovery_routes(cache, idp_base), *machine.routes(),
            *authorize_routes(interactions, idp_base, portal_http), *oidc.routes(portal_http),
            *portal_http.routes(), *sso_routes(cache, sso, idp_base),
        ],
        idp_direct=machine.direct_routes(),
        # Tracked by the host for read-your-writes: a Core API write to a user, organization or
        # membership answers once token-users / token-organizations have applied it.
        projections=[
            IssuersReaction(schema, keys), clients_view, agents_view, UsersReaction(schema),
            OrganizationsReaction(schema), InvitationsReaction(schema, people.username_hash),
            # Held signups get their verify-email mail once approved, through the outbox.
            ApprovalMailReaction(schema, rt.clock, portal.verify_approved, outbox.submit),
        ],
        inline_projections=list(views),
        tasks=[
            ("token:key-rotation", keys.rotation_task),
            ("token:revocation-sweeper", sweeper.run_sweeper),
            ("token:login-sweeper", ephemeral.run_sweeper),
            ("token:session-expiry", sessions.run_expiry),
            ("token:mail-token-sweeper", mail_tokens.run_sweeper),
        ],
        # Every replica makes keys for the issuers created through it.
        local_tasks=[("token:key-maker", keys.maker.run)],
        worker_tasks=[
            ("token:key-cache", cache.follow),
            ("token:clients", clients.run),
            ("token:agents", agents.run),
            ("token:lockouts", lockouts.follow),
            ("token:credential-lockouts", credential_lockouts.follow),
            ("token:mail-throttle", mail_throttle.follow),
            ("token:portal-outbox", outbox.run),
            ("token:facts", facts.run),
            ("token:user-arrivals", arrivals.follow),
        ],
        warm=[
            cache.warm, clients.warm, agents.warm, lockouts.warm, credential_lockouts.warm,
            mail_throttle.warm,
        ],
        prepare=[
            keys.ensure_platform_issuer, lockouts.open, credential_lockouts.open,
            mail_throttle.open,
        ],
        exports={
            "keys": keys, "key_cache": cache, "signer": TokenSigner(cache, rt.clock),
            "clients": clients, "agents": agents, "facts": facts, "revocations": sweeper,
            "people": people, "registry": registry, "interactions": interactions,
            "portal_origin": origin,
        },
    )  # fmt: skip


MODULE = ServiceModule(name="token", migrations=MIGRATIONS, build=build)
