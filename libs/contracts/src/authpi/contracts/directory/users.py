"""User events. PII travels only as ciphertext under the user's data key (DESIGN.md 7)."""

from __future__ import annotations

from authpi.contracts.base import Event


class UserCreated(Event, frozen=True, kw_only=True, tag="user.created"):
    id: str
    issuer_id: str
    username_hash: str
    # AES-GCM ciphertext (base64) of the user's PII under its per-user data key (DESIGN.md 7).
    pii: str
    status: str = "active"
    method: str = "api"
    region: str = "default"
    store_id: str = "default"
    created_at: int


class UserDeleted(Event, frozen=True, kw_only=True, tag="user.deleted"):
    id: str
    deleted_at: int


UserEvent = UserCreated | UserDeleted
