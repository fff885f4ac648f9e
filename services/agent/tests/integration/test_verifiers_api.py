"""Agent verifiers over real HTTP (platform.md 3.3, 4.2, 4.3, contract 4.14): a secret shown once
and stored as a SHA-256 digest; wallets on CAIP-2 networks, EIP-55 for display and lowercase for
lookup, one active verifier per (network, address) and issuer; the limit of 20; the optional
EIP-191 proof of control with real signatures made by eth-account."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from authpi_admin.errors import ConflictError, NotFoundError
from eth_account import Account
from eth_account.messages import encode_defunct

from services.agent.tests.factories import BASE, SOLANA, wallet

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


async def test_a_secret_is_shown_once_and_stored_as_a_digest(tenant, platform, pool, kit):
    agent = await tenant.agents().create({"name": "bot"})
    verifiers = tenant.verifiers(agent.id)
    created = await verifiers.create({"type": "secret", "name": "prod-2026-06"})
    secret = created.secret
    assert secret and secret.startswith("agts_") and len(secret) == 48
    assert created.id.startswith("avf_") and created.agent_id == agent.id
    assert created.type == "secret" and created.status == "active"
    assert created.credential == {"algorithm": "sha256", "hint": secret[-4:]}
    assert created.usage_count == 0 and created.last_used_at is None

    listed = await verifiers.list()
    assert [v.id for v in listed.data] == [created.id]
    assert not listed.has_more and listed.next_cursor is None
    async with tenant.http() as http:
        body = (await http.get(f"{tenant.agents_path()}/{agent.id}/verifiers")).json()
    assert "secret" not in body["data"][0]

    assert await kit.places_holding(platform, pool, secret) == []
    events = await kit.stored_events(platform, pool, agent.id)
    added = events[-1]
    assert added["type"] == "agent.verifier.added"
    assert added["data"]["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert added["data"]["verifier_id"] == created.id
    assert added["data"]["verifier_type"] == "secret"
    assert added["meta"]["subject"]["verifier_id"] == created.id


async def test_concurrent_secrets_both_register_and_differ(tenant):
    agent = await tenant.agents().create({"name": "bot"})
    verifiers = tenant.verifiers(agent.id)
    one, two = await asyncio.gather(*(verifiers.create({"type": "secret"}) for _ in range(2)))
    assert one.secret != two.secret and one.id != two.id
    assert {v.id for v in (await verifiers.list()).data} == {one.id, two.id}


async def test_an_eip155_wallet_registers_checksummed(tenant, platform, pool, kit):
    agent = await tenant.agents().create({"name": "payer"})
    created = await tenant.verifiers(agent.id).create(wallet(BASE.lower()))
    assert created.type == "wallet" and created.secret is None
    assert created.credential == {
        "network": "eip155:8453",
        "address": BASE,
        "account_id": f"eip155:8453:{BASE}",
    }
    added = (await kit.stored_events(platform, pool, agent.id))[-1]["data"]
    assert added["network"] == "eip155:8453" and added["lookup_address"] == BASE.lower()
    assert "secret_sha256" not in added or added["secret_sha256"] is None


async def test_a_wallet_may_be_given_as_one_caip10_address(tenant):
    agent = await tenant.agents().create({"name": "payer"})
    created = await tenant.verifiers(agent.id).create(
        {"type": "wallet", "credential": {"address": f"eip155:84532:{BASE.lower()}"}}
    )
    assert created.credential["network"] == "eip155:84532"
    assert created.credential["address"] == BASE
    sol = await tenant.verifiers(agent.id).create(
        {
            "type": "wallet",
            "credential": {"network": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "address": SOLANA},
        }
    )
    assert sol.credential["address"] == SOLANA


BAD_WALLETS = [
    ({"network": "eip155", "address": BASE}, "credential.network"),
    ({"network": "EIP155:1", "address": BASE}, "credential.network"),
    ({"network": "eip155:", "address": BASE}, "credential.network"),
    ({"network": "eip155:abc", "address": BASE}, "credential.network"),
    ({"network": "cosmos:cosmoshub-4", "address": "cosmos1abc"}, "credential.network"),
    (
        {"network": "bip122:000000000019d6689c085ae165831e93", "address": "1A1z"},
        "credential.network",
    ),
    ({"network": "eip155:1\n", "address": BASE}, "credential.network"),
    ({"network": "eip155:1", "address": BASE[:-1]}, "credential.address"),
    ({"network": "eip155:1", "address": BASE + "0"}, "credential.address"),
    ({"network": "eip155:1", "address": "0x" + "g" * 40}, "credential.address"),
    ({"network": "eip155:1", "address": BASE.replace("E9", "e9")}, "credential.address"),
    (
        {"network": "eip155:1", "address": "0x857b06519E91e3A54538791bDbb0E22373e36b6６"},
        "credential.address",
    ),
    (
        {"network": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "address": "0OIl" * 10},
        "credential.address",
    ),
    ({"network": "eip155:1"}, "credential.address"),
    ({"address": "eip155:8453"}, "credential.address"),
    ({"address": f"eip155:1:{BASE}", "network": "eip155:8453"}, "credential.address"),
    ({"network": "eip155:1", "address": BASE, "proof": "0x00"}, "credential.proof"),
]


@pytest.mark.parametrize(("credential", "field"), BAD_WALLETS)
async def test_malformed_or_unsupported_wallets_are_400_without_an_event(
    tenant, platform, pool, kit, credential, field
):
    agent = await tenant.agents().create({"name": "payer"})
    before = await kit.count_events(platform, pool)
    async with tenant.http() as http:
        response = await http.post(
            f"{tenant.agents_path()}/{agent.id}/verifiers",
            json={"type": "wallet", "credential": credential},
        )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request" and body["fields"][0]["field"] == field
    assert await kit.count_events(platform, pool) == before


async def test_unknown_verifier_types_and_bad_names_are_refused(tenant, platform, pool, kit):
    agent = await tenant.agents().create({"name": "bot"})
    before = await kit.count_events(platform, pool)
    async with tenant.http() as http:
        path = f"{tenant.agents_path()}/{agent.id}/verifiers"
        for body in (
            {"type": "totp"},
            {},
            {"type": "secret", "name": "x" * 201},
            {"type": "secret", "name": "nul\u0000"},
            {"type": "wallet"},
        ):
            response = await http.post(path, json=body)
            assert response.status_code in (400, 422), (body, response.text)
    assert await kit.count_events(platform, pool) == before


async def test_a_wallet_maps_to_one_active_verifier_per_issuer(tenant):
    first = await tenant.agents().create({"name": "one"})
    second = await tenant.agents().create({"name": "two"})
    registered = await tenant.verifiers(first.id).create(wallet(BASE))
    for agent_id, address in (
        (first.id, BASE),
        (second.id, BASE.lower()),
        (second.id, BASE.upper().replace("0X", "0x")),
    ):
        with pytest.raises(ConflictError):
            await tenant.verifiers(agent_id).create(wallet(address))
    # The same address on another network is another verifier; so is another issuer.
    assert (await tenant.verifiers(second.id).create(wallet(BASE, "eip155:1"))).id
    other_issuer = await tenant.new_issuer()
    elsewhere = await tenant.agents(issuer_id=other_issuer).create({"name": "there"})
    assert (
        await tenant.issuer(issuer_id=other_issuer)
        .agent(elsewhere.id)
        .verifiers.create(wallet(BASE))
    )
    # Removed, the address is free again.
    await tenant.verifiers(first.id).delete(registered.id)
    assert (await tenant.verifiers(second.id).create(wallet(BASE))).agent_id == second.id


async def test_deleting_an_agent_frees_its_wallets(tenant):
    first = await tenant.agents().create({"name": "one"})
    await tenant.verifiers(first.id).create(wallet(BASE))
    await tenant.agents().delete(first.id)
    second = await tenant.agents().create({"name": "two"})
    assert (await tenant.verifiers(second.id).create(wallet(BASE))).agent_id == second.id


async def test_the_21st_verifier_is_refused(tenant, platform, pool, kit):
    agent = await tenant.agents().create({"name": "bot"})
    verifiers = tenant.verifiers(agent.id)
    for _ in range(20):
        await verifiers.create({"type": "secret"})
    before = await kit.count_events(platform, pool)
    async with tenant.http() as http:
        path = f"{tenant.agents_path()}/{agent.id}/verifiers"
        for body in ({"type": "secret"}, wallet()):
            response = await http.post(path, json=body)
            assert response.status_code == 400
            assert response.json()["fields"][0]["code"] == "limit_exceeded"
    assert await kit.count_events(platform, pool) == before
    assert len((await verifiers.list()).data) == 20


async def test_removing_a_verifier(tenant, platform, pool, kit):
    agent = await tenant.agents().create({"name": "bot"})
    verifiers = tenant.verifiers(agent.id)
    kept = await verifiers.create({"type": "secret"})
    gone = await verifiers.create(wallet())
    await verifiers.delete(gone.id, if_match=gone._etag)
    assert [v.id for v in (await verifiers.list()).data] == [kept.id]
    with pytest.raises(NotFoundError):
        await verifiers.delete(gone.id)
    removed = (await kit.stored_events(platform, pool, agent.id))[-1]
    assert removed["type"] == "agent.verifier.removed"
    assert removed["data"]["verifier_id"] == gone.id
    assert removed["data"]["verifier_type"] == "wallet"
    assert removed["data"]["lookup_address"] == BASE.lower()


def sign(account, message: str) -> str:
    return "0x" + account.sign_message(encode_defunct(text=message)).signature.hex().removeprefix(
        "0x"
    )


async def challenge(http, path: str, network: str = "eip155:8453") -> dict:
    response = await http.post(f"{path}/verifiers/challenge", json={"network": network})
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def test_with_proof_required_only_the_wallets_own_signature_registers(platform, kit):
    tenant = await kit.new_tenant(
        platform, {"settings": {"access": {}, "security": {"agents": {"wallet_proof": "eip191"}}}}
    )
    owner, stranger = Account.create(), Account.create()
    agent = await tenant.agents().create({"name": "payer"})
    path = f"{tenant.agents_path()}/{agent.id}"
    async with tenant.http() as http:
        no_proof = await http.post(f"{path}/verifiers", json=wallet(owner.address))
        assert no_proof.status_code == 400
        assert no_proof.json()["fields"][0] == {
            "field": "credential.proof",
            "code": "required",
            "message": no_proof.json()["fields"][0]["message"],
        }

        issued = await challenge(http, path)
        assert issued["message"] == (
            f"AuthPI wallet verifier\nagent: {agent.id}\nnetwork: eip155:8453\n"
            f"nonce: {issued['nonce']}"
        )
        forged = wallet(
            owner.address, proof=sign(stranger, issued["message"]), nonce=issued["nonce"]
        )
        refused = await http.post(f"{path}/verifiers", json=forged)
        assert refused.status_code == 400
        assert refused.json()["fields"][0]["code"] == "invalid_signature"

        proven = wallet(owner.address, proof=sign(owner, issued["message"]), nonce=issued["nonce"])
        accepted = await http.post(f"{path}/verifiers", json=proven)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["data"]["credential"]["address"] == owner.address

        # The nonce is spent: the same proof cannot register again (after removal).
        await http.delete(f"{path}/verifiers/{accepted.json()['data']['id']}")
        replayed = await http.post(f"{path}/verifiers", json=proven)
        assert replayed.status_code == 400
        assert replayed.json()["fields"][0]["field"] == "credential.nonce"


async def test_a_challenge_binds_agent_and_network(platform, kit):
    tenant = await kit.new_tenant(platform)
    owner = Account.create()
    one = await tenant.agents().create({"name": "one"})
    two = await tenant.agents().create({"name": "two"})
    async with tenant.http() as http:
        issued = await challenge(http, f"{tenant.agents_path()}/{one.id}")
        signed = sign(owner, issued["message"])
        elsewhere = await http.post(
            f"{tenant.agents_path()}/{two.id}/verifiers",
            json=wallet(owner.address, proof=signed, nonce=issued["nonce"]),
        )
        assert elsewhere.status_code == 400  # signed for agent one, not two
        other_net = await http.post(
            f"{tenant.agents_path()}/{one.id}/verifiers",
            json=wallet(owner.address, network="eip155:1", proof=signed, nonce=issued["nonce"]),
        )
        assert other_net.status_code == 400
        for network in ("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "nope"):
            response = await http.post(
                f"{tenant.agents_path()}/{one.id}/verifiers/challenge", json={"network": network}
            )
            assert response.status_code == 400


async def test_a_proof_given_without_the_setting_is_still_checked(tenant):
    owner, stranger = Account.create(), Account.create()
    agent = await tenant.agents().create({"name": "payer"})
    path = f"{tenant.agents_path()}/{agent.id}"
    async with tenant.http() as http:
        issued = await challenge(http, path)
        bad = wallet(owner.address, proof=sign(stranger, issued["message"]), nonce=issued["nonce"])
        assert (await http.post(f"{path}/verifiers", json=bad)).status_code == 400
        good = wallet(owner.address, proof=sign(owner, issued["message"]), nonce=issued["nonce"])
        assert (await http.post(f"{path}/verifiers", json=good)).status_code == 201
        # Without the setting no proof is needed at all.
        plain = await http.post(f"{path}/verifiers", json=wallet(Account.create().address))
        assert plain.status_code == 201
