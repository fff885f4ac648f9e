"""The development keys the local chain uses are Anvil's own: the accounts its public mnemonic
derives (and funds), in order."""

from __future__ import annotations

from eth_account import Account

from authpi.embedded.anvil import DEV_KEYS, DEV_MNEMONIC


def test_dev_keys_are_the_accounts_of_anvils_mnemonic() -> None:
    Account.enable_unaudited_hdwallet_features()
    derived = [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        for i in range(len(DEV_KEYS))
    ]
    assert [Account.from_key(k).address for k in DEV_KEYS] == [a.address for a in derived]
    assert derived[2].address == "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
