"""What the webhook tests and benchmarks share over the public APIs: the settings a platform under
test runs with (http and loopback targets allowed, retries seconds apart), the admin SDK, webhook
registration that hands the receiver its secret, and event generators that go through the Core API
(each user created is one `user.created` event in the audit log)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Iterable
from typing import Any

from authpi_admin import AuthPIAdmin

from authpi.config import Settings, from_env
from authpi.testing.receiver import WebhookReceiver

# The deployment settings of the platforms under test, as environment variables (the documented
# interface): http://127.0.0.1 targets allowed, retries one second apart.
WEBHOOK_ENV = {
    "AUTHPI_WEBHOOKS_ALLOW_INSECURE": "true",
    "AUTHPI_WEBHOOKS_ALLOW_PRIVATE": "true",
    "AUTHPI_WEBHOOKS_RETRY_DELAYS": "1,1,1,1,1,1,1",
}


def webhook_overrides(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The `webhooks_*` Settings fields that `env` (default WEBHOOK_ENV) sets, for an in-process
    platform (`running_platform(..., **overrides)`)."""
    parsed = from_env({**WEBHOOK_ENV, **(env or {})})
    names = [f for f in Settings.__struct_fields__ if f.startswith("webhooks_")]
    return {name: getattr(parsed, name) for name in names}


def sdk(api_url: str, account_id: str, key: tuple[str, str]) -> AuthPIAdmin:
    return AuthPIAdmin(api_key=key, account_id=account_id, base_url=api_url, retries=False)


def secret_of(created: Any) -> str:
    """The one-time `whs_…` secret of a create (or regenerating update) response, as an SDK user
    reads it: the SDK keeps unknown fields only inside `auth`."""
    extra = created.auth.model_extra or {}
    value = extra.get("signature_secret_plain")
    assert isinstance(value, str) and value.startswith("whs_"), extra
    return value


async def register(
    admin: AuthPIAdmin,
    receiver: WebhookReceiver,
    *,
    events: Iterable[str] | None = ("user.created",),
    auth: str = "signature",
    name: str | None = None,
    issuer: str | None = None,
    **body: Any,
) -> Any:
    """Create a webhook to `receiver` through the SDK and give the receiver its secret (and bearer
    token), so it checks every request it gets. `issuer`: only that issuer's events (a `subjects`
    filter), so that a test sees its own events only. Returns the create response."""
    if issuer is not None:
        body.setdefault("subjects", [{"issuer_id": issuer}])
    payload: dict[str, Any] = {
        "name": name or f"hook-{secrets.token_hex(3)}",
        "url": receiver.url,
        "auth": {"type": auth},
        **body,
    }
    if events is not None:
        payload["events"] = list(events)
    created = await admin.webhooks.create(payload)  # type: ignore[arg-type]
    extra = created.auth.model_extra or {}
    if "signature" in auth:
        receiver.secrets = [secret_of(created)]
    if "bearer" in auth:
        receiver.bearer = extra["bearer_token_plain"]
    receiver.webhook_id = created.id
    return created


async def new_issuer(admin: AuthPIAdmin, name: str = "hooks") -> str:
    issuer = await admin.issuers.create({"name": f"{name}-{secrets.token_hex(4)}"})
    return issuer.id


async def create_users(
    admin: AuthPIAdmin, issuer_id: str, count: int, *, concurrency: int = 16, prefix: str = "u"
) -> list[str]:
    """`count` users through the Core API, `concurrency` requests at a time: their ids, in no
    particular order. Each is one `user.created` event."""
    users = admin.issuer(issuer_id).users
    made: list[str] = []
    todo = iter(range(count))
    tag = secrets.token_hex(4)

    async def worker() -> None:
        for i in todo:
            user = await users.create(
                {"username_type": "email", "username": f"{prefix}-{tag}-{i}@example.test"}
            )
            made.append(user.id)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return made


async def store_users(
    platform: Any,
    issuer_id: str,
    count: int,
    *,
    concurrency: int = 4,
    per_transaction: int = 100,
    account_id: str = "",
) -> set[str]:
    """`count` users through the directory's write path in this process (the steps and claims
    the Core API route's handler commits: one `user.created` each, carried to the audit log like
    any other), `per_transaction` users to a transaction and `concurrency` transactions at a
    time, without the HTTP and SDK cost of one call per user (the platform shares this
    process's one core with the test)."""
    from authpi.contracts.base import Meta
    from authpi.directory.api.users import UserCreate, new_user
    from authpi.platform.testing.tenants import ADMIN, part

    users = part(platform, "users")
    account = account_id or platform.account_id
    await users.require_issuer(account, issuer_id)
    meta = Meta(
        account_id=account, issuer_id=issuer_id, actor=ADMIN, region=users.rt.settings.region
    )
    tag = secrets.token_hex(4)
    todo = iter(range(count))
    made: set[str] = set()

    async def worker() -> None:
        while chunk := list(itertools.islice(todo, per_transaction)):
            steps, claims = zip(*(
                users.creation(issuer_id, new_user(UserCreate(
                    username_type="email", username=f"s-{tag}-{i}@example.test")))
                for i in chunk
            ), strict=True)  # fmt: skip
            await users.store.execute_all(list(steps), meta, list(claims))
            made.update(step.stream_id for step in steps)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
    return made


def user_of(received: Any) -> str:
    """The user a received `user.created` delivery is about (its event's subject)."""
    return received.json()["data"]["subject"]["user_id"]


async def all_deliveries(admin: AuthPIAdmin, webhook_id: str, **filters: Any) -> list[Any]:
    return [d async for d in admin.webhook(webhook_id).deliveries.list_all(limit=100, **filters)]
