"""First-start bootstrap: one account, its owner and an all-scopes API key, written to
`<data dir>/bootstrap.json` (0600). Never a second account (the directory reserves it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from authpi.config import Settings
from authpi.directory.handlers import Directory
from authpi.gateway.platform import write_private


async def ensure_bootstrap(
    directory: Directory, settings: Settings, api_url: str, idp_url: str
) -> tuple[Path, dict[str, Any], bool]:
    """Return (path, content, created). An existing readable file is kept as it is."""
    path = settings.bootstrap_path
    if path.exists():
        return path, json.loads(path.read_text()), False
    result = await directory.bootstrap()
    content = {
        "account_id": result.account_id,
        "api_key_id": result.api_key_id,
        "api_key_secret": result.api_key_secret,
        "api_url": api_url,
        "idp_url": idp_url,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, content)
    return path, content, True
