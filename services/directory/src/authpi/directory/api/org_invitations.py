"""Organization invitations over HTTP (core-api.md 3.15, contract 4.28): list, create (202, the
email goes out once committed), get, update, resend and revoke. There is no DELETE: `revoke`
ends an invitation. Scopes `issuers.organizations.invitations:read|write`."""

from __future__ import annotations

from litestar import Response, Router, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authpi.directory.api.organization_common import ORG, check_body, check_id, choice, live_ref
from authpi.directory.api.organization_models import (
    CreateInvitationBody,
    Invitation,
    UpdateInvitationBody,
)
from authpi.directory.domain.commands.organization import UpdateInvitation
from authpi.directory.handlers.invitations import Invitations, NewInvitation
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, one
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal

COLLECTION = "invitations"
INVITATIONS = ORG + "/invitations"
INVITATION = INVITATIONS + "/{invitation_id:str}"
READ = [require_scope("issuers.organizations.invitations:read")]
WRITE = [require_scope("issuers.organizations.invitations:write")]
TAGS = ["Organization invitations"]
STATUSES = ("pending", "accepted", "declined", "revoked", "expired")


async def _respond(
    invitations: Invitations, account_id: str, issuer_id: str, org_id: str, invitation_id: str,
    status: int = 200,
) -> Response[One[Invitation]]:  # fmt: skip
    ref = await live_ref(invitations.orgs, account_id, issuer_id, org_id)
    found, etag = await invitations.get(ref, check_id(invitation_id, "invitation"))
    return one(found, etag=etag, status=status)


@get(INVITATIONS, operation_id="listOrganizationInvitations", summary="List Invitations",
     tags=TAGS, guards=READ)  # fmt: skip
async def list_invitations(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    page: InjectedPage, invitations: NamedDependency[Invitations],
    status: FromQuery[str | None] = None,
) -> Page[Invitation]:  # fmt: skip
    wanted = choice("status", status, STATUSES)
    ref = await live_ref(invitations.orgs, account_id, issuer_id, org_id)
    rows = await invitations.list(ref, wanted, page.after(COLLECTION), page.fetch_limit)
    return paginate(rows, page, COLLECTION, lambda i: (i.created_at, i.id))


@post(INVITATIONS, operation_id="createOrganizationInvitation", summary="Create Invitation",
      tags=TAGS, guards=WRITE, status_code=202)  # fmt: skip
async def create_invitation(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    principal: InjectedPrincipal, invitations: NamedDependency[Invitations],
    data: JSONBody[CreateInvitationBody],
) -> Response[One[Invitation]]:  # fmt: skip
    check_body(data)
    ref = await live_ref(invitations.orgs, account_id, issuer_id, org_id)
    inviter = None
    if data.inviter is not None:
        inviter = {"id": data.inviter.id, "name": data.inviter.name}
    new = NewInvitation(
        email=data.email_invited, scopes=list(data.scopes), user_title=data.user_title,
        message=data.message, inviter=inviter, expires_in_seconds=data.expires_in_seconds,
        expires_at=data.expires_at, metadata=data.metadata,
    )  # fmt: skip
    invitation_id = await invitations.create(ref, new, principal.actor())
    return await _respond(invitations, account_id, issuer_id, org_id, invitation_id, status=202)


@get(INVITATION, operation_id="getOrganizationInvitation", summary="Get Invitation", tags=TAGS,
     guards=READ)  # fmt: skip
async def get_invitation(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    invitation_id: FromPath[str], invitations: NamedDependency[Invitations],
) -> Response[One[Invitation]]:  # fmt: skip
    return await _respond(invitations, account_id, issuer_id, org_id, invitation_id)


@patch(INVITATION, operation_id="updateOrganizationInvitation", summary="Update Invitation",
       tags=TAGS, guards=WRITE)  # fmt: skip
async def update_invitation(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    invitation_id: FromPath[str], principal: InjectedPrincipal,
    invitations: NamedDependency[Invitations], data: JSONBody[UpdateInvitationBody],
    if_match: IfMatch = None,
) -> Response[One[Invitation]]:  # fmt: skip
    check_body(data)
    ref = await live_ref(invitations.orgs, account_id, issuer_id, org_id)
    cmd = UpdateInvitation(
        ref=ref, invitation_id=check_id(invitation_id, "invitation"), now=0,
        user_title=data.user_title, message=data.message,
        scopes=data.scopes,
        metadata=data.metadata, if_match=if_match,
    )  # fmt: skip
    await invitations.update(cmd, principal.actor())
    return await _respond(invitations, account_id, issuer_id, org_id, invitation_id)


@post(INVITATION + "/resend", operation_id="resendOrganizationInvitation",
      summary="Resend Invitation", tags=TAGS, guards=WRITE, status_code=200)  # fmt: skip
async def resend_invitation(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    invitation_id: FromPath[str], principal: InjectedPrincipal,
    invitations: NamedDependency[Invitations], if_match: IfMatch = None,
) -> Response[One[Invitation]]:  # fmt: skip
    ref = await live_ref(invitations.orgs, account_id, issuer_id, org_id)
    inv_id = check_id(invitation_id, "invitation")
    await invitations.resend(ref, inv_id, principal.actor(), if_match=if_match)
    return await _respond(invitations, account_id, issuer_id, org_id, inv_id)


@post(INVITATION + "/revoke", operation_id="revokeOrganizationInvitation",
      summary="Revoke Invitation", tags=TAGS, guards=WRITE, status_code=200)  # fmt: skip
async def revoke_invitation(
    account_id: FromPath[str], issuer_id: FromPath[str], org_id: FromPath[str],
    invitation_id: FromPath[str], principal: InjectedPrincipal,
    invitations: NamedDependency[Invitations], if_match: IfMatch = None,
) -> Response[One[Invitation]]:  # fmt: skip
    ref = await live_ref(invitations.orgs, account_id, issuer_id, org_id)
    inv_id = check_id(invitation_id, "invitation")
    await invitations.revoke(ref, inv_id, principal.actor(), if_match=if_match)
    return await _respond(invitations, account_id, issuer_id, org_id, inv_id)


ROUTES = [
    list_invitations,
    create_invitation,
    get_invitation,
    update_invitation,
    resend_invitation,
    revoke_invitation,
]


def invitations_router(invitations: Invitations) -> Router:
    return Router("/", route_handlers=ROUTES, dependencies={"invitations": provide(invitations)})
