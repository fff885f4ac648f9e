"""NATS identities and their permissions (DESIGN.md 3: the bus is a trust boundary).

Each service has two identities: `relay-<service>`, the only one that may publish that
service's domain events (and only the subjects of the event types it owns), and `<service>`,
which reads the domain-event stream through its own durable consumers (and, for the services
whose caches follow the stream, ordered consumers) and publishes nothing else to it. A
deployment holds only its own service's two. `admin` declares the streams (start-up, `authpi
relay`, the test harness). Each identity has its own inbox prefix, so no one reads another's
replies.

The credentials file maps identity -> user and password (JSON, mode 0600). `make run` generates
it, with the matching nats-server configuration, into the data folder; deployments mount it
from a Secret (AUTHPI_NATS_CREDENTIALS_FILE). Without one, every connection is unauthenticated:
development against a NATS server without authorization only."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from authpi.contracts.subjects import events_stream, fact_subject, facts_stream, public_stream
from authpi.messaging.provenance import owned_types

ADMIN = "admin"
SERVICES = ("directory", "token", "agent", "billing", "webhook", "gateway")

# Durable consumers per service, on the domain-event stream unless listed under FACT_DURABLES.
# A durable that is missing here is refused by the server; the platform checks at start-up that
# every projection it runs is listed (see `check_durables`).
DURABLES: dict[str, tuple[str, ...]] = {
    "directory": ("directory-agents", "directory-billing"),
    "token": (
        "token-issuers",
        "token-clients",
        "token-agents",
        "token-users",
        "token-organizations",
        "token-invitations",
        "token-approval-mail",
    ),
    "agent": ("agent-issuers", "agent-memberships"),
    "billing": ("billing-lifecycle",),
    "webhook": ("webhook-audit",),
    "gateway": ("gateway-directory", "gateway-platform-keys", "gateway-billing"),
}
FACT_DURABLES: dict[str, tuple[str, ...]] = {
    "agent": ("agent-verifier-usage",),
    "billing": ("billing-metering",),
    "webhook": ("webhook-audit-facts",),
}
# Services whose caches follow the event stream with ordered (ephemeral) consumers
# (messaging.follower): the gateway's key and account caches, the token service's client and
# agent caches (and the token process's keyinfo). Every other service reads the bus only through
# its own durable consumers.
FOLLOWERS = ("gateway", "token")
# Services that publish the public stream (`<ns>.public.>`, the integrators' events).
PUBLIC_PUBLISHERS = ("webhook",)
# The fact types (contracts.facts tags, `<ns>.fact.<type>`) each service may publish: the token
# endpoint's grants, and each successful API-key check, made by the gateway and, in the
# distributed topology, by the token process's keyinfo (gateway.service KEYINFO), which runs as
# the token service's identity.
FACT_TYPES: dict[str, tuple[str, ...]] = {
    "token": (
        "machine.token.issued", "human.sign-in", "session.token-refreshed", "api-key.verified",
    ),
    "gateway": ("api-key.verified",),
}  # fmt: skip
# KV buckets per service, by suffix: the bucket is `<namespace>_<suffix>`.
KV_BUCKETS: dict[str, tuple[str, ...]] = {
    "token": ("client_lockouts", "credential_lockouts", "mail_throttle"),
}


class Credential(msgspec.Struct, frozen=True):
    user: str
    password: str


def relay_identity(service: str) -> str:
    return f"relay-{service}"


def identities(services: tuple[str, ...] = SERVICES) -> list[str]:
    return [ADMIN, *services, *(relay_identity(s) for s in services)]


def inbox_prefix(user: str) -> str:
    return f"_INBOX.{user}"


class NatsAuth(msgspec.Struct, frozen=True):
    """The credentials a process holds, by identity."""

    credentials: dict[str, Credential]

    def get(self, identity: str) -> Credential:
        try:
            return self.credentials[identity]
        except KeyError:
            raise RuntimeError(f"no NATS credentials for identity {identity!r}") from None

    def url_for(self, url: str, identity: str) -> str:
        """`url` with `identity`'s user and password in it (tools, tests, child processes)."""
        cred = self.get(identity)
        parts = urlsplit(url)
        netloc = f"{cred.user}:{cred.password}@{parts.netloc.rpartition('@')[2]}"
        return urlunsplit(parts._replace(netloc=netloc))


def load(path: Path) -> NatsAuth:
    raw = msgspec.json.decode(path.read_bytes(), type=dict[str, Credential])
    return NatsAuth(raw)


def write_private(path: Path, text: str) -> None:
    """Write `text` readable by the owner only (0600), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def generate(path: Path, services: tuple[str, ...] = SERVICES) -> NatsAuth:
    """Credentials for every identity, kept across restarts: only missing ones are added."""
    existing = load(path).credentials if path.exists() else {}
    creds = {
        name: existing.get(name) or Credential(user=name, password=secrets.token_urlsafe(32))
        for name in identities(services)
    }
    if creds != existing:
        write_private(path, msgspec.json.encode(creds).decode())
    return NatsAuth(creds)


def permissions(identity: str, namespace: str | None) -> dict[str, Any]:
    """The publish/subscribe allow lists of `identity`. `namespace` None grants every
    namespace (a shared test server, where each test has its own); then the names that embed
    the namespace (streams, buckets) become wildcards too."""
    if identity == ADMIN:
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    ns = namespace or "*"
    inbox = [f"{inbox_prefix(identity)}.>"]
    if identity.startswith("relay-"):
        service = identity.removeprefix("relay-")
        publish = [f"{ns}.evt.*.{t}" for t in owned_types(service)]
        # nats-server refuses an empty allow list as "allow everything": deny all instead.
        pub: dict[str, list[str]] = {"allow": publish} if publish else {"deny": [">"]}
        return {"publish": pub, "subscribe": {"allow": inbox}}
    # Read-your-writes barriers (messaging.sync): every process that serves or writes takes part.
    sync = [f"{ns}.sync.>"]
    return {
        "publish": {"allow": [*_service_publish(identity, namespace), *sync]},
        "subscribe": {"allow": [*inbox, *sync]},
    }


def _service_publish(service: str, namespace: str | None) -> list[str]:
    ns = namespace or "*"
    events = events_stream(namespace) if namespace else "*"
    facts = facts_stream(namespace) if namespace else "*"
    allow: list[str] = []
    if service in FOLLOWERS:
        allow += [
            # ordered (ephemeral) consumers of the caches, and their flow-control replies
            f"$JS.API.CONSUMER.CREATE.{events}",
            f"$JS.API.CONSUMER.INFO.{events}.*",
            f"$JS.FC.{events}.>",
        ]
    durables = [(events, d) for d in DURABLES.get(service, ())]
    durables += [(facts, d) for d in FACT_DURABLES.get(service, ())]
    for stream, durable in durables:
        allow += [
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
            f"$JS.API.CONSUMER.DELETE.{stream}.{durable}",
            f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        ]
    allow += [fact_subject(t, ns) for t in FACT_TYPES.get(service, ())]
    if service in PUBLIC_PUBLISHERS:
        allow.append(f"{ns}.public.>")
    for suffix in KV_BUCKETS.get(service, ()):
        bucket = f"{namespace.replace('.', '_')}_{suffix}" if namespace else "*"
        stream = f"KV_{bucket}" if namespace else "*"
        allow += [
            f"$KV.{bucket}.>",
            f"$JS.API.STREAM.INFO.{stream}",
            f"$JS.API.STREAM.CREATE.{stream}",
            f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}",
            f"$JS.API.DIRECT.GET.{stream}.>",
            f"$JS.API.CONSUMER.CREATE.{stream}",
            f"$JS.API.CONSUMER.INFO.{stream}.*",
            f"$JS.API.CONSUMER.DELETE.{stream}.*",
            f"$JS.FC.{stream}.>",
        ]
    return allow


# Integrators' credentials (issue 12): one NATS user per credential, each bound to one account's
# public subjects, with its password's bcrypt digest (nats-server verifies it). They are events of
# the webhook service (IntegratorCredential); the server's users are rendered from its view. The
# file below is where they were kept before: read only to import it once.
INTEGRATORS_FILE = "nats-integrators.json"


class IntegratorCredential(msgspec.Struct, frozen=True, kw_only=True):
    user: str  # also the name of its one durable consumer on the public stream
    account_id: str
    password_bcrypt: str
    name: str = ""
    created_at: int = 0  # Unix ms


def public_filter(account_id: str, namespace: str) -> str:
    return f"{namespace}.public.{account_id}.>"


def integrator_permissions(cred: IntegratorCredential, namespace: str | None) -> dict[str, Any]:
    """Only its own durable consumer, on the public stream, filtered to its own account's
    subjects: create it (nats-py names the filter in the subject:
    `$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`, and the server checks that it is the
    consumer's filter), read its info, delete it, pull from it and ack its messages, and its own
    inbox. No plain subscription to any event subject, no other consumer, no other filter."""
    ns = namespace or "*"
    stream = public_stream(namespace) if namespace else "*"
    name = cred.user
    allow = [
        f"$JS.API.CONSUMER.CREATE.{stream}.{name}.{public_filter(cred.account_id, ns)}",
        f"$JS.API.CONSUMER.INFO.{stream}.{name}",
        f"$JS.API.CONSUMER.DELETE.{stream}.{name}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}",
        f"$JS.ACK.{stream}.{name}.>",
    ]
    return {"publish": {"allow": allow}, "subscribe": {"allow": [f"{inbox_prefix(name)}.>"]}}


def load_integrators(path: Path) -> dict[str, IntegratorCredential]:
    """The former file of integrator credentials (user -> credential), to import it."""
    if not path.exists():
        return {}
    return msgspec.json.decode(path.read_bytes(), type=dict[str, IntegratorCredential])


def server_config(
    auth: NatsAuth,
    namespace: str | None,
    integrators: dict[str, IntegratorCredential] | None = None,
) -> str:
    """nats-server configuration (JSON is valid nats-server syntax): one user per identity, and
    one per integrator credential (its bcrypt hash as the password)."""
    users = [
        {"user": cred.user, "password": cred.password, "permissions": permissions(name, namespace)}
        for name, cred in auth.credentials.items()
    ]
    users += [
        {"user": c.user, "password": c.password_bcrypt,
         "permissions": integrator_permissions(c, namespace)}
        for c in (integrators or {}).values()
    ]  # fmt: skip
    return json.dumps({"authorization": {"users": users}}, indent=2)


def check_durables(service: str, names: list[str]) -> None:
    """Fail at start-up, with the reason, rather than with consumer timeouts later."""
    granted = {*DURABLES.get(service, ()), *FACT_DURABLES.get(service, ())}
    missing = [n for n in names if n not in granted]
    if missing:
        raise RuntimeError(
            f"durable consumers {missing} of {service} have no NATS permissions; "
            "add them to authpi.messaging.auth.DURABLES"
        )


def embedded(data_dir: Path, namespace: str | None) -> tuple[NatsAuth, Path, Path]:
    """Credentials and the nats-server configuration for an embedded server, in `data_dir`
    (both 0600): (credentials, credentials file, configuration file). It starts with the
    services' identities only; the webhook service then renders the integrators' users from its
    view (`write_embedded`) and has the server reload, before the host serves."""
    creds_path = data_dir / "nats-credentials.json"
    auth = generate(creds_path)
    config = data_dir / "nats.conf"
    write_private(config, server_config(auth, namespace))
    return auth, creds_path, config


def write_embedded(
    data_dir: Path, namespace: str | None, integrators: dict[str, IntegratorCredential]
) -> bool:
    """The embedded server's configuration with these integrator users; False (nothing
    written) when the file already says exactly that."""
    auth = generate(data_dir / "nats-credentials.json")
    config = data_dir / "nats.conf"
    text = server_config(auth, namespace, integrators)
    if config.exists() and config.read_text() == text:
        return False
    write_private(config, text)
    return True


def deployment_identities(service: str) -> list[str]:
    """What `authpi serve <service>` connects as: its own identity (its consumers, facts, KV
    buckets; also for a part of another service that it runs without that service's store, the
    token process's keyinfo) and its own relay's. No other service's: a process can neither
    publish another service's events nor read another service's durable consumers. Never
    `admin`: streams are declared apart, by `authpi streams`."""
    return [service, relay_identity(service)]


def write_deployment(
    out: Path, namespace: str, integrators: dict[str, IntegratorCredential] | None = None
) -> NatsAuth:
    """For compose and Kubernetes: the server's `authorization` block (nats-auth.conf, to
    include from nats.conf; with `integrators`, the active integrator credentials that
    `authpi nats-auth` reads from the webhook service's view), every credential
    (credentials.json, kept across runs), the stream declarer's (credentials-admin.json) and
    one file per deployment (credentials-<service>.json) holding only what that deployment
    connects as."""
    auth = generate(out / "credentials.json")
    users = json.loads(server_config(auth, namespace, integrators))["authorization"]
    write_private(out / "nats-auth.conf", "authorization: " + json.dumps(users, indent=2) + "\n")
    subsets = {"admin": [ADMIN], **{s: deployment_identities(s) for s in SERVICES}}
    for name, wanted in subsets.items():
        subset = {i: auth.credentials[i] for i in wanted}
        write_private(out / f"credentials-{name}.json", msgspec.json.encode(subset).decode())
    return auth
