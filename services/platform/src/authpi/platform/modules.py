"""Every service module the host runs, in start order, and the wiring between the parts of one
process (the only place where one service's export reaches another service)."""

from __future__ import annotations

from collections.abc import Sequence

from authpi.agent.service import MODULE as AGENT
from authpi.billing.service import MODULE as BILLING
from authpi.config import Settings
from authpi.contracts.billing import Payments
from authpi.contracts.directory import InvitationAnswers, SsoDirectory, UserRegistry
from authpi.directory.service import MODULE as DIRECTORY
from authpi.gateway.service import KEYINFO
from authpi.gateway.service import MODULE as GATEWAY
from authpi.token.service import MODULE as TOKEN
from authpi.web.calls import Calls, RemoteDirectory, RemotePayments
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


def serving_problem(settings: Settings, service: str | None) -> str | None:
    """What keeps `authpi serve <service>` from starting, said before anything starts: the
    gateway forwards every service's Core API routes, so AUTHPI_SERVICE_URLS names each one (and
    nothing else); a service listens for the gateway where AUTHPI_INTERNAL_URL says."""
    if service is None:
        return None
    services = {m.name for m in all_modules()} - {"gateway"}
    if service != "gateway":
        if settings.internal_url is None:
            return "AUTHPI_INTERNAL_URL is required: where this service listens for the gateway"
        return None
    urls = {name for name, _ in settings.service_urls}
    if urls - services:
        return f"AUTHPI_SERVICE_URLS: no such service: {', '.join(sorted(urls - services))}"
    if services - urls:
        missing = ", ".join(sorted(services - urls))
        return f"AUTHPI_SERVICE_URLS has no URL for: {missing} (the gateway forwards to each)"
    return None


async def prepared(module: ServiceModule, rt: Runtime) -> ServiceParts:
    """The module's parts for a process that serves or writes: built, then prepared (the
    one-off I/O they need before their tasks run)."""
    parts = await module.build(rt)
    for step in parts.prepare:
        await step()
    return parts


def wire(parts: Sequence[ServiceParts], calls: Calls | None = None) -> None:
    """Connect the process's parts once all are built (the main process and every IdP worker):
    the token service's signup registry to the directory's UserRegistry, InvitationAnswers and
    SsoDirectory, and the billing service's x402 `Payments` (when it has one) to its top-up route
    and the gateway's 402 gate, in-process. Those whose owner runs in another process (the
    distributed topology) are reached through `calls` (authpi.web.calls), when it reaches it."""
    exports = {p.name: p.exports for p in parts}
    registry = exports.get("token", {}).get("registry")
    if registry is not None and "directory" not in exports and calls is not None:
        if calls.reaches("user_registry"):
            remote = RemoteDirectory(calls)
            registry.connect(remote, remote)
            registry.connect_sso(remote)
    gateway = exports.get("gateway", {}).get("gateway")
    if gateway is not None and "billing" not in exports and calls is not None:
        if calls.reaches("payments"):
            gateway.payment_gate.payments = RemotePayments(calls)
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
