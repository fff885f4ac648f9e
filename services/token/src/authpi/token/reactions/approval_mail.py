"""token-approval-mail: a signup the issuer held for approval (core-api.md 3.10) gets its
verify-email mail once an administrator approves it (`user.approval.approved`), not at signup:
an account that may never be approved is not asked to verify anything.

A side effect, not a view: each approval is recorded in `approval_mails` (once per user, in the
consumer's transaction) and its mail handed to the portal's outbox, which issues the link and
sends it after this answers. A redelivered approval finds its row and mails nothing. An approval
older than a verification link's lifetime is not mailed, so a rebuilt or replayed consumer
never mails the past; `reset` keeps the rows for the same reason. Mail is best effort, like
every portal mail: a batch retried after a rollback may mail twice, and a process that stops
before its outbox ran loses the mail (a sign-in that needs a verified address sends another)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from authpi.contracts.directory import UserApprovalApproved
from authpi.crypto.clock import Clock
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent
from authpi.token.portal.mail_tokens import LIFETIMES_MS
from authpi.token.portal.outbox import Job

RECENT_MS = LIFETIMES_MS["verify-email"]

# (issuer_id, user_id) -> the job that mails the user a verify-email link.
VerificationMail = Callable[[str, str], Awaitable[None]]
Submit = Callable[[str, Job], bool]


class ApprovalMailReaction:
    name = "token-approval-mail"
    event_types = ("user.approval.approved",)

    def __init__(self, schema: str, clock: Clock, mail: VerificationMail, submit: Submit) -> None:
        self.schema = schema
        self.clock = clock
        self.mail = mail
        self.submit = submit
        self._record = render(
            "INSERT INTO {schema}.approval_mails (user_id, event_id, mailed_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
            schema=schema,
        )

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        match stored.event:
            case UserApprovalApproved() as e:
                now = self.clock.now_ms()
                if now - e.status_at > RECENT_MS:
                    return
                cur = await conn.execute(self._record, [e.id, stored.event_id, now])
                if await cur.fetchone() is None:
                    return
                issuer_id, user_id = e.issuer_id, e.id
                self.submit("verify-email", lambda: self.mail(issuer_id, user_id))
            case _:
                return

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Nothing to empty: the rows say who was mailed (see the module docstring)."""
