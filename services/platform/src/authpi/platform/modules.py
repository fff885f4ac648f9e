"""Every service module the host runs, in start order."""

from __future__ import annotations

from authpi.agent.service import MODULE as AGENT
from authpi.billing.service import MODULE as BILLING
from authpi.directory.service import MODULE as DIRECTORY
from authpi.gateway.service import MODULE as GATEWAY
from authpi.token.service import MODULE as TOKEN
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts
from authpi.webhook.service import MODULE as WEBHOOK


def all_modules() -> list[ServiceModule]:
    return [DIRECTORY, TOKEN, AGENT, BILLING, WEBHOOK, GATEWAY]


async def prepared(module: ServiceModule, rt: Runtime) -> ServiceParts:
    """The module's parts for a process that serves or writes: built, then prepared (the
    one-off I/O they need before their tasks run)."""
    parts = await module.build(rt)
    for step in parts.prepare:
        await step()
    return parts
