"""Builds the x402 side of the billing service from the settings: the facilitator (local, on
the JSON-RPC node, or an external URL), `Payments`, the facilitator service behind the `/x402`
routes and the recovery task. x402 is on when a treasury (`AUTHPI_BILLING_PAY_TO`) and either
an external facilitator or a chain (`AUTHPI_BILLING_RPC_URL`) with a settlement key are
configured (`make run` with AUTHPI_BILLING_LOCAL_CHAIN sets all of them); otherwise it is off,
and a warning names what is missing when only part of it is set."""

from __future__ import annotations

from dataclasses import dataclass, field

from authpi.billing.x402.api import FacilitatorService
from authpi.billing.x402.chain import Chain, Settler
from authpi.billing.x402.facilitator import Facilitator, LocalFacilitator, RemoteFacilitator
from authpi.billing.x402.payments import ChainConfig, MethodLookup, Payments, TopupLedger
from authpi.config import Settings
from authpi.observability import get_logger
from authpi.web.runtime import Runtime, Task

log = get_logger("authpi.billing.x402")


@dataclass
class X402Parts:
    payments: Payments | None = None
    facilitator: FacilitatorService | None = None
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


def missing(s: Settings) -> list[str]:
    """The settings x402 still needs, once any of them is set (empty: complete, or not asked
    for at all)."""
    asked = s.billing_rpc_url or s.billing_facilitator_url or s.billing_pay_to
    if not asked:
        return []
    out: list[str] = []
    if not s.billing_pay_to:
        out.append("AUTHPI_BILLING_PAY_TO")
    if not s.billing_facilitator_url:
        if not s.billing_rpc_url:
            out.append("AUTHPI_BILLING_RPC_URL (or AUTHPI_BILLING_FACILITATOR_URL)")
        if not (s.billing_settlement_key or s.billing_settlement_key_file):
            out.append("AUTHPI_BILLING_SETTLEMENT_KEY (or _FILE)")
    return out


def build_x402(rt: Runtime, ledger: TopupLedger, methods: MethodLookup) -> X402Parts:
    s = rt.settings
    config = chain_config(s)
    if lacking := missing(s):
        log.warning(
            "x402.not_configured", missing=lacking,
            hint="x402 top-ups are off: the 402 challenge offers nothing to pay and "
            "credits/topups answers billing.payments_unconfigured",
        )  # fmt: skip
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
        pause_after_settlement=s.billing_test_pause_after_settlement,
    )  # fmt: skip
    return X402Parts(
        payments=payments,
        facilitator=FacilitatorService(facilitator, config, rt.clock),
        tasks=[("billing:x402-recovery", payments.recovery_task)],
    )
