"""Directory read models. `inline_views` is the directory's registry of inline projections: the
event store applies each committed event to the views that declare its type."""

from __future__ import annotations

from authpi.crypto.pii import PiiVault
from authpi.directory.projections.account_domains import AccountDomainsView
from authpi.directory.projections.accounts import AccountsView
from authpi.directory.projections.api_keys import ApiKeysView
from authpi.directory.projections.clients import ClientsView
from authpi.directory.projections.invitations import InvitationsView
from authpi.directory.projections.issuers import IssuersView
from authpi.directory.projections.notes import NotesView
from authpi.directory.projections.organizations import OrganizationsView
from authpi.directory.projections.personal_tokens import PersonalTokensView
from authpi.directory.projections.users import UsersView
from authpi.eventstore.store import InlineProjection


def inline_views(schema: str, vault: PiiVault) -> list[InlineProjection]:
    """`vault`: the region's PII key store, whose invitation keys the invitations view seals
    older rows with and destroys."""
    return [
        AccountsView(schema),
        ApiKeysView(schema),
        AccountDomainsView(schema),
        UsersView(schema),
        IssuersView(schema),
        ClientsView(schema),
        OrganizationsView(schema),
        InvitationsView(schema, vault),
        PersonalTokensView(schema),
        NotesView(schema),
    ]
