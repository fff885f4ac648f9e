"""Organization invitations (core-api.md 3.15): the write path of the Core API routes and the
invitee's answer through the emailed link.

The link carries a high-entropy token; only its SHA-256 digest is recorded (in the invitation's
events and view), so a leaked database or event log opens no invitation. A resend mints a new
token, which ends the previous link. The email is sent once the invitation is committed; a failed
delivery leaves it in place (the administrator can resend) and is logged.

The invited address, the inviter and the message are sealed here, under a new data key of the
invitation's own stored in the same transaction, before anything reaches the decider or the
store (DESIGN.md 7, `handlers.invitation_pii`); addresses are compared by their username hash.
Revoking or declining destroys the key in the same transaction (the view does, on the event),
so the address becomes unreadable in every event, replay and copy at once."""

from __future__ import annotations

from typing import Any

import msgspec

from authpi.contracts.base import Actor, Meta
from authpi.crypto.ids import sha256_hex
from authpi.crypto.pii import InvitationPii
from authpi.directory.api.organization_models import Invitation
from authpi.directory.domain.commands.organization import (
    AnswerInvitation,
    CreateInvitation,
    OrgRef,
    ResendInvitation,
    RevokeInvitation,
    UpdateInvitation,
)
from authpi.directory.handlers.invitation_pii import Upcasting
from authpi.directory.handlers.organizations import Organizations
from authpi.directory.handlers.users import Users, taken_username
from authpi.directory.queries.invitations import InvitationLink, InvitationQueries
from authpi.errors import AccessDenied, FieldProblem, NotFound, Unprocessable
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import Step, Tx
from authpi.observability import get_logger
from authpi.web.mail import MailMessage

log = get_logger("authpi.directory.invitations")

DEFAULT_TTL_S = 7 * 24 * 3600  # core-api.md 3.15: 7 days when absent
MAX_TTL_S = 30 * 24 * 3600
TOKEN_BYTES = 32
LINK_PATH = "invitation"  # the portal's page: {idp_url}/{issuer_id}/invitation?token=...


class NewInvitation(msgspec.Struct, frozen=True, kw_only=True):
    email: str
    scopes: list[str]
    user_title: str | None = None
    message: str | None = None
    inviter: dict[str, Any] | None = None
    expires_in_seconds: int | None = None
    expires_at: int | None = None
    metadata: dict[str, Any] = {}


class Invitations:
    def __init__(self, orgs: Organizations, users: Users) -> None:
        self.orgs = orgs
        self.users = users
        self.rt = orgs.rt
        self.store = orgs.store
        # The keys live in the region's PII key store, beside the users' (same vault).
        self.vault = users.vault
        self.decider = Upcasting(self.vault)
        self.queries = InvitationQueries(orgs.store.schema, self.vault)
        self._user_by_hash = render(
            "SELECT id FROM {schema}.users_view WHERE issuer_id = %s AND username_hash = %s"
            " AND status <> 'deleted'",
            schema=orgs.store.schema,
        )

    def _meta(self, ref: OrgRef, actor: Actor, invitation_id: str, trigger: str = "api") -> Meta:
        return Meta(
            account_id=ref.account_id, issuer_id=ref.issuer_id, actor=actor, trigger=trigger,
            region=self.rt.settings.region,
            subject={"org_id": ref.org_id, "invitation_id": invitation_id},
        )  # fmt: skip

    def _mint(self) -> tuple[str, str]:
        token = self.rt.ids.secret(TOKEN_BYTES)
        return token, sha256_hex(token)

    async def get(self, ref: OrgRef, invitation_id: str) -> tuple[Invitation, str]:
        """The invitation and its ETag; 404 when the organization does not have it."""
        async with self.rt.pool.connection() as conn:
            found = await self.queries.invitation(
                conn, ref.org_id, invitation_id, self.rt.clock.now_ms()
            )
        if found is None:
            raise NotFound("no such invitation in this organization", reason="invitation.not_found")
        return found

    async def list(
        self, ref: OrgRef, status: str | None, after: Any, limit: int
    ) -> list[Invitation]:
        async with self.rt.pool.connection() as conn:
            return await self.queries.invitations(
                conn, ref.org_id, status, after, limit, self.rt.clock.now_ms()
            )

    async def _user_with(self, issuer_id: str, digest: str) -> str | None:
        async with self.rt.pool.connection() as conn:
            row = await (await conn.execute(self._user_by_hash, [issuer_id, digest])).fetchone()
        return None if row is None else str(row[0])

    async def create(self, ref: OrgRef, new: NewInvitation, actor: Actor) -> str:
        await self.orgs.require_issuer(ref.account_id, ref.issuer_id)
        invitation_id, now = self.rt.ids.new("inv"), self.rt.clock.now_ms()
        email = new.email.strip().lower()
        if new.expires_in_seconds is not None or new.expires_at is None:
            expires_at = now + 1000 * (new.expires_in_seconds or DEFAULT_TTL_S)
        else:
            expires_at = new.expires_at
            if not now < expires_at <= now + 1000 * MAX_TTL_S:
                problem = FieldProblem(
                    field="expires_at", code="invalid_value",
                    message="expires_at must be in the next 30 days",
                )  # fmt: skip
                raise Unprocessable(
                    problem.message, reason="invitation.expires_at", fields=[problem]
                )
        token, digest = self._mint()
        dek = self.vault.new_key()
        pii = InvitationPii(email_invited=email, inviter=new.inviter, message=new.message)
        email_hash = self.vault.username_hash(ref.issuer_id, email)
        cmd = CreateInvitation(
            ref=ref, invitation_id=invitation_id, email_hash=email_hash,
            pii=self.vault.seal(dek, invitation_id, pii), scopes=new.scopes, token_sha256=digest,
            expires_at=expires_at, now=now,
            user_id_invited=await self._user_with(ref.issuer_id, email_hash),
            user_title=new.user_title, metadata=new.metadata,
        )  # fmt: skip

        async def keep_key(tx: Tx) -> None:
            await self.vault.store(tx.conn, invitation_id, dek)

        meta = self._meta(ref, actor, invitation_id)
        await self.store.execute(ref.org_id, self.decider, cmd, meta, [keep_key])
        await self._send(ref, invitation_id, token)
        return invitation_id

    async def update(self, cmd: UpdateInvitation, actor: Actor) -> None:
        """A changed message is sealed here into a new snapshot under the invitation's key;
        the decider sees only that it changed. Without the key (the invitation was revoked or
        declined), the decider refuses the update as it refuses any of an ended invitation."""
        sealed = None
        if not isinstance(cmd.message, msgspec.UnsetType):
            sealed = await self._resealed(cmd.ref, cmd.invitation_id, cmd.message)
        cmd = msgspec.structs.replace(
            cmd, now=self.rt.clock.now_ms(), message=msgspec.UNSET, pii=sealed
        )
        meta = self._meta(cmd.ref, actor, cmd.invitation_id)
        await self.store.execute(cmd.ref.org_id, self.decider, cmd, meta)

    async def _resealed(self, ref: OrgRef, invitation_id: str, message: str | None) -> str | None:
        """The invitation's snapshot with `message`, sealed; None when the message is the same
        or the key is gone."""
        current, _ = await self.get(ref, invitation_id)
        if current.message == message:
            return None
        async with self.rt.pool.connection() as conn:
            dek = await self.vault.key_for(conn, invitation_id)
        if dek is None or not current.email_invited:
            return None
        pii = InvitationPii(
            email_invited=current.email_invited, inviter=current.inviter, message=message
        )
        return self.vault.seal(dek, invitation_id, pii)

    async def resend(
        self, ref: OrgRef, invitation_id: str, actor: Actor, if_match: str | None = None
    ) -> None:
        token, digest = self._mint()
        cmd = ResendInvitation(
            ref=ref, invitation_id=invitation_id, token_sha256=digest,
            now=self.rt.clock.now_ms(), if_match=if_match,
        )  # fmt: skip
        await self.store.execute(
            ref.org_id, self.decider, cmd, self._meta(ref, actor, invitation_id)
        )
        await self._send(ref, invitation_id, token)

    async def revoke(
        self, ref: OrgRef, invitation_id: str, actor: Actor, if_match: str | None = None
    ) -> None:
        """Revoked: the invitation's key is destroyed in the same commit."""
        cmd = RevokeInvitation(
            ref=ref, invitation_id=invitation_id, now=self.rt.clock.now_ms(), if_match=if_match
        )
        await self.store.execute(
            ref.org_id, self.decider, cmd, self._meta(ref, actor, invitation_id)
        )
        await self.vault.vacuum(self.rt.pool)

    # The invitee's side: the portal's page (idp-api.md 12.6).

    async def link(self, issuer_id: str, token: str) -> InvitationLink:
        """The invitation a link's token names in this issuer; 404 for any other token."""
        async with self.rt.pool.connection() as conn:
            found = await self.queries.link(conn, sha256_hex(token), self.rt.clock.now_ms())
        if found is None or found.issuer_id != issuer_id:
            raise NotFound("no such invitation", reason="invitation.not_found")
        return found

    async def answer(
        self, issuer_id: str, token: str, *, accept: bool, user_id: str | None = None
    ) -> InvitationLink:
        """Accept (as the signed-in `user_id`, who must hold the invited address) or decline.
        A used, revoked, expired or superseded token is refused. A decline destroys the
        invitation's key in the same commit."""
        found = await self.link(issuer_id, token)
        ref = OrgRef(org_id=found.org_id, account_id=found.account_id, issuer_id=issuer_id)
        email_hash: str | None = None
        if accept and user_id is not None:
            row = await self.users.get(found.account_id, issuer_id, user_id)
            email_hash = row.username_hash if row.username_type == "email" else None
        cmd = AnswerInvitation(
            org_id=found.org_id, invitation_id=found.id, token_sha256=sha256_hex(token),
            accept=accept, now=self.rt.clock.now_ms(), user_id=user_id,
            user_email_hash=email_hash,
        )  # fmt: skip
        actor = Actor(type="user", user_id=user_id) if user_id else Actor(type="system")
        meta = self._meta(ref, actor, found.id, trigger="idp")
        if accept and user_id is not None:
            meta = msgspec.structs.replace(
                meta, subject={**meta.subject, "member_id": user_id, "member_type": "user"}
            )
        await self.store.execute(found.org_id, self.decider, cmd, meta)
        if not accept:
            await self.vault.vacuum(self.rt.pool)
        return found

    async def register_invited(
        self,
        *,
        account_id: str,
        issuer_id: str,
        token: str,
        username: str,
        profile: dict[str, Any],
    ) -> str:
        """Sign up with the invited address and accept, in one transaction: the new user
        (`user.created`, method `invitation`) exists only if the invitation accepts it, so an
        issuer whose signup mode is `invite_only` gains no account without one. An invitation
        is an administrator's word for the address: the user is never held for approval. An
        issuer whose mode is `closed` takes no sign-up at all."""
        found = await self.link(issuer_id, token)
        if found.account_id != account_id:
            raise NotFound("no such invitation", reason="invitation.not_found")
        new = self.users.registration("email", username, profile)
        if await self.users.signup_mode(account_id, issuer_id) == "closed":
            raise AccessDenied("the issuer takes no sign-ups", reason="signup.closed")
        create, claim = self.users.creation(issuer_id, new, method="invitation")
        user_id = create.stream_id
        answer = AnswerInvitation(
            org_id=found.org_id, invitation_id=found.id, token_sha256=sha256_hex(token),
            accept=True, now=self.rt.clock.now_ms(), user_id=user_id,
            user_email_hash=self.vault.username_hash(issuer_id, new.username),
        )  # fmt: skip
        ref = OrgRef(org_id=found.org_id, account_id=account_id, issuer_id=issuer_id)
        meta = self._meta(ref, Actor(type="user", user_id=user_id), found.id, trigger="idp")
        meta = msgspec.structs.replace(
            meta, subject={**meta.subject, "member_id": user_id, "member_type": "user"}
        )
        with taken_username():
            await self.store.execute_all(
                [create, Step(found.org_id, self.decider, answer)], meta, [claim]
            )
        return user_id

    async def _send(self, ref: OrgRef, invitation_id: str, token: str) -> None:
        inv, _ = await self.get(ref, invitation_id)
        async with self.rt.pool.connection() as conn:
            org = await self.orgs.queries.organization(
                conn, ref.account_id, ref.issuer_id, ref.org_id
            )
        org_name = (org.name if org is not None else None) or "an organization"
        base = self.rt.settings.idp_url.rstrip("/")
        url = f"{base}/{ref.issuer_id}/{LINK_PATH}?token={token}"
        who = (inv.inviter or {}).get("name")
        lead = f"{who} invited you" if isinstance(who, str) and who else "You are invited"
        parts = [f"{lead} to join {org_name}."]
        if inv.user_title:
            parts.append(f"Your role: {inv.user_title}")
        for note in (org.invitation_message if org is not None else None, inv.message):
            if note:
                parts.append(note)
        parts.append(f"To accept or decline, open:\n\n{url}\n")
        parts.append("The link works once and expires; if it does not work, ask for a new one.")
        message = MailMessage(
            to=inv.email_invited, subject=f"You are invited to join {org_name}",
            text="\n\n".join(parts),
        )  # fmt: skip
        try:
            await self.rt.mailer.send(message)
        except Exception as exc:  # the invitation stands; the mail is best effort
            log.warning(
                "invitation.mail_failed", invitation_id=invitation_id, error=type(exc).__name__
            )
