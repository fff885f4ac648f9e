"""The EIP-191 proof of control (platform.md 4.3 rule 4), checked against real signatures made
with eth-account."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from authpi.agent.domain import wallets
from authpi.agent.domain.proof import challenge_message, check_proof, signer_of
from authpi.errors import InvalidRequest

AGT = "agt_" + "c" * 32


def signed(account, message: str) -> str:
    return account.sign_message(encode_defunct(text=message)).signature.hex()


def test_the_challenge_text_is_the_specs():
    assert challenge_message(AGT, "eip155:8453", "n0nce") == (
        f"AuthPI wallet verifier\nagent: {AGT}\nnetwork: eip155:8453\nnonce: n0nce"
    )


def test_the_wallets_own_signature_proves_control():
    owner = Account.create()
    wallet = wallets.wallet("eip155:8453", owner.address.lower())
    signature = signed(owner, challenge_message(AGT, "eip155:8453", "n1"))
    check_proof(wallet, AGT, "n1", signature)
    check_proof(wallet, AGT, "n1", "0x" + signature.removeprefix("0x"))
    assert signer_of(challenge_message(AGT, "eip155:8453", "n1"), signature) == wallet.lookup


@pytest.mark.parametrize("case", ["stranger", "other_nonce", "other_agent", "other_network"])
def test_any_other_signature_is_refused(case):
    owner, stranger = Account.create(), Account.create()
    wallet = wallets.wallet("eip155:8453", owner.address)
    signer = stranger if case == "stranger" else owner
    agent_id = "agt_" + "d" * 32 if case == "other_agent" else AGT
    network = "eip155:1" if case == "other_network" else "eip155:8453"
    nonce = "n2" if case == "other_nonce" else "n1"
    signature = signed(signer, challenge_message(agent_id, network, nonce))
    with pytest.raises(InvalidRequest) as caught:
        check_proof(wallet, AGT, "n1", signature)
    assert caught.value.fields[0].code == "invalid_signature"


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "0x",
        "0x00",
        "0x" + "00" * 65,
        "0x" + "ff" * 65,
        "0x" + "11" * 64 + "05",
        "zz" * 65,
        "0x" + "1" * 131,
    ],
)
def test_malformed_signatures_are_refused_not_crashing(signature):
    assert signer_of("message", signature) is None
    wallet = wallets.wallet("eip155:1", Account.create().address)
    with pytest.raises(InvalidRequest):
        check_proof(wallet, AGT, "n", signature)


def test_solana_wallets_cannot_give_an_eip191_proof():
    wallet = wallets.wallet(
        "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"
    )
    with pytest.raises(InvalidRequest) as caught:
        check_proof(wallet, AGT, "n", "0x" + "11" * 65)
    assert caught.value.fields[0].code == "unsupported"
