"""Account domains in the Account decider (core-api.md 3.3, 7 #24): add (unique, at most 20),
verify only when DNS publishes the account's TXT challenge, unverified claims lapse, assign only
verified domains, unassign before remove, the primary flag through PATCH, If-Match against the
account, no event when nothing changes."""

from __future__ import annotations

import msgspec
import pytest

from authpi.contracts.directory import (
    AccountCreated,
    AccountDomainAdded,
    AccountDomainAssigned,
    AccountDomainRemoved,
    AccountDomainUnassigned,
    AccountUpdated,
    DomainSnapshot,
)
from authpi.directory.domain import account, hosts
from authpi.directory.domain.account_domains import CLAIM_TTL_MS, challenge_token
from authpi.directory.domain.commands.account import (
    AddDomain,
    AssignDomain,
    DomainEdit,
    ExpireDomainClaim,
    ReleaseIssuerDomains,
    RemoveDomain,
    UnassignDomain,
    UpdateAccount,
    VerifyDomain,
)
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec

T0 = 1_781_222_400_000
HOST = "auth.example.com"


def created() -> AccountCreated:
    return AccountCreated(id="acc_1", org_id="org_1", name="Acme", owner_user_id=None,
                          created_at=T0)  # fmt: skip


def added(host: str = HOST, at: int = T0 + 1) -> AccountDomainAdded:
    return AccountDomainAdded(account_id="acc_1", host=host, added_at=at)


def verified(host: str = HOST, at: int = T0 + 2, primary: bool = False) -> AccountUpdated:
    snapshot = DomainSnapshot(host=host, verified=True, primary=primary, added_at=T0 + 1)
    return AccountUpdated(id="acc_1", changed=["domains"], name="Acme", updated_at=at,
                          domains=[snapshot])  # fmt: skip


def assigned(issuer: str = "i_1", at: int = T0 + 3) -> AccountDomainAssigned:
    return AccountDomainAssigned(account_id="acc_1", host=HOST, issuer_id=issuer, assigned_at=at)


def spec(*events) -> DeciderSpec:
    return DeciderSpec(account).given(created(), *events)


def test_add_emits_an_unverified_domain_and_moves_the_etag():
    s = spec()
    s.when(AddDomain(account_id="acc_1", host=HOST, now=T0)).then(added(at=T0 + 1))
    after = account.evolve(s.state(), added())
    assert after.etag == f'"{T0 + 1}"' and after.domains[0].verified is False


def test_the_same_host_twice_is_a_conflict():
    spec(added()).when(AddDomain(account_id="acc_1", host=HOST, now=T0)).raises(Conflict)


def test_the_twenty_first_domain_is_refused():
    twenty = [added(f"d{i}.example.com") for i in range(20)]
    s = spec(*twenty).when(AddDomain(account_id="acc_1", host="one-more.example.com", now=T0))
    error = s.raises(Unprocessable)
    assert error.fields[0].field == "host"


def verify(published: frozenset[str], now: int = T0) -> VerifyDomain:
    return VerifyDomain(account_id="acc_1", host=HOST, now=now, published=published)


def test_verify_needs_the_accounts_txt_challenge_and_happens_once():
    spec(added()).when(verify(frozenset())).raises(Conflict)
    others = frozenset({challenge_token("acc_2", HOST), challenge_token("acc_1", "x.example")})
    spec(added()).when(verify(others)).raises(Conflict)
    ok = verify(frozenset({"v=spf1 -all", challenge_token("acc_1", HOST)}))
    spec(added()).when(ok).then(verified())
    spec(added(), verified()).when(ok).then()


def test_an_unverified_claim_lapses_after_its_ttl():
    mine = frozenset({challenge_token("acc_1", HOST)})
    lapsed = T0 + 1 + CLAIM_TTL_MS
    spec(added()).when(verify(mine, now=lapsed)).raises(Conflict)
    spec(added()).when(verify(mine, now=lapsed - 1)).then(verified(at=lapsed - 1))
    expire = ExpireDomainClaim(account_id="acc_1", host=HOST, now=lapsed - 1)
    spec(added()).when(expire).raises(Conflict)
    spec(added(), verified()).when(expire).raises(Conflict)
    expire = ExpireDomainClaim(account_id="acc_1", host=HOST, now=lapsed)
    spec(added()).when(expire).then(
        AccountDomainRemoved(account_id="acc_1", host=HOST, verified=False, removed_at=lapsed)
    )


def test_assign_requires_a_verified_domain():
    cmd = AssignDomain(account_id="acc_1", host=HOST, issuer_id="i_1", now=T0)
    spec(added()).when(cmd).raises(Conflict)
    spec(added(), verified()).when(cmd).then(assigned())
    spec(added(), verified(), assigned()).when(cmd).then()


def test_moving_a_domain_unassigns_it_from_the_first_issuer():
    cmd = AssignDomain(account_id="acc_1", host=HOST, issuer_id="i_2", now=T0)
    spec(added(), verified(), assigned()).when(cmd).then(
        AccountDomainUnassigned(account_id="acc_1", host=HOST, issuer_id="i_1",
                                unassigned_at=T0 + 4),
        AccountDomainAssigned(account_id="acc_1", host=HOST, issuer_id="i_2",
                              assigned_at=T0 + 4),
    )  # fmt: skip


def test_removing_an_assigned_domain_unassigns_it_first():
    cmd = RemoveDomain(account_id="acc_1", host=HOST, now=T0)
    spec(added(), verified(), assigned()).when(cmd).then(
        AccountDomainUnassigned(account_id="acc_1", host=HOST, issuer_id="i_1",
                                unassigned_at=T0 + 4),
        AccountDomainRemoved(account_id="acc_1", host=HOST, verified=True, removed_at=T0 + 4),
    )  # fmt: skip


def test_unassigning_an_unassigned_domain_emits_nothing():
    spec(added()).when(UnassignDomain(account_id="acc_1", host=HOST, now=T0)).then()


@pytest.mark.parametrize(
    "cmd",
    [
        RemoveDomain(account_id="acc_1", host="other.example.com", now=T0),
        UnassignDomain(account_id="acc_1", host="other.example.com", now=T0),
        VerifyDomain(account_id="acc_1", host="other.example.com", now=T0),
        AssignDomain(account_id="acc_1", host="other.example.com", issuer_id="i_1", now=T0),
    ],
)
def test_an_unknown_host_is_not_found_even_with_a_stale_if_match(cmd):
    spec(added()).when(msgspec.structs.replace(cmd, if_match='"1"')).raises(NotFound)


def test_a_stale_if_match_is_412():
    cmd = RemoveDomain(account_id="acc_1", host=HOST, now=T0, if_match=f'"{T0}"')
    spec(added()).when(cmd).raises(PreconditionFailed)


def test_another_accounts_stream_is_not_found():
    cmd = AddDomain(account_id="acc_2", host=HOST, now=T0)
    spec().when(cmd).raises(NotFound)


def test_a_deleted_issuer_releases_only_its_domains():
    cmd = ReleaseIssuerDomains(account_id="acc_1", issuer_id="i_1", now=T0)
    spec(added(), verified(), assigned()).when(cmd).then(
        AccountDomainUnassigned(account_id="acc_1", host=HOST, issuer_id="i_1",
                                unassigned_at=T0 + 4),
    )  # fmt: skip
    other = ReleaseIssuerDomains(account_id="acc_1", issuer_id="i_9", now=T0)
    spec(added(), verified(), assigned()).when(other).then()
    DeciderSpec(account).when(cmd).then()


def test_patch_sets_one_primary_and_clears_the_others():
    s = spec(added(), added("b.example.com", T0 + 2))
    cmd = UpdateAccount(account_id="acc_1", now=T0, domains=[DomainEdit(host=HOST, primary=True)])
    [event] = account.decide(cmd, s.state())
    assert event.changed == ["domains"]
    assert [(d.host, d.primary) for d in event.domains] == [(HOST, True), ("b.example.com", False)]
    state = account.evolve(s.state(), event)
    swap = UpdateAccount(
        account_id="acc_1", now=T0, domains=[DomainEdit(host="b.example.com", primary=True)]
    )
    [event] = account.decide(swap, state)
    assert [(d.host, d.primary) for d in event.domains] == [(HOST, False), ("b.example.com", True)]
    assert account.decide(cmd, state) == []


@pytest.mark.parametrize(
    "edits",
    [
        [DomainEdit(host="nope.example.com", primary=True)],
        [DomainEdit(host=HOST, primary=True), DomainEdit(host=HOST, primary=False)],
        [DomainEdit(host=HOST, primary=True), DomainEdit(host="b.example.com", primary=True)],
    ],
)
def test_bad_domain_edits_are_422(edits):
    s = spec(added(), added("b.example.com", T0 + 2))
    s.when(UpdateAccount(account_id="acc_1", now=T0, domains=edits)).raises(Unprocessable)


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("Auth.Example.COM", "auth.example.com"), ("auth.example.com.", "auth.example.com"),
     ("bücher.example", "xn--bcher-kva.example")],
)  # fmt: skip
def test_hosts_are_stored_lower_case_ascii(raw, stored):
    assert hosts.normalize(raw) == stored


@pytest.mark.parametrize(
    "raw",
    ["https://auth.example.com", "auth.example.com:443", "auth.example.com/x", "localhost",
     "a.localhost", "127.0.0.1", "[::1]", "example", "-bad.example.com", "a..b.com",
     "a b.com", "x" * 64 + ".com", "*.example.com", "", "nul\x00.com"],
)  # fmt: skip
def test_what_is_not_a_custom_domain(raw):
    with pytest.raises(hosts.BadHost):
        hosts.normalize(raw)
