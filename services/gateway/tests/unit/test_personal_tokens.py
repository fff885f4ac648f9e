"""The gateway's personal-token check without a platform: how the cache follows personal-token
and user events, and what the verifier refuses (digest, status, expiry by the injected clock,
the owner's status)."""

from __future__ import annotations

import asyncio
import base64
import types

import pytest

from authpi.contracts.directory import (
    PersonalTokenCreated,
    PersonalTokenDeleted,
    PersonalTokenUpdated,
    UserBlocked,
    UserCreated,
    UserDeleted,
    UserUnblocked,
)
from authpi.crypto.clock import FixedClock
from authpi.crypto.ids import RandomIds, sha256_hex
from authpi.errors import InvalidToken
from authpi.gateway.caches.personal_tokens import PersonalTokenCache
from authpi.gateway.edge.personal_tokens import PersonalTokenVerifier
from authpi.messaging.follower import Feed

TOKEN_ID = RandomIds().new("ptk")
# A well-formed PAT shape: `ptk_` + a JWT whose claims carry the jti (the digest decides).
CLAIMS = base64.urlsafe_b64encode(f'{{"jti":"{TOKEN_ID}"}}'.encode()).decode().rstrip("=")
TOKEN = f"ptk_eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{CLAIMS}.c2lnbmF0dXJl"


def env(version: int) -> types.SimpleNamespace:
    return types.SimpleNamespace(stream_version=version)


def created(**changes) -> PersonalTokenCreated:
    fields = dict(
        id=TOKEN_ID, account_id="acc_a", issuer_id="i_1", user_id="usr_1", name="cli",
        scopes=["issuers:read"], jti=TOKEN_ID, token_sha256=sha256_hex(TOKEN),
        token_hint=TOKEN[-8:], created_at=0,
    )  # fmt: skip
    return PersonalTokenCreated(**{**fields, **changes})


def setup(miss_wait: float = 0) -> tuple[PersonalTokenCache, PersonalTokenVerifier, FixedClock]:
    cache = PersonalTokenCache(Feed(None, None, "t", "t"), miss_wait=miss_wait)
    clock = FixedClock()
    return cache, PersonalTokenVerifier(cache, clock), clock


async def refusal(verifier: PersonalTokenVerifier, token: str = TOKEN) -> str:
    with pytest.raises(InvalidToken) as refused:
        await verifier.verify(token, None)
    return refused.value.reason


async def test_an_active_token_acts_on_its_account_with_its_scopes():
    cache, verifier, _ = setup()
    cache.receive(env(1), created())
    principal = await verifier.verify(TOKEN, "127.0.0.1")
    assert (principal.type, principal.account_id, principal.org_id) == (
        "personal_token", "acc_a", "org_a"
    )  # fmt: skip
    assert principal.scopes == {"issuers:read"} and principal.user_id == "usr_1"
    assert await refusal(verifier, TOKEN[:-2] + "xx") == "personal_token.invalid"
    assert await refusal(verifier, "ptk_not.a.jwt") == "personal_token.invalid"


async def test_revoked_expired_and_deleted_tokens_are_refused():
    cache, verifier, clock = setup()
    cache.receive(env(1), created(expires_at=clock.now_ms() + 1000))
    await verifier.verify(TOKEN, None)
    clock.advance(ms=1000)
    assert await refusal(verifier) == "personal_token.expired"

    cache.receive(env(2), PersonalTokenUpdated(id=TOKEN_ID, changed=["status"], status="revoked",
                                              updated_at=0))  # type: ignore[arg-type]  # fmt: skip
    assert await refusal(verifier) == "personal_token.revoked"
    cache.receive(env(1), PersonalTokenUpdated(id=TOKEN_ID, changed=["status"], status="active",
                                              updated_at=0))  # type: ignore[arg-type]  # fmt: skip
    assert cache.get(TOKEN_ID).status == "revoked"  # an older event changes nothing

    cache.receive(env(3), PersonalTokenDeleted(id=TOKEN_ID, deleted_at=0))
    cache.receive(env(1), created())
    assert cache.get(TOKEN_ID) is None  # deleted for good
    assert await refusal(verifier) == "personal_token.not_found"


async def test_the_owners_status_follows_user_events():
    cache, verifier, _ = setup()
    cache.receive(env(1), created())
    cache.receive(env(2), UserBlocked(id="usr_1", status="suspended", status_at=0))
    assert await refusal(verifier) == "personal_token.suspended"
    cache.receive(env(3), UserUnblocked(id="usr_1", status_at=0))
    assert (await verifier.verify(TOKEN, None)).user_id == "usr_1"
    cache.receive(env(4), UserDeleted(id="usr_1", deleted_at=0))
    assert await refusal(verifier) == "personal_token.suspended"
    assert cache.owner_status("usr_1") == "deleted"

    cache.receive(env(1), UserCreated(id="usr_2", issuer_id="i_1", username_hash="h", pii="p",
                                     status="pending_approval", created_at=0))  # type: ignore[arg-type]  # fmt: skip
    assert cache.owner_status("usr_2") == "pending_approval"


async def test_a_token_created_a_moment_ago_is_awaited_until_its_event_arrives():
    # Minted now, not at import: only ids minted in the last few minutes are waited for, and a
    # whole suite can run longer than that.
    token_id = RandomIds().new("ptk")
    claims = base64.urlsafe_b64encode(f'{{"jti":"{token_id}"}}'.encode()).decode().rstrip("=")
    token = f"ptk_eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{claims}.c2lnbmF0dXJl"
    cache, verifier, _ = setup(miss_wait=30.0)
    pending = asyncio.create_task(verifier.verify(token, None))
    await asyncio.sleep(0)
    assert not pending.done()
    fresh = created(id=token_id, jti=token_id, token_sha256=sha256_hex(token))
    cache.receive(env(1), fresh)
    assert (await pending).account_id == "acc_a"
