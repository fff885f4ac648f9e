"""Local verification of x402 `exact` EVM payments (platform.md 5.8): the spec's test vector,
the "USD Coin" domain-name trap, and each refusal with its spec reason."""

from __future__ import annotations

import os
from typing import Any

import pytest
from eth_account import Account

from authpi.billing.x402.verify import digest_of, recover_signer, signable, typed_data, verify
from authpi.billing.x402.wire import (
    Payment,
    Refusal,
    Requirement,
    decode_header,
    encode_header,
    read_payment,
)

VECTOR_REQ = Requirement(
    network="eip155:84532",
    asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    pay_to="0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
    amount=10000,
    name="USDC",
    version="2",
    max_timeout_seconds=300,
)
VECTOR_AUTH = {
    "from": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
    "to": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
    "value": "10000",
    "validAfter": "1740672089",
    "validBefore": "1740672154",
    "nonce": "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480",
}
VECTOR_SIGNATURE = (
    "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377"
    "d6da8dbbf5836e9bd15092f9ecab05ded3d6293af148b571c"
)
VECTOR_NOW = 1740672100


def vector_payment(**changes: Any) -> Payment:
    document = {
        "x402Version": 2,
        "accepted": VECTOR_REQ.v2(),
        "payload": {"signature": VECTOR_SIGNATURE, "authorization": VECTOR_AUTH},
    }
    document.update(changes)
    return read_payment(document)


def test_spec_vector_hashes_and_signer() -> None:
    payment = vector_payment()
    message = signable(VECTOR_REQ, payment)
    assert (
        message.header.hex() == "71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818"
    )
    assert message.body.hex() == "49ad644555c7bdf3ea4fc022a4940ae5589b230b1dde0065c5504fa19bbe39a4"
    assert digest_of(message).hex() == (
        "f256992871671abcb27ff92885a7afa46218724e5fc0bac35d050115aa1d22e6"
    )
    assert recover_signer(VECTOR_REQ, payment) == "0x857b06519e91e3a54538791bdbb0e22373e36b66"
    assert verify(payment, [VECTOR_REQ], VECTOR_NOW) == VECTOR_REQ


def test_usd_coin_domain_name_trap() -> None:
    """The same data under the domain name "USD Coin" recovers another address: the name must
    come from the requirement's `extra`, and a mismatch is refused as a bad signature."""
    payment = vector_payment()
    trapped = Requirement(**{**_fields(VECTOR_REQ), "name": "USD Coin"})
    signer = recover_signer(trapped, payment)
    assert signer != "0x857b06519e91e3a54538791bdbb0e22373e36b66"
    # The client's accepted copy still says "USDC"; the server's own domain is what counts.
    with pytest.raises(Refusal) as caught:
        verify(payment, [trapped], VECTOR_NOW)
    assert caught.value.reason == "invalid_exact_evm_payload_signature"


def _fields(req: Requirement) -> dict[str, Any]:
    return {f: getattr(req, f) for f in req.__struct_fields__}


WALLET = Account.from_key("0x" + "11" * 32)
OTHER = Account.from_key("0x" + "22" * 32)
NOW = 1_800_000_000
REQ = Requirement(
    network="eip155:31337",
    asset="0x5FbDB2315678afecb367f032d93F642f64180aa3",
    pay_to="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    amount=1_000_000,
    name="USD Coin",
    version="2",
)


def signed(
    *,
    version: int = 2,
    signer: Any = WALLET,
    req: Requirement = REQ,
    domain_name: str | None = None,
    **auth_changes: Any,
) -> dict[str, Any]:
    auth: dict[str, Any] = {
        "from": WALLET.address,
        "to": req.pay_to,
        "value": str(req.amount),
        "validAfter": str(NOW - 60),
        "validBefore": str(NOW + 120),
        "nonce": "0x" + os.urandom(32).hex(),
    }
    auth.update(auth_changes)
    unsigned = read_payment(
        {"x402Version": 2, "accepted": req.v2(),
         "payload": {"signature": "0x" + "00" * 65, "authorization": auth}}
    )  # fmt: skip
    domain_req = Requirement(**{**_fields(req), "name": domain_name or req.name})
    data = typed_data(domain_req, unsigned)
    signature = "0x" + signer.sign_typed_data(full_message=data).signature.hex().removeprefix("0x")
    payload = {"signature": signature, "authorization": auth}
    if version == 1:
        return {"x402Version": 1, "scheme": "exact", "network": req.network, "payload": payload}
    return {"x402Version": 2, "accepted": req.v2(), "payload": payload}


def refusal(document: dict[str, Any], *, payer: str | None = None, now: int = NOW) -> str:
    with pytest.raises(Refusal) as caught:
        verify(read_payment(document), [REQ], now, payer=payer)
    return caught.value.reason


def test_a_good_payment_of_either_version_verifies() -> None:
    assert verify(read_payment(signed()), [REQ], NOW) == REQ
    assert verify(read_payment(signed(version=1)), [REQ], NOW) == REQ
    restricted = f"eip155:31337:{WALLET.address}"
    assert verify(read_payment(signed()), [REQ], NOW, payer=restricted) == REQ


def test_header_round_trip() -> None:
    document = signed()
    assert (
        read_payment(decode_header(encode_header(document))).signature
        == (document["payload"]["signature"])
    )


def test_each_refusal_has_its_spec_reason() -> None:
    assert refusal({**signed(), "x402Version": 3}) == "invalid_x402_version"
    v1 = signed(version=1)
    assert refusal({**v1, "scheme": "upto"}) == "unsupported_scheme"
    assert refusal({**v1, "network": "eip155:8453"}) == "invalid_network"
    wrong_asset = {**signed(), "accepted": {**REQ.v2(), "asset": "0x" + "ab" * 20}}
    assert refusal(wrong_asset) == "invalid_payment_requirements"
    wrong_amount = {**signed(), "accepted": {**REQ.v2(), "amount": "5"}}
    assert refusal(wrong_amount) == "invalid_payment_requirements"
    assert refusal(signed(to=OTHER.address)) == "invalid_exact_evm_payload_recipient_mismatch"
    assert refusal(signed(value="999999")) == "invalid_exact_evm_payload_authorization_value"
    assert refusal(signed(validAfter=str(NOW + 5))) == (
        "invalid_exact_evm_payload_authorization_valid_after"
    )
    assert refusal(signed(validBefore=str(NOW - 1))) == (
        "invalid_exact_evm_payload_authorization_valid_before"
    )
    assert refusal(signed(validBefore=str(NOW + 3))) == (
        "invalid_exact_evm_payload_authorization_valid_before"
    )  # inside the settlement safety margin
    assert refusal(signed(validBefore=str(NOW + 301))) == (
        "invalid_exact_evm_payload_authorization_valid_before"
    )  # beyond maxTimeoutSeconds
    assert refusal(signed(signer=OTHER)) == "invalid_exact_evm_payload_signature"
    assert refusal(signed(domain_name="USDC")) == "invalid_exact_evm_payload_signature"
    assert refusal(signed(), payer=f"eip155:31337:{OTHER.address}") == "invalid_payload"


def test_malleable_and_malformed_signatures_are_refused() -> None:
    document = signed()
    raw = bytes.fromhex(document["payload"]["signature"][2:])
    s = int.from_bytes(raw[32:64], "big")
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    flipped = raw[:32] + (n - s).to_bytes(32, "big") + bytes([55 - raw[64]])
    malleable = {**document, "payload": {**document["payload"], "signature": "0x" + flipped.hex()}}
    assert refusal(malleable) == "invalid_exact_evm_payload_signature"
    for bad in ("0x12", "nope"):
        broken = {**document, "payload": {**document["payload"], "signature": bad}}
        with pytest.raises(Refusal) as caught:
            read_payment(broken)
        assert (caught.value.reason, caught.value.status) == ("invalid_payload", 400)
    with pytest.raises(Refusal) as caught:
        decode_header("%%% not base64 %%%")
    assert caught.value.reason == "invalid_payload"


def test_v_of_zero_or_one_is_accepted() -> None:
    document = signed()
    raw = bytearray(bytes.fromhex(document["payload"]["signature"][2:]))
    raw[64] -= 27
    low_v = {**document, "payload": {**document["payload"], "signature": "0x" + raw.hex()}}
    assert verify(read_payment(low_v), [REQ], NOW) == REQ
