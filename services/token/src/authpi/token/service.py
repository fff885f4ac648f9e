"""The token service as a process part. Its resources arrive with their issues; today it owns its
schema (event store, relay) so that the topology is complete from the start."""

from __future__ import annotations

from pathlib import Path

from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    return ServiceParts(name="token")


MODULE = ServiceModule(name="token", migrations=MIGRATIONS, build=build)
