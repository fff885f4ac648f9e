"""The user a Core API route of `I/users/{user_id}/…` names, as the token service knows it: the
issuer from issuers_view, the user from users_view (both learnt from the directory's events; a
Core API write of either answers once they are applied). Another account's issuer, another
issuer's user and a deleted user are all 404."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from authpi.contracts.base import Actor, Meta
from authpi.errors import NotFound
from authpi.token.queries.people import People, UserRecord
from authpi.token.queries.portal import IssuerRow, PortalQueries


@dataclass(frozen=True)
class Owner:
    issuer: IssuerRow
    user: UserRecord

    def meta(self, actor: Actor, trigger: str = "api") -> Meta:
        return Meta(
            account_id=self.issuer.account_id, issuer_id=self.issuer.id, actor=actor,
            trigger=trigger, subject={"user_id": self.user.id},
        )  # fmt: skip


class UserLookup:
    def __init__(self, pool: AsyncConnectionPool, issuers: PortalQueries, people: People) -> None:
        self.pool = pool
        self.issuers = issuers
        self.people = people

    async def owner(self, account_id: str, issuer_id: str, user_id: str) -> Owner:
        async with self.pool.connection() as conn:
            issuer = await self.issuers.issuer(conn, issuer_id)
            if issuer is None or issuer.account_id != account_id or issuer.status == "deleted":
                raise NotFound("no such issuer", reason="issuer.not_found")
            user = await self.people.user(conn, user_id)
        if user is None or user.issuer_id != issuer_id or user.account_id != account_id:
            raise NotFound("no such user", reason="user.not_found")
        if user.status == "deleted":
            raise NotFound("the user was deleted", reason="user.deleted")
        return Owner(issuer=issuer, user=user)

    async def issuer(self, issuer_id: str) -> IssuerRow | None:
        async with self.pool.connection() as conn:
            return await self.issuers.issuer(conn, issuer_id)
