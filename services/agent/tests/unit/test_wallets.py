"""CAIP-2 / CAIP-10 grammar, the namespace allowlist and address normalisation (platform.md 4.2,
4.3, appendix A)."""

from __future__ import annotations

import pytest

from authpi.agent.domain import wallets
from authpi.errors import InvalidRequest
from services.agent.tests.factories import BASE, SOLANA

SOLANA_NET = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"


@pytest.mark.parametrize("address", [BASE, BASE.lower(), "0x" + BASE[2:].upper()])
def test_eip155_addresses_show_eip55_and_look_up_lowercase(address):
    found = wallets.wallet("eip155:8453", address)
    assert found.address == BASE and found.lookup == BASE.lower()
    assert found.account_id == f"eip155:8453:{BASE}"


def test_a_caip10_account_id_splits_into_network_and_address():
    found = wallets.account(f"eip155:84532:{BASE.lower()}", "wallet")
    assert (found.network, found.address) == ("eip155:84532", BASE)
    sol = wallets.account(f"{SOLANA_NET}:{SOLANA}", "wallet")
    assert sol.lookup == SOLANA == sol.address and sol.namespace == "solana"


@pytest.mark.parametrize(
    ("network", "code"),
    [
        ("eip155", "invalid_value"),
        ("eip155:", "invalid_value"),
        ("ei:1", "invalid_value"),
        ("EIP155:1", "invalid_value"),
        ("eip155:0x1", "invalid_value"),
        ("eip155:01", "invalid_value"),
        ("eip155:1\n", "invalid_value"),
        ("eip155:" + "1" * 33, "invalid_value"),
        ("cosmos:cosmoshub-4", "unsupported"),
        ("bip122:000000000019d6689c085ae165831e93", "unsupported"),
    ],
)
def test_bad_networks_are_400(network, code):
    with pytest.raises(InvalidRequest) as caught:
        wallets.network(network)
    assert caught.value.status == 400 and caught.value.fields[0].code == code


@pytest.mark.parametrize(
    ("network", "address", "code"),
    [
        ("eip155:1", BASE[:-1], "invalid_value"),
        ("eip155:1", BASE + "\n", "invalid_value"),
        ("eip155:1", "857b06519E91e3A54538791bDbb0E22373e36b66", "invalid_value"),
        ("eip155:1", BASE.replace("E9", "e9"), "invalid_checksum"),
        (SOLANA_NET, "0" + SOLANA[1:], "invalid_value"),
        (SOLANA_NET, SOLANA[:20], "invalid_value"),
    ],
)
def test_bad_addresses_are_400(network, address, code):
    with pytest.raises(InvalidRequest) as caught:
        wallets.wallet(network, address)
    assert caught.value.fields[0].code == code


@pytest.mark.parametrize(
    "value", ["eip155:1", f"eip155:1:{BASE}:x", f":1:{BASE}", f"eip155:1:{BASE} ", "ü:ü:ü"]
)
def test_bad_caip10_is_400(value):
    with pytest.raises(InvalidRequest):
        wallets.account(value, "wallet")
