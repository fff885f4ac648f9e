"""Builds the x402 side of the billing service from the settings: the facilitator (local, on
the JSON-RPC node, or an external URL), `Payments`, the facilitator routes and the recovery
task. Without a treasury (`AUTHPI_BILLING_PAY_TO`) x402 is off: no challenge can be issued."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from authpi.billing.x402.api import FacilitatorService, facilitator_router
from authpi.billing.x402.chain import Chain, Settler
from authpi.billing.x402.facilitator import Facilitator, LocalFacilitator, RemoteFacilitator
from authpi.billing.x402.payments import ChainConfig, MethodLookup, Payments, TopupLedger
from authpi.config import Settings
from authpi.web.runtime import Runtime, Task


@dataclass
class X402Parts:
    payments: Payments | None = None
    routes: list[Any] = field(default_factory=list[Any])
    tasks: list[tuple[str, Task]] = field(default_factory=list[tuple[str, Task]])


def settlement_key(s: Settings) -> str | None:
    if s.billing_settlement_key:
        return s.billing_settlement_key
    if s.billing_settlement_key_file is not None:
        return s.billing_settlement_key_file.read_text().strip()
    return None


def chain_config(s: Settings) -> ChainConfig | None:
    if not s.billing_pay_to:
        return None
    return ChainConfig(
        network=s.billing_network, asset=s.billing_asset, asset_name=s.billing_asset_name,
        asset_version=s.billing_asset_version, pay_to=s.billing_pay_to,
        max_timeout_s=s.billing_max_timeout_s,
    )  # fmt: skip


def build_x402(rt: Runtime, ledger: TopupLedger, methods: MethodLookup) -> X402Parts:
    s = rt.settings
    config = chain_config(s)
    if config is None:
        return X402Parts()
    chain = Chain(s.billing_rpc_url) if s.billing_rpc_url else None
    facilitator: Facilitator
    if s.billing_facilitator_url:
        facilitator = RemoteFacilitator(s.billing_facilitator_url)
    else:
        key = settlement_key(s)
        if chain is None or key is None:
            return X402Parts()
        facilitator = LocalFacilitator(chain, Settler.from_key(chain, key))
    payments = Payments(
        pool=rt.pool, schema=rt.schema("billing"), clock=rt.clock, config=config,
        facilitator=facilitator, ledger=ledger, methods=methods, chain=chain,
    )  # fmt: skip
    service = FacilitatorService(facilitator, config, rt.clock)
    return X402Parts(
        payments=payments,
        routes=[facilitator_router(service)],
        tasks=[("billing:x402-recovery", payments.recovery_task)],
    )
