"""An organization invitation's personal data (DESIGN.md 7): the invited address, the inviter and
the message are sealed under the invitation's own data key, kept in the region's PII key store
like a user's. One key per invitation, not per address: each invitation ends on its own
(revoked, declined, its organization deleted), and ending one must not make another invitation
of the same address unreadable, in this organization or another.

Invitations written before sealing carried those fields in clear. Their events still decode
(the fields kept defaults) and are read through two upcasts: `Upcasting` folds a created event
with the hash its address has, so the decider compares hashes only, and the view seals such an
event's data on the way in (projections.invitations), which is also how the rows migration
0016 left without a sealed snapshot are sealed at start (`LegacyRows`)."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import OrganizationInvitationCreated
from authpi.crypto.pii import PiiVault
from authpi.directory.domain import organization
from authpi.directory.domain.organization_state import Organization


class Upcasting:
    """The Organization decider, folding a created event written before sealing (its address in
    clear, no hash) as if it carried the hash: the username hash of its address in the issuer."""

    def __init__(self, vault: PiiVault) -> None:
        self.vault = vault
        self.INITIAL: Organization = organization.INITIAL

    def decide(self, cmd: Any, state: Organization) -> list[Event]:
        return organization.decide(cmd, state)

    def evolve(self, state: Organization, event: Event) -> Organization:
        return organization.evolve(state, self.upcast(event))

    def upcast(self, event: Event) -> Event:
        match event:
            case OrganizationInvitationCreated(email_hash=None, email_invited=str() as email):
                digest = self.vault.username_hash(event.issuer_id, email)
                return msgspec.structs.replace(event, email_hash=digest)
            case _:
                return event
