"""Console users' access tokens without a platform: memberships from the `organizations` claim,
the platform-key cache following `signing-key.*` events, and the verifier's checks by the
injected clock (the integration tests mint with the token service's signer instead)."""

from __future__ import annotations

import asyncio
import types
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from authpi.contracts.console import PLATFORM_ISSUER_ID
from authpi.contracts.scopes import ALL_SCOPES
from authpi.contracts.token import SigningKeyCreated, SigningKeyRetired
from authpi.crypto.clock import FixedClock
from authpi.crypto.ids import RandomIds
from authpi.errors import InvalidToken
from authpi.gateway.user_tokens import PlatformKeys, UserTokenVerifier, core_scopes, memberships
from authpi.token.signing.keys import public_jwk

IDP = "https://idp.test"
ISS = f"{IDP}/{PLATFORM_ISSUER_ID}"
ENV = types.SimpleNamespace(stream_version=1)


def test_owner_holds_every_scope_and_bare_roles_none():
    assert core_scopes(["owner"]) == frozenset(ALL_SCOPES)
    assert core_scopes(["admin"]) == frozenset()
    assert core_scopes(["member", "issuers:read", "projects:write", "*:**"]) == {"issuers:read"}


def test_memberships_map_platform_organizations_to_accounts():
    claim = [
        {"id": "org_aaa", "title": None, "scopes": ["owner"], "joined_at": 1},
        {"id": "org_bbb", "scopes": ["member", "webhooks:read"]},
        {"id": "org_bbb", "scopes": ["issuers:read"]},  # the same account twice: merged
        {"id": "c_not_an_org", "scopes": ["owner"]},  # backs no account: skipped
    ]
    by_account = {a.account_id: a for a in memberships(claim)}
    assert by_account.keys() == {"acc_aaa", "acc_bbb"}
    assert by_account["acc_aaa"].scopes == frozenset(ALL_SCOPES)
    assert by_account["acc_bbb"].org_id == "org_bbb"
    assert by_account["acc_bbb"].scopes == {"webhooks:read", "issuers:read"}
    assert memberships(None) == ()


@pytest.mark.parametrize(
    "claim",
    ["org_a", [["org_a"]], [{"scopes": []}], [{"id": "org_a", "scopes": "owner"}],
     [{"id": "org_a", "scopes": [1]}]],
)  # fmt: skip
def test_malformed_organizations_are_refused(claim):
    assert memberships(claim) is None


class Fixture:
    def __init__(self) -> None:
        self.clock = FixedClock()
        self.keys = PlatformKeys(pool=None, js=None, namespace="t", schema="t", miss_wait=0)  # type: ignore[arg-type]
        self.verifier = UserTokenVerifier(self.keys, self.clock, IDP)
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.kid = str(RandomIds().event_uuid())
        self.keys._apply(ENV, self.created(self.kid, PLATFORM_ISSUER_ID))  # type: ignore[arg-type]

    def created(self, kid: str, issuer_id: str) -> SigningKeyCreated:
        return SigningKeyCreated(
            kid=kid, issuer_id=issuer_id, account_id="_", alg="ES256",
            public_jwk=public_jwk(self.private, kid, "ES256"), created_at=0,
        )  # fmt: skip

    def token(self, kid: str | None = None, **changes) -> str:
        now = self.clock.now_ms() // 1000
        claims = {"iss": ISS, "sub": "usr_1", "exp": now + 60, "iat": now,
                  "organizations": [{"id": "org_a", "scopes": ["owner"]}]}  # fmt: skip
        headers = {"kid": kid or self.kid, "typ": "at+jwt"}
        return jwt.encode({**claims, **changes}, self.private, algorithm="ES256", headers=headers)


async def test_expiry_is_judged_by_the_injected_clock():
    f = Fixture()
    token = f.token()  # minted at the fixed clock's time, long before the wall clock's
    principal = await f.verifier.verify(token, "127.0.0.1")
    assert principal.type == "user" and principal.user_id == "usr_1"
    assert [a.account_id for a in principal.accounts()] == ["acc_a"]
    f.clock.advance(seconds=60)
    with pytest.raises(InvalidToken) as refused:
        await f.verifier.verify(token, None)
    assert refused.value.reason == "user_token.expired"
    not_yet = f.token(nbf=f.clock.now_ms() // 1000 + 30)
    with pytest.raises(InvalidToken, match="not valid yet"):
        await f.verifier.verify(not_yet, None)


async def test_a_retired_key_and_a_customer_issuers_key_are_refused():
    f = Fixture()
    token = f.token()
    await f.verifier.verify(token, None)
    f.keys._apply(ENV, SigningKeyRetired(kid=f.kid, issuer_id=PLATFORM_ISSUER_ID, account_id="_",
                                         retired_at=0))  # type: ignore[arg-type]  # fmt: skip
    with pytest.raises(InvalidToken) as refused:
        await f.verifier.verify(token, None)
    assert refused.value.reason == "user_token.retired_kid"

    customer_kid = str(RandomIds().event_uuid())
    f.keys._apply(ENV, f.created(customer_kid, "i_customer"))  # type: ignore[arg-type]
    assert f.keys.get(customer_kid) is None
    with pytest.raises(InvalidToken) as refused:
        await f.verifier.verify(f.token(customer_kid), None)
    assert refused.value.reason == "user_token.unknown_kid"


async def test_a_fresh_kid_is_awaited_until_its_event_arrives_and_others_are_refused():
    f = Fixture()
    for kid in (str(uuid.uuid4()), "not-a-uuid"):  # never a fresh UUIDv7: no wait at all
        with pytest.raises(InvalidToken) as refused:
            await f.verifier.verify(f.token(kid), None)
        assert refused.value.reason == "user_token.unknown_kid"

    f.keys._miss_wait = 30.0
    rotated = str(RandomIds().event_uuid())  # minted just now, its event still on its way
    pending = asyncio.create_task(f.verifier.verify(f.token(rotated), None))
    await asyncio.sleep(0)
    assert not pending.done()
    f.keys._apply(ENV, f.created(rotated, PLATFORM_ISSUER_ID))  # type: ignore[arg-type]
    assert (await pending).user_id == "usr_1"
