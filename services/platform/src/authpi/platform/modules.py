"""Every service module the host runs, in start order, and the wiring between the parts of one
process (the only place where one service's export reaches another service)."""

from __future__ import annotations

from collections.abc import Sequence

from authpi.agent.service import MODULE as AGENT
from authpi.billing.service import MODULE as BILLING
from authpi.contracts.billing import Payments
from authpi.contracts.directory import InvitationAnswers, SsoDirectory, UserRegistry
from authpi.directory.service import MODULE as DIRECTORY
from authpi.gateway.service import KEYINFO
from authpi.gateway.service import MODULE as GATEWAY
from authpi.token.service import MODULE as TOKEN
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts
from authpi.webhook.service import MODULE as WEBHOOK


def all_modules() -> list[ServiceModule]:
    return [DIRECTORY, TOKEN, AGENT, BILLING, WEBHOOK, GATEWAY]


def serving_modules(service: str | None = None) -> list[ServiceModule]:
    """What one process runs. `authpi up` (None): every module, the all-in-one. `authpi serve
    gateway`: the gateway alone, forwarding every service's Core API routes to the service's own
    process. `authpi serve <service>`: that service alone; the token service with the gateway's
    keyinfo part, since the IdP port is the token process's (gateway.service `KEYINFO`)."""
    if service is None:
        return all_modules()
    chosen = [m for m in all_modules() if m.name == service]
    if not chosen:
        raise ValueError(f"no such service: {service}")
    return [*chosen, KEYINFO] if service == "token" else chosen


async def prepared(module: ServiceModule, rt: Runtime) -> ServiceParts:
    """The module's parts for a process that serves or writes: built, then prepared (the
    one-off I/O they need before their tasks run)."""
    parts = await module.build(rt)
    for step in parts.prepare:
        await step()
    return parts


def wire(parts: Sequence[ServiceParts]) -> None:
    """Connect the process's parts once all are built (the main process and every IdP worker):
    the token service's signup registry to the directory's UserRegistry, InvitationAnswers and
    SsoDirectory, and the billing service's x402 `Payments` (when it has one) to its top-up route
    and the gateway's 402 gate, in-process."""
    exports = {p.name: p.exports for p in parts}
    registry = exports.get("token", {}).get("registry")
    directory = exports.get("directory", {}).get("user_registry")
    if registry is not None and directory is not None:
        assert isinstance(directory, UserRegistry)
        answers = exports["directory"].get("invitations")
        assert answers is None or isinstance(answers, InvitationAnswers)
        registry.connect(directory, answers)
    sso = exports.get("directory", {}).get("sso_directory")
    if registry is not None and sso is not None:
        assert isinstance(sso, SsoDirectory)
        registry.connect_sso(sso)
    payments = exports.get("billing", {}).get("payments")
    if payments is not None:
        assert isinstance(payments, Payments)
        port = exports["billing"].get("payments_port")
        if port is not None:
            port.payments = payments
        gateway = exports.get("gateway", {}).get("gateway")
        if gateway is not None:
            gateway.payment_gate.payments = payments
