"""Read-side SQL over the people the token service learnt from the directory (reactions/people):
users, their claims (idp-api.md 6, 11.6, 14 #17) and their organizations.

PII is opened on read only: users_view keeps the sealed snapshot of the user's latest event, and
its data key comes from the region's PII key store (`authpi.crypto.pii`, looked up by the user's
region). A deleted user has neither snapshot nor key, so its claims carry no PII at all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg.rows import dict_row

from authpi.contracts.directory import OrganizationRestriction
from authpi.crypto.envelope import Kek
from authpi.crypto.pii import DEFAULT_REGION, Pii, PiiVault, region_store
from authpi.crypto.pii import username_hash as hash_username
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render

_USER_COLUMNS = (
    "id, issuer_id, account_id, status, username_type, username_hash, scopes, created_at,"
    " updated_at"
)
# Claims a user's custom fields never replace (registered JWT claims, OIDC standard claims and
# what the token service itself puts in tokens).
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "auth_time", "nonce", "acr", "amr", "azp",
     "sid", "at_hash", "c_hash", "scope", "client_id", "org_id", "organizations", "dat",
     "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
     "profile", "picture", "website", "email", "email_verified", "gender", "birthdate",
     "zoneinfo", "locale", "phone_number", "phone_number_verified", "address", "updated_at",
     "created_at"}
)  # fmt: skip
_USER_FIELDS = [c.strip() for c in _USER_COLUMNS.split(",")]
_orgs = msgspec.json.Decoder(list[tuple[str, str | None, list[Any], int]])
_ADDRESS_FIELDS = {
    "formatted": ("formatted",),
    "street_address": ("street_address", "street", "line1"),
    "locality": ("locality", "city"),
    "region": ("region", "state"),
    "postal_code": ("postal_code", "zip", "postcode"),
    "country": ("country", "country_code"),
}


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    account_id: str
    status: str
    username_type: str
    username_hash: str
    scopes: list[str]
    created_at: int
    updated_at: int | None


class Person(msgspec.Struct, frozen=True, kw_only=True):
    """What a token grant reads of its user in one statement (`People.person`)."""

    user: UserRecord
    organizations: list[dict[str, Any]]
    claims: dict[str, Any]


class PersonRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One user to read with `People.send_persons`, as `send_person` takes it."""

    user_id: str
    restriction: OrganizationRestriction
    selected: str | None
    scopes: list[str]


class People:
    def __init__(self, schema: str, kek: Kek, namespace: str) -> None:
        self.kek = kek
        self.namespace = namespace
        self._vaults: dict[str, PiiVault] = {}
        self._user = render(
            f"SELECT {_USER_COLUMNS} FROM {{schema}}.users_view WHERE id = %s", schema=schema
        )
        self._by_hash = render(
            f"SELECT {_USER_COLUMNS} FROM {{schema}}.users_view"
            " WHERE issuer_id = %s AND username_hash = %s AND status <> 'deleted'"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            schema=schema,
        )
        self._sealed = render(
            "SELECT region, pii FROM {schema}.users_view WHERE id = %s", schema=schema
        )
        # Written by the credentials projection; no row means not verified.
        self._email_verified = render(
            "SELECT email_verified FROM {schema}.credentials_view WHERE user_id = %s",
            schema=schema,
        )
        self._member = render(
            "SELECT 1 FROM {schema}.memberships_view WHERE org_id = %s AND member_id = %s",
            schema=schema,
        )
        self._organizations = render(
            "SELECT m.org_id, m.user_title, m.scopes, m.joined_at"
            " FROM {schema}.memberships_view m"
            " JOIN {schema}.organizations_view o ON o.id = m.org_id"
            " WHERE m.member_id = %(user)s AND m.status = 'active' AND o.status = 'active'"
            " AND (%(only)s::text[] IS NULL OR m.org_id = ANY(%(only)s::text[]))"
            " AND (%(selected)s::text IS NULL OR m.org_id = %(selected)s)"
            " ORDER BY m.joined_at, m.org_id",
            schema=schema,
        )
        # A grant's whole read of its user in one statement: the user, its sealed PII with the
        # data key of the default region's store (a user of another region fetches its key from
        # that region's store), the email-verified flag and the organizations claim.
        self._person = render(
            "SELECT u.id, u.issuer_id, u.account_id, u.status, u.username_type, u.username_hash,"
            " u.scopes, u.created_at, u.updated_at, u.region, u.pii, k.wrapped_key,"
            " c.email_verified,"
            " CASE WHEN %(orgs)s THEN (SELECT json_agg(json_build_array(m.org_id, m.user_title,"
            " m.scopes, m.joined_at) ORDER BY m.joined_at, m.org_id)::text"
            " FROM {schema}.memberships_view m"
            " JOIN {schema}.organizations_view o ON o.id = m.org_id"
            " WHERE m.member_id = u.id AND m.status = 'active' AND o.status = 'active'"
            " AND (%(only)s::text[] IS NULL OR m.org_id = ANY(%(only)s::text[]))"
            " AND (%(selected)s::text IS NULL OR m.org_id = %(selected)s)) END"
            " FROM {schema}.users_view u"
            " LEFT JOIN {pii}.pii_keys k ON k.subject_id = u.id"
            " LEFT JOIN {schema}.credentials_view c ON c.user_id = u.id"
            " WHERE u.id = %(user)s",
            schema=schema,
            pii=region_store(namespace, DEFAULT_REGION),
        )

        # `_person` for many users at once (a group commit of refreshes): one row per request,
        # numbered by `i`; a request whose user is unknown has no row.
        self._persons = render(
            "SELECT r.i, u.id, u.issuer_id, u.account_id, u.status, u.username_type,"
            " u.username_hash, u.scopes, u.created_at, u.updated_at, u.region, u.pii,"
            " k.wrapped_key, c.email_verified,"
            " CASE WHEN r.orgs THEN (SELECT json_agg(json_build_array(m.org_id, m.user_title,"
            " m.scopes, m.joined_at) ORDER BY m.joined_at, m.org_id)::text"
            " FROM {schema}.memberships_view m"
            " JOIN {schema}.organizations_view o ON o.id = m.org_id"
            " WHERE m.member_id = u.id AND m.status = 'active' AND o.status = 'active'"
            " AND (r.allowed IS NULL"
            " OR m.org_id IN (SELECT jsonb_array_elements_text(r.allowed)))"
            " AND (r.selected IS NULL OR m.org_id = r.selected)) END"
            # The requests as one JSON document: psycopg dumps array parameters element by
            # element in Python, which cost more than the statement's own work.
            " FROM json_to_recordset(%s::json)"
            " AS r(i int, user_id text, orgs bool, allowed jsonb, selected text)"
            # Index lookups per request (LIMIT 1 keeps each LATERAL a nested loop), never a
            # scan of a whole view, whatever the planner guesses of the batch's size.
            " CROSS JOIN LATERAL (SELECT * FROM {schema}.users_view WHERE id = r.user_id"
            " LIMIT 1) u"
            " LEFT JOIN LATERAL (SELECT wrapped_key FROM {pii}.pii_keys"
            " WHERE subject_id = u.id LIMIT 1) k ON true"
            " LEFT JOIN LATERAL (SELECT email_verified FROM {schema}.credentials_view"
            " WHERE user_id = u.id LIMIT 1) c ON true",
            schema=schema,
            pii=region_store(namespace, DEFAULT_REGION),
        )

    def vault(self, region: str) -> PiiVault:
        """The PII key store of `region` (the per-region lookup, DESIGN.md 7)."""
        if region not in self._vaults:
            self._vaults[region] = PiiVault(self.kek, region_store(self.namespace, region))
        return self._vaults[region]

    def username_hash(self, issuer_id: str, username: str) -> str:
        """The directory's lookup key of a username (same per-issuer pepper)."""
        return hash_username(self.kek, issuer_id, username)

    async def user(self, conn: psycopg.AsyncConnection[Any], user_id: str) -> UserRecord | None:
        """The user in any status (deleted ones included: callers decide what a status means)."""
        row = await _one(conn, self._user, [user_id])
        return None if row is None else msgspec.convert(row, UserRecord)

    async def member(self, conn: psycopg.AsyncConnection[Any], user_id: str, org_id: str) -> bool:
        """Whether token-organizations holds a membership of the user in `org_id` (any status)."""
        cur = await conn.execute(self._member, [org_id, user_id])
        return await cur.fetchone() is not None

    async def user_by_username(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, username: str
    ) -> UserRecord | None:
        """The issuer's user (not deleted) with this username, whatever its case or blanks."""
        return await self.user_by_hash(conn, issuer_id, self.username_hash(issuer_id, username))

    async def user_by_hash(
        self, conn: psycopg.AsyncConnection[Any], issuer_id: str, username_hash: str
    ) -> UserRecord | None:
        """The issuer's user (not deleted) whose username has this hash."""
        row = await _one(conn, self._by_hash, [issuer_id, username_hash])
        return None if row is None else msgspec.convert(row, UserRecord)

    async def pii(self, conn: psycopg.AsyncConnection[Any], user_id: str) -> Pii | None:
        """The user's PII, opened with its data key; None once the user is deleted."""
        row = await _one(conn, self._sealed, [user_id])
        if row is None or row["pii"] is None:
            return None
        return await self.vault(row["region"]).open_stored(conn, user_id, row["pii"])

    async def person(
        self,
        conn: psycopg.AsyncConnection[Any],
        user_id: str,
        restriction: OrganizationRestriction,
        selected: str | None,
        scopes: Collection[str],
    ) -> Person | None:
        """The user (any status), its organizations claim (as `organizations`) and its claims
        for `scopes` (empty without `openid`), read in one statement."""
        return await (await self.send_person(conn, user_id, restriction, selected, scopes))()

    async def send_person(
        self,
        conn: psycopg.AsyncConnection[Any],
        user_id: str,
        restriction: OrganizationRestriction,
        selected: str | None,
        scopes: Collection[str],
    ) -> Callable[[], Awaitable[Person | None]]:
        """`person` in two halves: the statement is sent now and its answer read by the returned
        function, so that in pipeline mode it shares a round trip with the next read."""
        only = list(restriction.allowlist) if restriction.mode == "allowlist" else None
        params = {
            "user": user_id,
            "orgs": restriction.mode != "none",
            "only": only,
            "selected": selected,
        }
        cur = await conn.execute(self._person, params)

        async def receive() -> Person | None:
            row = await cur.fetchone()
            return None if row is None else await self._person_of(conn, row, scopes)

        return receive

    async def send_persons(
        self, conn: psycopg.AsyncConnection[Any], requests: Sequence[PersonRequest]
    ) -> Callable[[], Awaitable[list[Person | None]]]:
        """`send_person` for many requests in one statement; the answer is in their order."""
        rows = [
            {
                "i": i,
                "user_id": r.user_id,
                "orgs": r.restriction.mode != "none",
                "allowed": list(r.restriction.allowlist)
                if r.restriction.mode == "allowlist"
                else None,
                "selected": r.selected,
            }
            for i, r in enumerate(requests)
        ]
        params = [jsonb.dumps(rows)]
        cur = await conn.execute(self._persons, params)

        async def receive() -> list[Person | None]:
            found: list[Person | None] = [None] * len(requests)
            for row in await cur.fetchall():
                found[row[0]] = await self._person_of(conn, row[1:], requests[row[0]].scopes)
            return found

        return receive

    async def _person_of(
        self, conn: psycopg.AsyncConnection[Any], row: Sequence[Any], scopes: Collection[str]
    ) -> Person:
        n = len(_USER_FIELDS)
        user = msgspec.convert(dict(zip(_USER_FIELDS, row[:n], strict=True)), UserRecord)
        region, sealed, wrapped, verified, orgs = row[n:]
        claims: dict[str, Any] = {}
        if "openid" in scopes:
            pii: Pii | None = None
            if sealed is not None:
                if region == DEFAULT_REGION:
                    pii = self.vault(region).open_wrapped(wrapped, user.id, sealed)
                else:
                    pii = await self.vault(region).open_stored(conn, user.id, sealed)
            claims = _claims(user, pii, bool(verified), scopes)
        organizations = [
            {"id": o[0], "title": o[1], "scopes": list(o[2]), "joined_at": o[3] // 1000}
            for o in (_orgs.decode(orgs) if orgs else [])
        ]
        return Person(user=user, organizations=organizations, claims=claims)

    async def claims(
        self, conn: psycopg.AsyncConnection[Any], user: UserRecord, scopes: Collection[str]
    ) -> dict[str, Any]:
        """The user's claims for the granted `scopes` (idp-api.md 6): `sub`; profile, email,
        phone and address claims by scope; the user's custom fields beside them (never in place
        of a standard claim); `created_at` / `updated_at` in Unix seconds (14 #17)."""
        pii = await self.pii(conn, user.id)
        verified = False
        if pii is not None and "email" in scopes and user.username_type == "email":
            verified = await self._verified(conn, user.id)
        return _claims(user, pii, verified, scopes)

    async def _verified(self, conn: psycopg.AsyncConnection[Any], user_id: str) -> bool:
        cur = await conn.execute(self._email_verified, [user_id])
        row = await cur.fetchone()
        return bool(row and row[0])

    async def organizations(
        self,
        conn: psycopg.AsyncConnection[Any],
        user_id: str,
        restriction: OrganizationRestriction,
        selected: str | None,
    ) -> list[dict[str, Any]]:
        """The organizations claim (idp-api.md 11.6): the user's active memberships of active
        organizations, the client's restriction applied, only `selected` when given."""
        if restriction.mode == "none":
            return []
        only = list(restriction.allowlist) if restriction.mode == "allowlist" else None
        params = {"user": user_id, "only": only, "selected": selected}
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(self._organizations, params)
        return [
            {
                "id": r["org_id"],
                "title": r["user_title"],
                "scopes": list(r["scopes"]),
                "joined_at": r["joined_at"] // 1000,
            }
            for r in await cur.fetchall()
        ]

    async def is_active_member(
        self,
        conn: psycopg.AsyncConnection[Any],
        user_id: str,
        org_id: str,
        restriction: OrganizationRestriction,
    ) -> bool:
        """Whether `org_id` may be the selected organization of the user's tokens."""
        return bool(await self.organizations(conn, user_id, restriction, org_id))


def _claims(
    user: UserRecord, pii: Pii | None, verified: bool, scopes: Collection[str]
) -> dict[str, Any]:
    """The claims of `claims`, from the opened PII and the email-verified flag."""
    claims: dict[str, Any] = {"sub": user.id}
    if pii is not None:
        for name, value in pii.custom_fields.items():
            if name not in RESERVED_CLAIMS:
                claims[name] = value
        if "profile" in scopes:
            claims.update(_profile_claims(pii.profile))
        if "email" in scopes:
            email = _email(user, pii)
            if email is not None:
                claims["email"] = email
                claims["email_verified"] = user.username_type == "email" and verified
        if "phone" in scopes:
            phone = _phone(user, pii)
            if phone is not None:
                claims["phone_number"] = phone
                claims["phone_number_verified"] = False
        if "address" in scopes:
            address = _address(pii)
            if address:
                claims["address"] = address
    claims["created_at"] = user.created_at // 1000
    claims["updated_at"] = (user.updated_at or user.created_at) // 1000
    return claims


def _profile_claims(profile: dict[str, Any]) -> dict[str, Any]:
    first, last = _text(profile.get("first_name")), _text(profile.get("last_name"))
    name = _text(profile.get("display_name")) or " ".join(p for p in (first, last) if p) or None
    claims = {
        "name": name,
        "given_name": first,
        "family_name": last,
        "picture": _text(profile.get("picture")),
        "locale": _text(profile.get("locale")),
    }
    return {k: v for k, v in claims.items() if v}


def _email(user: UserRecord, pii: Pii) -> str | None:
    if user.username_type == "email":
        return pii.username
    return _text(pii.profile.get("email"))


def _phone(user: UserRecord, pii: Pii) -> str | None:
    if user.username_type == "phone":
        return pii.username
    return _text(pii.profile.get("phone_number"))


def _address(pii: Pii) -> dict[str, str]:
    """The OIDC structured address: the user's first address, else the profile's `address`."""
    source: Any = pii.addresses[0] if pii.addresses else pii.profile.get("address")
    if isinstance(source, str):
        return {"formatted": source} if source.strip() else {}
    if not isinstance(source, dict):
        return {}
    address: dict[str, str] = {}
    for claim, keys in _ADDRESS_FIELDS.items():
        value = next((source[k] for k in keys if _text(source.get(k))), None)
        if value is not None:
            address[claim] = str(value)
    return address


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


async def _one(
    conn: psycopg.AsyncConnection[Any], query: str, params: Any
) -> dict[str, Any] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(query, params)
    return await cur.fetchone()
