"""users_view: inline projection of User events. It keeps a user's PII only as the sealed
snapshot its latest event carries (`pii`: AES-GCM under the user's own data key, DESIGN.md 7), so
no row version PostgreSQL ever writes (live, dead tuple, WAL, backup) holds a clear value; reads
decrypt it (`queries.users`). Deletion drops the snapshot in the transaction that destroys the
key, and a replay after deletion writes only ciphertext whose key is gone."""

from __future__ import annotations

from typing import Any

import psycopg

from authpi.contracts.directory import (
    UserApprovalApproved,
    UserApprovalRejected,
    UserApprovalRequested,
    UserBlocked,
    UserCreated,
    UserDeleted,
    UserUnblocked,
    UserUpdated,
)
from authpi.eventstore import jsonb
from authpi.eventstore.sqltext import render
from authpi.eventstore.store import StoredEvent


class UsersView:
    name = "directory-users"
    event_types = (
        "user.created",
        "user.updated",
        "user.blocked",
        "user.unblocked",
        "user.deleted",
        "user.approval.requested",
        "user.approval.approved",
        "user.approval.rejected",
    )

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._insert = render(
            "INSERT INTO {schema}.users_view (id, account_id, issuer_id, username_hash,"
            " username_type, status, region, store_id, pii, scopes, metadata, version,"
            " created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s)"
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        self._update = render(
            "UPDATE {schema}.users_view SET pii = coalesce(%s, pii),"
            " username_hash = coalesce(%s, username_hash),"
            " scopes = coalesce(%s::jsonb, scopes), metadata = coalesce(%s::jsonb, metadata),"
            " version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._status = render(
            "UPDATE {schema}.users_view SET status = %s, status_at = %s, status_reason = %s,"
            " status_by = %s, version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        self._delete = render(
            "UPDATE {schema}.users_view SET status = 'deleted', status_at = %s, deleted_at = %s,"
            " pii = NULL, version = %s, updated_at = %s WHERE id = %s",
            schema=schema,
        )
        # The status moves with the user.blocked / user.unblocked committed beside a decision.
        self._approval = render(
            "UPDATE {schema}.users_view SET approval = %s::jsonb, version = %s WHERE id = %s",
            schema=schema,
        )
        self._reset = render("TRUNCATE {schema}.users_view", schema=schema)

    async def apply(self, conn: psycopg.AsyncConnection[Any], stored: StoredEvent) -> None:
        v = stored.stream_version
        match stored.event:
            case UserCreated() as e:
                await conn.execute(
                    self._insert,
                    [
                        e.id,
                        stored.meta.account_id,
                        e.issuer_id,
                        e.username_hash,
                        e.username_type,
                        e.status,
                        e.region,
                        e.store_id,
                        e.pii,
                        jsonb.dumps(e.scopes),
                        jsonb.dumps(e.metadata),
                        v,
                        e.created_at,
                    ],
                )
            case UserUpdated() as e:
                scopes = None if e.scopes is None else jsonb.dumps(e.scopes)
                metadata = None if e.metadata is None else jsonb.dumps(e.metadata)
                await conn.execute(
                    self._update,
                    [e.pii, e.username_hash, scopes, metadata, v, e.updated_at, e.id],
                )
            case UserBlocked() | UserUnblocked() as e:
                await conn.execute(
                    self._status,
                    [e.status, e.status_at, e.status_reason, e.status_by, v, e.status_at, e.id],
                )
            case UserDeleted() as e:
                await conn.execute(
                    self._delete, [e.deleted_at, e.deleted_at, v, e.deleted_at, e.id]
                )
            case UserApprovalRequested() | UserApprovalApproved() | UserApprovalRejected() as e:
                await conn.execute(self._approval, [jsonb.dumps(e.approval), v, e.id])

    async def reset(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(self._reset)
