"""First-start bootstrap: one account, its owner and an all-scopes API key, written to
`<data dir>/bootstrap.json` (0600). Decided by the database, never by the file: once the
deployment has its account, no start and no command mints another key."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from authpi.config import Settings
from authpi.platform.files import write_private
from authpi.web.runtime import ServiceParts


class FirstAccount(Protocol):
    """The deployment's first account and its all-scopes API key, as just created."""

    @property
    def account_id(self) -> str: ...

    @property
    def api_key_id(self) -> str: ...

    @property
    def api_key_secret(self) -> str: ...


@runtime_checkable
class AccountBootstrap(Protocol):
    """What bootstrap needs of the directory (its `directory` export satisfies it)."""

    async def bootstrap(self) -> FirstAccount | None:
        """Create the first account and key, once; None when the deployment already has it."""
        ...

    async def bootstrapped_account(self) -> str | None:
        """The id of the account the bootstrap created, if any."""
        ...


def account_bootstrap(parts: Sequence[ServiceParts]) -> AccountBootstrap:
    """The directory's side of bootstrap among a process's service parts."""
    directory: AccountBootstrap = next(
        p.exports["directory"] for p in parts if "directory" in p.exports
    )
    return directory


async def ensure_bootstrap(
    directory: AccountBootstrap,
    settings: Settings,
    api_url: str,
    idp_url: str,
    *,
    write_file: bool = True,
) -> tuple[Path, dict[str, Any] | None, bool]:
    """Return (path, content, created). Bootstraps only a database without an account, and
    writes the file unless told not to (`authpi bootstrap --json` only prints the secret). On a
    bootstrapped one, content is the file when it belongs to that account, else None: the
    secret was shown once, and a lost file is replaced with a key made through the API."""
    path = settings.bootstrap_path
    result = await directory.bootstrap()
    if result is None:
        return path, _existing(path, await directory.bootstrapped_account()), False
    content = {
        "account_id": result.account_id,
        "api_key_id": result.api_key_id,
        "api_key_secret": result.api_key_secret,
        "api_url": api_url,
        "idp_url": idp_url,
    }
    if write_file:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, content)
    return path, content, True


def _existing(path: Path, account_id: str | None) -> dict[str, Any] | None:
    try:
        content: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content if content.get("account_id") == account_id else None
