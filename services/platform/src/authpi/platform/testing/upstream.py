"""An organization's upstream OpenID Provider for the SSO tests: the npm package oidc-provider,
started by `upstream_idp` as a node process on 127.0.0.1 (upstream_idp.mjs says how it behaves),
with the clients and accounts a test names; and `sso_config`, an organization's `sso` object.

Nothing here reaches inside the platform: the provider is an independent server, and the
platform talks to it over HTTP like to any organization's IdP."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("upstream_idp.mjs")
PASSWORD = "upstream passphrase 7"
START_TIMEOUT_S = 30.0


def sso_config(
    *,
    enabled: bool = True,
    issuer_url: str = "https://idp.example.com",
    client_id: str = "authpi",
    client_secret: str | None = "an upstream client secret",
    **extra: Any,
) -> dict[str, Any]:
    """An organization's `sso` object naming an upstream (core-api.md 3.12, 3.16)."""
    config: dict[str, Any] = {"enabled": enabled, "issuer_url": issuer_url, "client_id": client_id}
    if client_secret is not None:
        config["client_secret"] = client_secret
    return {**config, **extra}


def node_modules() -> Path:
    """Where `make venv` installed the npm packages (the venv's `npm/node_modules`)."""
    for root in (Path(sys.prefix) / "npm", Path.cwd() / ".venv" / "npm"):
        modules = root / "node_modules"
        if (modules / "oidc-provider").is_dir():
            return modules
    raise RuntimeError("oidc-provider is not installed: run `make venv` (it installs .venv/npm)")


@dataclass
class UpstreamClient:
    """A client registered at the upstream; `mode` makes its token endpoint misbehave
    (`tampered`, `nonce`, `audience`, `expired`: see upstream_idp.mjs)."""

    client_id: str
    client_secret: str
    mode: str = "good"


@dataclass
class UpstreamAccount:
    login: str
    email: str
    password: str = PASSWORD
    name: str | None = None
    email_verified: bool = True


@dataclass
class UpstreamIdp:
    issuer: str
    clients: dict[str, UpstreamClient] = field(default_factory=dict[str, UpstreamClient])
    log: Path | None = None


def _issuer_line(proc: subprocess.Popen[bytes], log: Path) -> str:
    """The first line the provider prints once it listens: {"issuer": ...}."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise RuntimeError(f"the upstream IdP did not start: {log.read_text()[-2000:]}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the upstream IdP exited: {log.read_text()[-2000:]}")
            line += chunk
    return str(json.loads(line.decode())["issuer"])


@contextmanager
def upstream_idp(
    workdir: Path,
    *,
    redirect_uris: list[str],
    clients: list[UpstreamClient],
    accounts: list[UpstreamAccount],
    open_password: str | None = PASSWORD,
) -> Iterator[UpstreamIdp]:
    """The provider, serving until the block ends; every client may redirect to `redirect_uris`.
    With `open_password`, any email address signs in with it (a verified account of that
    address), besides `accounts`."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "upstream-idp.json"
    config.write_text(
        json.dumps({
            "clients": [
                {"client_id": c.client_id, "client_secret": c.client_secret,
                 "redirect_uris": redirect_uris, "mode": c.mode}
                for c in clients
            ],
            "accounts": [
                {"login": a.login, "password": a.password, "email": a.email, "name": a.name,
                 "email_verified": a.email_verified}
                for a in accounts
            ],
            "open_password": open_password,
        })
    )  # fmt: skip
    log = workdir / "upstream-idp.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            ["node", str(SCRIPT), str(node_modules()), str(config)],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            issuer = _issuer_line(proc, log)
            yield UpstreamIdp(issuer=issuer, clients={c.client_id: c for c in clients}, log=log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
