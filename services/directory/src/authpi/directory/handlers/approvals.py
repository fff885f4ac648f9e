"""The signup approval queue (core-api.md 3.10): the users an issuer holds at signup
(`pending_approval`, see `Users.register`), and an administrator's decision on each. Approving
makes the user `active`, rejecting `blocked`; either way the user is told by email once the
decision is committed. A decision answers only after every follower of user statuses has applied
it (the gateway's read-your-writes wait), so an approved user signs in at once."""

from __future__ import annotations

from authpi.contracts.base import Actor, Meta
from authpi.directory.domain import user
from authpi.directory.domain.commands.user import DecideApproval
from authpi.directory.handlers.users import Users
from authpi.directory.queries.issuers import IssuerQueries
from authpi.directory.queries.users import UserIndexRow, UserRow
from authpi.errors import NotFound
from authpi.observability import get_logger
from authpi.web.mail import MailMessage
from authpi.web.pagination import SortKey

log = get_logger("authpi.directory.approvals")


class Approvals:
    def __init__(self, users: Users) -> None:
        self.users = users
        self.rt = users.rt
        self.issuer_queries = IssuerQueries(users.store.schema)

    async def pending(
        self, account_id: str, issuer_id: str, after: SortKey | None, limit: int
    ) -> list[UserIndexRow]:
        await self.users.require_issuer(account_id, issuer_id)
        async with self.rt.pool.connection() as conn:
            return await self.users.queries.pending(conn, issuer_id, after, limit)

    async def get(self, account_id: str, issuer_id: str, user_id: str) -> UserRow:
        """The full user, only while it waits for a decision."""
        row = await self._user(account_id, issuer_id, user_id)
        if row.status != user.PENDING:
            raise NotFound("the user is not waiting for approval", reason="approval.not_found")
        return row

    async def _user(self, account_id: str, issuer_id: str, user_id: str) -> UserRow:
        try:
            return await self.users.get(account_id, issuer_id, user_id)
        except NotFound:
            raise NotFound("no such approval", reason="approval.not_found") from None

    async def decide(
        self,
        account_id: str,
        issuer_id: str,
        user_id: str,
        decision: str,
        reason: str | None,
        actor: Actor,
        decided_by: str | None = None,
        if_match: str | None = None,
    ) -> UserRow:
        """Approve or reject a held signup; 409 when the user no longer waits."""
        await self._user(account_id, issuer_id, user_id)
        cmd = DecideApproval(
            user_id=user_id,
            issuer_id=issuer_id,
            decision=decision,
            reason=reason,
            decided_by=decided_by or actor.key_id or actor.user_id,
            now=self.rt.clock.now_ms(),
            if_match=if_match,
        )
        meta = Meta(
            account_id=account_id, issuer_id=issuer_id, actor=actor, trigger="api",
            region=self.rt.settings.region,
        )  # fmt: skip
        await self.users.store.execute(user_id, user, cmd, meta)
        row = await self.users.get(account_id, issuer_id, user_id)
        await self._tell(account_id, row, decision == "approve")
        return row

    async def _tell(self, account_id: str, row: UserRow, approved: bool) -> None:
        """Mail the decision to the user's address (users with another kind of username have
        none to mail). A failed delivery leaves the decision in place and is logged."""
        if row.username_type != "email" or not row.username:
            return
        async with self.rt.pool.connection() as conn:
            issuer = await self.issuer_queries.issuer(conn, account_id, row.issuer_id)
        name = issuer.name if issuer is not None else "the application"
        login = f"{self.rt.settings.idp_url.rstrip('/')}/{row.issuer_id}/login"
        if approved:
            subject = f"Your {name} account is approved"
            text = (
                f"Good news: an administrator approved your {name} account.\n\n"
                f"You can sign in now:\n\n{login}\n"
            )
        else:
            subject = f"Your {name} sign-up was not approved"
            text = (
                f"An administrator reviewed your sign-up for {name} and did not approve it."
                " You cannot sign in with this account.\n\n"
                "If you think this is a mistake, contact the administrator.\n"
            )
        try:
            await self.rt.mailer.send(MailMessage(to=row.username, subject=subject, text=text))
        except Exception as exc:  # the decision stands; the mail is best effort
            log.warning("approval.mail_failed", user_id=row.id, error=type(exc).__name__)
