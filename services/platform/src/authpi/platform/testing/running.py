"""What the tests see of a running platform, all-in-one or distributed: its URLs and bootstrap
credentials (a module of its own, so that the helpers built on it need not import the plugin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec


class RunningPlatform(msgspec.Struct, kw_only=True):
    """The all-in-one platform as the e2e tests see it: URLs and the bootstrap credentials."""

    api_url: str
    idp_url: str
    ops_url: str  # /readyz and /metrics (loopback only)
    account_id: str
    api_key_id: str
    api_key_secret: str
    namespace: str
    dsn: str
    nats_url: str
    # The credentials file the platform's NATS connections use (None: no NATS authentication).
    nats_credentials: Path | None = None
    handle: Any = None  # the Platform object, for tests that need to reach inside
