"""Local verification of an `exact` EVM payment (platform.md 5.8, steps 1-6): the payment
matches a requirement this server issued, pays the right recipient the right value inside the
time window, and is signed by `from` for the token's EIP-712 domain. The signer is recovered
with eth-account; no curve code here. The domain's `name` and `version` are the requirement's
(this server's configuration), never the client's copy: signing with "USDC" for a token whose
domain is "USD Coin" recovers another address and is refused.

The on-chain steps (balance, nonce state, simulation, settlement) are the chain client's."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from authpi.billing.x402.wire import SCHEME, Payment, Refusal, Requirement, chain_id_of

if TYPE_CHECKING:  # eth-account is imported on first use: most processes never verify a payment
    from eth_account.messages import SignableMessage

# secp256k1's group order; signatures with s above half of it are malleable copies (EIP-2).
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# Settlement must land before validBefore: a payment expiring sooner than this is refused.
SAFETY_MARGIN_S = 6

TRANSFER_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


def typed_data(req: Requirement, payment: Payment) -> dict[str, Any]:
    auth = payment.authorization
    return {
        "types": TRANSFER_TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": req.name,
            "version": req.version,
            "chainId": chain_id_of(req.network),
            "verifyingContract": req.asset,
        },
        "message": {
            "from": auth.from_,
            "to": auth.to,
            "value": auth.value,
            "validAfter": auth.valid_after,
            "validBefore": auth.valid_before,
            "nonce": bytes.fromhex(auth.nonce[2:]),
        },
    }


TRANSFER_TYPEHASH = keccak(
    text="TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    "uint256 validBefore,bytes32 nonce)"
)
DOMAIN_TYPEHASH = keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


@lru_cache(maxsize=64)
def domain_separator(name: str, version: str, chain_id: int, contract: str) -> bytes:
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [DOMAIN_TYPEHASH, keccak(text=name), keccak(text=version), chain_id, contract],
        )
    )


def signable(req: Requirement, payment: Payment) -> SignableMessage:
    """EIP-712 message (EIP-191 version 0x01): `header` is the domain separator of `req`'s
    token, `body` the struct hash of the authorization (platform.md 5.8 step 6)."""
    from eth_account.messages import SignableMessage

    auth = payment.authorization
    struct_hash = keccak(
        encode(
            ["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"],
            [
                TRANSFER_TYPEHASH,
                auth.from_,
                auth.to,
                auth.value,
                auth.valid_after,
                auth.valid_before,
                bytes.fromhex(auth.nonce[2:]),
            ],
        )
    )
    header = domain_separator(req.name, req.version, chain_id_of(req.network), req.asset.lower())
    return SignableMessage(version=b"\x01", header=header, body=struct_hash)


def digest_of(message: SignableMessage) -> bytes:
    return keccak(b"\x19" + message.version + message.header + message.body)


def split_signature(signature: str) -> tuple[int, int, int]:
    raw = bytes.fromhex(signature[2:])
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    return (v + 27 if v in (0, 1) else v), r, s


def recover_signer(req: Requirement, payment: Payment) -> str:
    """The address that signed the payment's authorization for `req`'s domain (lowercase)."""
    v, r, s = split_signature(payment.signature)
    if v not in (27, 28) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        raise Refusal(
            "invalid_exact_evm_payload_signature",
            "the signature is malformed or malleable (v, r, s)",
            payer=payment.payer,
        )
    from eth_account import Account

    try:
        signer: str = Account.recover_message(signable(req, payment), vrs=(v, r, s))
    except Exception as exc:  # eth-keys raises several types for bad points
        raise Refusal(
            "invalid_exact_evm_payload_signature", "no signer can be recovered", payer=payment.payer
        ) from exc
    return signer.lower()


def matches(req: Requirement, accepted: dict[str, Any]) -> bool:
    """Step 2: the payment's copy of the requirement names our network, asset, payTo, amount."""
    try:
        return (
            accepted.get("network") == req.network
            and str(accepted.get("asset", "")).lower() == req.asset.lower()
            and str(accepted.get("payTo", "")).lower() == req.pay_to.lower()
            and int(str(accepted.get("amount"))) == req.amount
        )
    except ValueError:
        return False


def verify(
    payment: Payment, offered: list[Requirement], now: int, *, payer: str | None = None
) -> Requirement:
    """Steps 1-6 of platform.md 5.8, in order; the requirement the payment satisfies, or a
    Refusal with the spec's reason. `payer` (an address or CAIP-10 id) restricts who may pay."""
    who = payment.payer
    if payment.scheme != SCHEME:
        raise Refusal("unsupported_scheme", f"scheme {payment.scheme!r} is not offered", payer=who)
    on_network = [req for req in offered if req.network == payment.network]
    if not on_network:
        raise Refusal("invalid_network", f"network {payment.network} is not offered", payer=who)
    req = on_network[0]
    if payment.accepted is not None:
        found = [r for r in on_network if matches(r, payment.accepted)]
        if not found:
            raise Refusal(
                "invalid_payment_requirements",
                "the accepted requirement is not one this server issued",
                payer=who,
            )
        req = found[0]
    auth = payment.authorization
    if auth.to.lower() != req.pay_to.lower():
        raise Refusal(
            "invalid_exact_evm_payload_recipient_mismatch",
            "the authorization pays another recipient",
            payer=who,
        )
    if auth.value != req.amount:
        raise Refusal(
            "invalid_exact_evm_payload_authorization_value",
            f"the authorization's value must be {req.amount}",
            payer=who,
        )
    if auth.valid_after > now:
        raise Refusal(
            "invalid_exact_evm_payload_authorization_valid_after",
            "the authorization is not valid yet",
            payer=who,
        )
    if auth.valid_before < now + SAFETY_MARGIN_S:
        raise Refusal(
            "invalid_exact_evm_payload_authorization_valid_before",
            "the authorization expires too soon to settle",
            payer=who,
        )
    if auth.valid_before - now > req.max_timeout_seconds:
        raise Refusal(
            "invalid_exact_evm_payload_authorization_valid_before",
            f"the authorization must expire within {req.max_timeout_seconds} seconds",
            payer=who,
        )
    if recover_signer(req, payment) != auth.from_.lower():
        raise Refusal(
            "invalid_exact_evm_payload_signature",
            "the signature is not the payer's for this token's EIP-712 domain",
            payer=who,
        )
    if payer is not None and payer.rsplit(":", 1)[-1].lower() != auth.from_.lower():
        raise Refusal(
            "invalid_payload",
            "the payer is not the wallet this account's payment method allows",
            payer=who,
        )
    return req
