"""Account domains in the Account decider (core-api.md 3.3, 7 #24): add (unique, at most 20),
verify only when DNS publishes the account's TXT challenge, unverified claims lapse, assign only
verified domains, unassign before remove, the primary flag through PATCH, If-Match against the
account, no event when nothing changes."""

from __future__ import annotations

import msgspec
import pytest

from authpi.directory.domain import account, hosts
from authpi.directory.domain.account_domains import CLAIM_TTL_MS, challenge_token
from authpi.directory.domain.commands.account import DomainEdit
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    HOST,
    T0,
    account_created,
    add_domain,
    assign_domain,
    domain_added,
    domain_assigned,
    domain_removed,
    domain_unassigned,
    domain_verified,
    expire_domain_claim,
    primaries_set,
    release_issuer_domains,
    remove_domain,
    unassign_domain,
    update_account,
    verify_domain,
)


def spec(*events) -> DeciderSpec:
    return DeciderSpec(account).given(account_created(), *events)


def test_add_emits_an_unverified_domain_and_moves_the_etag():
    spec().when(add_domain()).then(domain_added())
    after = spec(domain_added()).state()
    assert after.etag == f'"{T0 + 1}"' and after.domains[0].verified is False


def test_the_same_host_twice_is_a_conflict():
    spec(domain_added()).when(add_domain()).raises(Conflict)


def test_the_twenty_first_domain_is_refused():
    twenty = [domain_added(host=f"d{i}.example.com") for i in range(20)]
    error = spec(*twenty).when(add_domain(host="one-more.example.com")).raises(Unprocessable)
    assert error.fields[0].field == "host"


def test_verify_needs_the_accounts_txt_challenge_and_happens_once():
    spec(domain_added()).when(verify_domain(published=frozenset())).raises(Conflict)
    others = frozenset({challenge_token("acc_2", HOST), challenge_token("acc_1", "x.example")})
    spec(domain_added()).when(verify_domain(published=others)).raises(Conflict)
    ok = verify_domain(published=frozenset({"v=spf1 -all", challenge_token("acc_1", HOST)}))
    spec(domain_added()).when(ok).then(domain_verified())
    spec(domain_added(), domain_verified()).when(ok).then()


def test_an_unverified_claim_lapses_after_its_ttl():
    mine = frozenset({challenge_token("acc_1", HOST)})
    lapsed = T0 + 1 + CLAIM_TTL_MS
    spec(domain_added()).when(verify_domain(published=mine, now=lapsed)).raises(Conflict)
    early = verify_domain(published=mine, now=lapsed - 1)
    spec(domain_added()).when(early).then(domain_verified(at=lapsed - 1))
    expire = expire_domain_claim(now=lapsed - 1)
    spec(domain_added()).when(expire).raises(Conflict)
    spec(domain_added(), domain_verified()).when(expire).raises(Conflict)
    expire = expire_domain_claim(now=lapsed)
    spec(domain_added()).when(expire).then(domain_removed(removed_at=lapsed))


def test_assign_requires_a_verified_domain():
    cmd = assign_domain()
    spec(domain_added()).when(cmd).raises(Conflict)
    spec(domain_added(), domain_verified()).when(cmd).then(domain_assigned())
    spec(domain_added(), domain_verified(), domain_assigned()).when(cmd).then()


def test_moving_a_domain_unassigns_it_from_the_first_issuer():
    cmd = assign_domain(issuer_id="i_2")
    spec(domain_added(), domain_verified(), domain_assigned()).when(cmd).then(
        domain_unassigned(), domain_assigned(issuer_id="i_2", assigned_at=T0 + 4)
    )


def test_removing_an_assigned_domain_unassigns_it_first():
    spec(domain_added(), domain_verified(), domain_assigned()).when(remove_domain()).then(
        domain_unassigned(), domain_removed(verified=True)
    )


def test_unassigning_an_unassigned_domain_emits_nothing():
    spec(domain_added()).when(unassign_domain()).then()


@pytest.mark.parametrize(
    "cmd",
    [
        remove_domain(host="other.example.com"),
        unassign_domain(host="other.example.com"),
        verify_domain(host="other.example.com"),
        assign_domain(host="other.example.com"),
    ],
)
def test_an_unknown_host_is_not_found_even_with_a_stale_if_match(cmd):
    spec(domain_added()).when(msgspec.structs.replace(cmd, if_match='"1"')).raises(NotFound)


def test_a_stale_if_match_is_412():
    spec(domain_added()).when(remove_domain(if_match=f'"{T0}"')).raises(PreconditionFailed)


def test_another_accounts_stream_is_not_found():
    spec().when(add_domain(account_id="acc_2")).raises(NotFound)


def test_a_deleted_issuer_releases_only_its_domains():
    cmd = release_issuer_domains()
    spec(domain_added(), domain_verified(), domain_assigned()).when(cmd).then(domain_unassigned())
    other = release_issuer_domains(issuer_id="i_9")
    spec(domain_added(), domain_verified(), domain_assigned()).when(other).then()
    DeciderSpec(account).when(cmd).then()


def test_patch_sets_one_primary_and_clears_the_others():
    two = (domain_added(), domain_added(host="b.example.com", added_at=T0 + 2))
    cmd = update_account(domains=[DomainEdit(host=HOST, primary=True)])
    first = primaries_set(True, False, T0 + 3)
    spec(*two).when(cmd).then(first)
    swap = update_account(domains=[DomainEdit(host="b.example.com", primary=True)])
    spec(*two, first).when(swap).then(primaries_set(False, True, T0 + 4))
    spec(*two, first).when(cmd).then()


@pytest.mark.parametrize(
    "edits",
    [
        [DomainEdit(host="nope.example.com", primary=True)],
        [DomainEdit(host=HOST, primary=True), DomainEdit(host=HOST, primary=False)],
        [DomainEdit(host=HOST, primary=True), DomainEdit(host="b.example.com", primary=True)],
    ],
)
def test_bad_domain_edits_are_422(edits):
    s = spec(domain_added(), domain_added(host="b.example.com", added_at=T0 + 2))
    s.when(update_account(domains=edits)).raises(Unprocessable)


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
