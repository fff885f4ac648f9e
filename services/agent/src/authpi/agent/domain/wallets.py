"""Wallet identifiers (platform.md 4.2, 4.3, appendix A): CAIP-2 networks and CAIP-10 accounts,
checked against the grammar and the namespace allowlist, and normalised. An `eip155` address is
`0x` + 40 hex, shown EIP-55 checksummed and looked up in lowercase; a `solana` address is base58
(32-44 characters), compared exactly. Every refusal is a 400 naming the field."""

from __future__ import annotations

import re

import msgspec
from eth_utils.address import to_checksum_address

from authpi.errors import FieldProblem, InvalidRequest

NAMESPACES = ("eip155", "solana")
_CAIP2 = re.compile(r"[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}")
_CAIP10 = re.compile(r"([-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}):([-.%a-zA-Z0-9]{1,128})")
_EIP155_REFERENCE = re.compile(r"[1-9][0-9]{0,31}")  # a decimal chain id
_EVM_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_BASE58 = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")


class Wallet(msgspec.Struct, frozen=True, kw_only=True):
    network: str  # CAIP-2
    address: str  # display form
    lookup: str  # lookup form: lowercase for eip155, exact otherwise

    @property
    def namespace(self) -> str:
        return self.network.split(":", 1)[0]

    @property
    def account_id(self) -> str:
        """CAIP-10 of the display form."""
        return f"{self.network}:{self.address}"


def bad(field: str, message: str, code: str = "invalid_value") -> InvalidRequest:
    problem = FieldProblem(field=field, code=code, message=f"{field} {message}")
    return InvalidRequest(problem.message, reason=f"wallet.{code}", fields=[problem])


def network(value: str, field: str = "credential.network") -> str:
    """A CAIP-2 chain id of a namespace the platform understands."""
    if not _CAIP2.fullmatch(value):
        raise bad(field, "must be a CAIP-2 chain id such as eip155:8453")
    namespace, reference = value.split(":", 1)
    if namespace not in NAMESPACES:
        raise bad(field, f"namespace must be one of {', '.join(NAMESPACES)}", "unsupported")
    if namespace == "eip155" and not _EIP155_REFERENCE.fullmatch(reference):
        raise bad(field, "must name an eip155 chain by its decimal chain id")
    return value


def wallet(network_id: str, address: str, field: str = "credential.address") -> Wallet:
    """A wallet on `network_id` (already checked by `network`)."""
    if network_id.startswith("eip155:"):
        return Wallet(network=network_id, address=_evm_display(address, field),
                      lookup=address.lower())  # fmt: skip
    if not _BASE58.fullmatch(address):
        raise bad(field, "must be a base58 address of 32 to 44 characters")
    return Wallet(network=network_id, address=address, lookup=address)


def account(value: str, field: str) -> Wallet:
    """A CAIP-10 account id (`eip155:8453:0x…`)."""
    match = _CAIP10.fullmatch(value)
    if match is None:
        raise bad(field, "must be a CAIP-10 account id such as eip155:8453:0x…")
    return wallet(network(match[1], field), match[2], field)


def _evm_display(address: str, field: str) -> str:
    if not _EVM_ADDRESS.fullmatch(address):
        raise bad(field, "must be 0x followed by 40 hexadecimal digits")
    checksummed = str(to_checksum_address(address))
    digits = address[2:]
    # Mixed case claims an EIP-55 checksum: a wrong one is a typo, not another address.
    if digits != digits.lower() and digits != digits.upper() and address != checksummed:
        raise bad(field, "has an invalid EIP-55 checksum", "invalid_checksum")
    return checksummed
