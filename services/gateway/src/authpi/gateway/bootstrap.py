"""First-start bootstrap: one account, its owner and an all-scopes API key, written to
`<data dir>/bootstrap.json` (0600). Decided by the database, never by the file: once the
deployment has its account, no start and no command mints another key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from authpi.config import Settings
from authpi.directory.handlers.accounts import Directory
from authpi.gateway.platform import write_private


async def ensure_bootstrap(
    directory: Directory,
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
