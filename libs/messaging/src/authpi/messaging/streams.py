"""Stream declarations. The definitions are the JSON files in deploy/nats/ (templated by the
deployment namespace); code only binds by name."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from authpi.contracts.subjects import events_stream, facts_stream, public_stream
from authpi.messaging.auth import ADMIN, NatsAuth, inbox_prefix

DEFINITIONS = Path(str(resources.files("authpi.messaging"))).parents[4] / "deploy" / "nats"


def _load(name: str, namespace: str, replicas: int = 1) -> StreamConfig:
    raw = (DEFINITIONS / name).read_text()
    raw = raw.replace("{NS}_EVENTS", events_stream(namespace))
    raw = raw.replace("{NS}_FACTS", facts_stream(namespace))
    raw = raw.replace("{NS}_PUBLIC", public_stream(namespace)).replace("{ns}", namespace)
    spec = json.loads(raw)
    return StreamConfig(
        name=spec["name"],
        subjects=spec["subjects"],
        retention=RetentionPolicy(spec["retention"]),
        storage=StorageType(spec["storage"]),
        discard=DiscardPolicy(spec["discard"]),
        max_age=float(spec["max_age"]),
        duplicate_window=float(spec["duplicate_window"]),
        allow_direct=spec.get("allow_direct"),
        num_replicas=replicas,
    )


async def connect(
    url: str, name: str = "authpi", *, auth: NatsAuth | None = None, identity: str = ADMIN
) -> NATS:
    """Connect as `identity` when `auth` holds credentials; without `auth`, as `url` says (a
    server without authorization: development only)."""
    options: dict[str, Any] = {}
    # Several servers (a cluster), comma-separated: the client tries them in turn.
    servers = [u.strip() for u in url.split(",") if u.strip()]
    if auth is not None:
        cred = auth.get(identity)
        servers = [_without_user(u) for u in servers]
        options = {"user": cred.user, "password": cred.password}
        options["inbox_prefix"] = inbox_prefix(identity)
    # nats.connect forwards untyped **options to Client.connect, which types reconnect_time_wait
    # as int although it takes seconds as a float.
    return await nats.connect(  # pyright: ignore[reportUnknownMemberType]
        servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        allow_reconnect=True,
        **options,
    )


def _without_user(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def jetstream(nc: NATS) -> JetStreamContext:
    """The JetStream context of `nc`, with default options."""
    return nc.jetstream()  # pyright: ignore[reportUnknownMemberType]  # untyped **opts


async def ensure_streams(
    js: JetStreamContext, namespace: str, *, replicas: int | None = None
) -> None:
    """Declare (or update) the streams. `replicas`: copies of each in a NATS cluster (3 there);
    None keeps an existing stream's count (a single server's start never scales a cluster's
    streams down) and declares a new one with 1."""
    for file in ("events-stream.json", "facts-stream.json", "public-stream.json"):
        config = _load(file, namespace, replicas or 1)
        assert config.name is not None  # _load always names the stream
        # update_stream and add_stream take untyped **params besides the config (none passed).
        try:
            info = await js.stream_info(config.name)
            if replicas is None:
                config.num_replicas = info.config.num_replicas
            await js.update_stream(config)  # pyright: ignore[reportUnknownMemberType]
        except NotFoundError:
            await js.add_stream(config)  # pyright: ignore[reportUnknownMemberType]
