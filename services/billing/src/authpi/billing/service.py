"""The billing service as a process part (platform.md 5): the credit ledger of every account
(`exports["ledger"]`), its Core API routes (credits, usage, invoices, payment methods), the
metering of the batched facts (`billing-metering`) and the singleton task that closes usage hours
into ledger entries. x402 payments (`exports["payments"]`, platform.md 5.6-5.9) reach the routes
through the PaymentsPort and the gateway through the host's wiring."""

from __future__ import annotations

from pathlib import Path

from authpi.billing.api.routes import billing_router
from authpi.billing.domain.rates import load_rates
from authpi.billing.handlers.ledger import Ledger
from authpi.billing.handlers.metering import Metering
from authpi.billing.handlers.payments import PaymentsPort
from authpi.billing.reactions.lifecycle import LifecycleReaction
from authpi.billing.reactions.metering import MeteringReaction
from authpi.messaging.facts import FactProjection
from authpi.messaging.projection import Projection
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts, Task

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    settings = rt.settings
    rates = load_rates(settings.billing_rates, settings.billing_rates_file)
    ledger = Ledger(rt)
    port = PaymentsPort()
    metering = Metering(ledger, rates, grace_s=settings.billing_close_grace_s)
    schema = rt.schema("billing")
    facts: list[FactProjection] = []
    projections: list[Projection] = []
    tasks: list[tuple[str, Task]] = []
    if settings.billing_metering:
        facts.append(MeteringReaction(schema, rt.clock))
        projections.append(LifecycleReaction(schema, rt.clock))
        tasks.append(("billing:usage-closer", metering.run))
    return ServiceParts(
        name="billing",
        core_routes=[billing_router(ledger, port, rates)],
        inline_projections=ledger.views,
        projections=projections,
        fact_projections=facts,
        tasks=tasks,
        exports={"ledger": ledger, "metering": metering, "payments_port": port, "rates": rates},
    )


MODULE = ServiceModule(name="billing", migrations=MIGRATIONS, build=build)
