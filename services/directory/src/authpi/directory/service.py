"""The directory service as a process part: accounts, issuers, clients, users, organizations,
API keys (Core API resources)."""

from __future__ import annotations

from pathlib import Path

from authpi.directory.api.me import get_me
from authpi.directory.handlers import Directory
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    directory = Directory(rt)
    return ServiceParts(
        name="directory",
        core_routes=[get_me],
        inline_projections=[directory.accounts_view, directory.api_keys_view, directory.users_view],
        exports={"directory": directory},
    )


MODULE = ServiceModule(name="directory", migrations=MIGRATIONS, build=build)
