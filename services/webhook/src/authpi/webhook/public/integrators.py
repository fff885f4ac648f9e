"""Integrator credentials (issue 12): per-account NATS users that read that account's public
events from the `<NS>_PUBLIC` stream, and nothing else (messaging.auth.integrator_permissions).

They are NATS server configuration, like the services' own NATS identities: kept in the data
folder (`nats-integrators.json`, mode 0600) as bcrypt hashes, which nats-server verifies itself;
the password is shown once, by `authpi integrators add`. After each change the embedded server's
configuration is written again and the server reloads it (SIGHUP): a revoked credential's
connections are closed at once. A deployment with its own NATS server generates the same
authorization block with `authpi nats-auth --out <dir>` from the file in that directory."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import bcrypt
import msgspec

from authpi.config import Settings
from authpi.contracts.subjects import public_stream
from authpi.embedded.servers import reload_nats
from authpi.messaging import auth as nats_auth
from authpi.messaging.auth import IntegratorCredential, public_filter

_ACCOUNT = re.compile(r"^acc_[A-Za-z0-9]{1,64}$")
BCRYPT_COST = 11


def integrators_file(settings: Settings) -> Path:
    return settings.data_dir / nats_auth.INTEGRATORS_FILE


def new_user() -> str:
    """`int_` + 16 random lowercase hex: a subject token and a durable consumer name."""
    return "int_" + secrets.token_hex(8)


def add(
    settings: Settings, account_id: str, name: str, now_ms: int
) -> tuple[IntegratorCredential, str]:
    """A new credential of `account_id`, and its password (never stored in clear)."""
    if not _ACCOUNT.match(account_id):
        raise ValueError(f"{account_id!r} is not an account id (acc_…)")
    password = secrets.token_urlsafe(32)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
    cred = IntegratorCredential(user=new_user(), account_id=account_id, password_bcrypt=hashed,
                                name=name, created_at=now_ms)  # fmt: skip
    path = integrators_file(settings)
    creds = nats_auth.load_integrators(path)
    creds[cred.user] = cred
    nats_auth.save_integrators(path, creds)
    return cred, password


def listed(settings: Settings, account_id: str | None = None) -> list[IntegratorCredential]:
    creds = nats_auth.load_integrators(integrators_file(settings)).values()
    return sorted((c for c in creds if account_id in (None, c.account_id)),
                  key=lambda c: c.created_at)  # fmt: skip


def revoke(settings: Settings, user: str, account_id: str | None = None) -> bool:
    path = integrators_file(settings)
    creds = nats_auth.load_integrators(path)
    cred = creds.get(user)
    if cred is None or account_id not in (None, cred.account_id):
        return False
    del creds[user]
    nats_auth.save_integrators(path, creds)
    return True


def apply(settings: Settings) -> bool:
    """Write the embedded server's configuration again and have it reload; False when no
    embedded server runs in the data folder (it reads the file when it starts)."""
    if settings.nats_url:
        return False
    nats_auth.embedded(settings.data_dir, settings.namespace)
    return reload_nats(settings.data_dir / "nats")


def recipe(cred: IntegratorCredential, password: str | None, namespace: str) -> dict[str, Any]:
    """What the integrator needs to consume (README "Integrator subscriptions")."""
    out = msgspec.structs.asdict(cred)
    del out["password_bcrypt"]
    if password is not None:
        out["password"] = password
    out.update(
        stream=public_stream(namespace), consumer=cred.user,
        filter_subject=public_filter(cred.account_id, namespace),
        inbox_prefix=nats_auth.inbox_prefix(cred.user),
    )  # fmt: skip
    return out
