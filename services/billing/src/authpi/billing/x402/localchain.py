"""A local chain for development and tests: Anvil on a free port, the EIP-3009 test token
deployed on it ("USD Coin" / "2", like USDC on Base), and a funded wallet to pay with.
`make run` starts one when AUTHPI_BILLING_LOCAL_CHAIN is set: the chain's state is kept in the
data folder, the token deployed once, and the billing settings point at them (network
`eip155:31337`, the dev accounts of Anvil's well-known mnemonic as settlement key, treasury
and test payer: development only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

import msgspec
from eth_account import Account

from authpi.billing.x402.chain import Chain, Settler
from authpi.config import Settings
from authpi.embedded.anvil import DEV_KEYS, EmbeddedAnvil
from authpi.observability import get_logger

log = get_logger("authpi.billing.x402")

DEPLOYER_KEY, SETTLEMENT_KEY, TREASURY_KEY, PAYER_KEY = DEV_KEYS
PAYER_FUNDS = 1_000 * 10**6  # $1,000 of the test token
PAYER = str(Account.from_key(PAYER_KEY).address)


@dataclass
class LocalChain:
    anvil: EmbeddedAnvil
    token: str
    network: str
    settlement_key: str = SETTLEMENT_KEY
    pay_to: str = str(Account.from_key(TREASURY_KEY).address)

    @property
    def url(self) -> str:
        return self.anvil.url

    def settings(self, s: Settings) -> Settings:
        return msgspec.structs.replace(
            s, billing_rpc_url=self.url, billing_network=self.network, billing_asset=self.token,
            billing_asset_name="USD Coin", billing_asset_version="2",
            billing_pay_to=s.billing_pay_to or self.pay_to,
            billing_settlement_key=s.billing_settlement_key or self.settlement_key,
            billing_settlement_key_file=None if not s.billing_settlement_key else
            s.billing_settlement_key_file,
            billing_local_chain=False,  # started: processes given these settings use it
        )  # fmt: skip

    def describe(self, s: Settings) -> dict[str, str]:
        """What a developer needs to pay on this chain (`chain/local-chain.json`)."""
        return {
            "rpc_url": self.url, "network": self.network, "token": self.token,
            "token_name": s.billing_asset_name, "token_version": s.billing_asset_version,
            "treasury": s.billing_pay_to or "", "payer": PAYER, "payer_key": PAYER_KEY,
            "settlement_account": str(Account.from_key(
                s.billing_settlement_key or self.settlement_key).address),
        }  # fmt: skip


async def deploy_token(url: str, name: str = "USD Coin", version: str = "2") -> str:
    chain = Chain(url)
    try:
        return await Settler.from_key(chain, DEPLOYER_KEY).deploy_token(name, version)
    finally:
        await chain.aclose()


async def mint(url: str, token: str, to: str, value: int) -> None:
    chain = Chain(url)
    try:
        await Settler.from_key(chain, DEPLOYER_KEY).mint(token, to, value)
    finally:
        await chain.aclose()


async def start_local_chain(data_dir: Path | None, stack: contextlib.AsyncExitStack) -> LocalChain:
    """Anvil (state kept in `data_dir/chain` when given) with the token deployed and the dev
    payer funded; stopped by `stack`."""
    folder = data_dir / "chain" if data_dir is not None else None
    anvil = EmbeddedAnvil(
        state_file=folder / "anvil-state.json" if folder else None,
        log_file=folder / "anvil.log" if folder else None,
    )
    url = await asyncio.to_thread(anvil.start)
    stack.callback(anvil.stop)
    record = folder / "token.json" if folder else None
    token = await _known_token(url, record)
    if token is None:
        token = await deploy_token(url)
        await mint(url, token, PAYER, PAYER_FUNDS)
        if record is not None:
            record.write_text(json.dumps({"address": token}))
        log.info("chain.token_deployed", token=token, rpc_url=url)
    return LocalChain(anvil=anvil, token=token, network=f"eip155:{anvil.chain_id}")


async def _known_token(url: str, record: Path | None) -> str | None:
    if record is None or not record.exists():
        return None
    address = str(json.loads(record.read_text()).get("address", ""))
    chain = Chain(url)
    try:
        code = await chain.call("eth_getCode", [address, "latest"])
    finally:
        await chain.aclose()
    return address if code not in (None, "0x", "0x0") else None


async def use_local_chain(s: Settings, stack: contextlib.AsyncExitStack) -> Settings:
    """`make run` with AUTHPI_BILLING_LOCAL_CHAIN: start the local chain in the data folder and
    return the settings that point billing at it; say what was done (development only: every
    key used is one of Anvil's publicly known development keys)."""
    local = await start_local_chain(s.data_dir, stack)
    resolved = local.settings(s)
    described = local.describe(resolved)
    record = s.data_dir / "chain" / "local-chain.json"
    record.write_text(json.dumps(described, indent=2) + "\n")
    log.warning(
        "chain.local_started", **{k: v for k, v in described.items() if k != "payer_key"},
        payer_funds_μusd=PAYER_FUNDS, payer_key=PAYER_KEY, described_in=str(record),
        hint="development only: a local Anvil chain; the settlement, treasury and payer keys "
        "are Anvil's well-known development keys (public, never use them elsewhere); pay "
        "with the payer's key to top up an account",
    )  # fmt: skip
    return resolved
