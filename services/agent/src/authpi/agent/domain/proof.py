"""Optional proof of control of an eip155 wallet (platform.md 4.3 rule 4): an EIP-191
`personal_sign` of the challenge text issued by `POST …/verifiers/challenge`. Message hashing and
secp256k1 public-key recovery are eth-account's (imported on first use: a process that never
checks a proof never loads it); nothing here does elliptic-curve arithmetic."""

from __future__ import annotations

import binascii
import re

from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError

from authpi.agent.domain.wallets import Wallet, bad

EIP191 = "eip191"
CHALLENGE_TTL_MS = 10 * 60 * 1000
_SIGNATURE = re.compile(r"(0x)?[0-9a-fA-F]{130}")  # r, s, v: 65 bytes


def challenge_message(agent_id: str, network: str, nonce: str) -> str:
    return f"AuthPI wallet verifier\nagent: {agent_id}\nnetwork: {network}\nnonce: {nonce}"


def signer_of(message: str, signature: str) -> str | None:
    """The lowercase address whose key made `signature` over `message`, or None when the
    signature cannot be a valid one."""
    if not _SIGNATURE.fullmatch(signature):
        return None
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        recovered = Account.recover_message(encode_defunct(text=message), signature=signature)
    except (BadSignature, ValidationError, ValueError, TypeError, binascii.Error):
        return None
    return str(recovered).lower()


def check_proof(wallet: Wallet, agent_id: str, nonce: str, signature: str) -> None:
    """Refuse (400) unless `signature` is the wallet's EIP-191 signature of the challenge."""
    if wallet.namespace != "eip155":
        raise bad("credential.proof", "is available for eip155 wallets only", "unsupported")
    message = challenge_message(agent_id, wallet.network, nonce)
    if signer_of(message, signature) != wallet.lookup:
        raise bad("credential.proof", "is not a signature of the challenge by this wallet",
                  "invalid_signature")  # fmt: skip
