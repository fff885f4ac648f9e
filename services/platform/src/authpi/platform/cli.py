"""The `authpi` command: up, serve, migrate, bootstrap, replay, relay, dead-letters, kek,
streams, proto."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import msgspec

from authpi.config import Settings, from_env
from authpi.observability import configure_logging, get_logger

log = get_logger("authpi.cli")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="authpi", description="AuthPI identity platform")
    sub = parser.add_subparsers(dest="command", required=True)
    up_cmd = sub.add_parser("up", help="run the all-in-one platform")
    up_cmd.add_argument(
        "--distributed", action="store_true",
        help="every service its own process, a 3-node NATS cluster, a database role each",
    )  # fmt: skip
    serve = sub.add_parser("serve", help="run one service (distributed topology)")
    serve.add_argument(
        "service", choices=["gateway", "directory", "token", "agent", "billing", "webhook"]
    )
    boot = sub.add_parser("bootstrap", help="create (once) the first account and an API key")
    boot.add_argument("--json", action="store_true", help="print the bootstrap file as JSON")
    rep = sub.add_parser("replay", help="rebuild a projection from the event store")
    rep.add_argument("projection")
    relay = sub.add_parser("relay", help="run one service schema's relay alone")
    relay.add_argument("--service", required=True)
    dead = sub.add_parser("dead-letters", help="list or redrive rejected events")
    dead_sub = dead.add_subparsers(dest="action", required=True)
    dead_sub.add_parser("list", help="every dead letter, as JSON lines")
    redrive = dead_sub.add_parser("redrive", help="re-apply dead letters; delete those applied")
    redrive.add_argument("--consumer", help="only this consumer's (default: every consumer)")
    redrive.add_argument("--id", type=int, action="append", dest="ids", help="only these rows")
    kek = sub.add_parser("kek", help="key-encryption key maintenance")
    kek_sub = kek.add_subparsers(dest="action", required=True)
    kek_sub.add_parser("rotate", help="re-wrap every stored data key under the newest KEK")
    relay.add_argument("--schema", help="the event-store schema (default: <namespace>_<service>)")
    auth = sub.add_parser("nats-auth", help="generate NATS users and credentials (deployments)")
    auth.add_argument("--out", required=True, help="directory for the generated files")
    streams = sub.add_parser(
        "streams", help="declare the JetStream streams and KV buckets (as the admin)"
    )
    streams.add_argument(
        "--replicas", type=int, help="copies of each stream (3 in a NATS cluster; default: kept)"
    )
    sub.add_parser(
        "migrate",
        help="apply every migration and create the per-service database roles (as the owner)",
    )
    ints = sub.add_parser("integrators", help="NATS credentials to read an account's events")
    ints_sub = ints.add_subparsers(dest="action", required=True)
    ints_add = ints_sub.add_parser("add", help="a new credential (its password is shown once)")
    ints_add.add_argument("--account", required=True, help="acc_…")
    ints_add.add_argument("--name", default="", help="a label for the credential")
    ints_list = ints_sub.add_parser("list", help="credentials, as JSON lines (no passwords)")
    ints_list.add_argument("--account", help="only this account's")
    ints_list.add_argument("--revoked", action="store_true", help="revoked ones too")
    ints_revoke = ints_sub.add_parser("revoke", help="remove a credential at once")
    ints_revoke.add_argument("user", help="the credential's id (intc_…) or user (int_…)")
    ints_revoke.add_argument("--account", help="refuse unless it is this account's")
    ints_import = ints_sub.add_parser("import", help="import a former nats-integrators.json")
    ints_import.add_argument("file")
    proto = sub.add_parser("proto", help="generate or check proto/ contracts")
    mode = proto.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    settings = from_env()
    if args.command == "serve" and not os.environ.get("AUTHPI_IDP_WORKERS"):
        # One service per process (distributed topology): it scales by replicas, so it serves
        # in one process unless told otherwise; only `authpi up` takes one per core by default.
        settings = msgspec.structs.replace(settings, idp_workers=1)
    configure_logging(settings.log_format, settings.log_level)
    if args.command == "serve":
        from authpi.platform.modules import serving_problem

        problem = serving_problem(settings, args.service)
        if problem is not None:
            print(f"authpi serve {args.service}: {problem}", file=sys.stderr)
            sys.exit(2)
    if args.command == "proto":
        from authpi.platform.proto import run as proto_run

        sys.exit(proto_run(write=args.write))
    runner: dict[str, Any] = {
        "up": lambda: up_distributed(settings) if args.distributed else up(settings),
        "serve": lambda: up(settings, only=args.service),
        "bootstrap": lambda: bootstrap(settings, as_json=args.json),
        "replay": lambda: replay(settings, args.projection),
        "dead-letters": lambda: dead_letters(settings, args),
        "kek": lambda: kek_rotate(settings),
        "relay": lambda: relay_only(settings, args.service, args.schema),
        "nats-auth": lambda: nats_auth_files(settings, args.out),
        "streams": lambda: declare_streams(settings, args.replicas),
        "migrate": lambda: migrate_database(settings),
        "integrators": lambda: integrators(settings, args),
    }
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    from authpi.crypto.envelope import WrongKek

    try:
        sys.exit(asyncio.run(runner[args.command]()) or 0)
    except WrongKek as exc:  # a misconfigured KEK: say which, start nothing
        print(f"authpi {args.command}: {exc}", file=sys.stderr)
        sys.exit(1)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def up(settings: Settings, only: str | None = None) -> int:
    """`authpi up` (`only` None): the all-in-one process, every service with its Core API
    (AUTHPI_API_URL) and IdP API (AUTHPI_IDP_URL) ports.

    `authpi serve <only>`: one process of the distributed topology (host.Platform says which
    ports; several replicas of one service on one machine share them, SO_REUSEPORT):
    * `gateway`: the Core API port with all the gateway's layers (request ids, rate limits,
      authentication, payment gate, idempotency, read-your-writes), forwarding each request to
      the owning service (AUTHPI_SERVICE_URLS) with the principal signed; its caches and
      reactions. No IdP port.
    * `directory`, `agent`, `billing`, `webhook`: the service's Core API routes on its internal
      listener (AUTHPI_INTERNAL_URL), which answers the gateway's signed requests only; its
      relay, consumers and tasks.
    * `token`: the same, plus the IdP port (AUTHPI_IDP_URL) itself, keyinfo included: IdP
      traffic reaches the token process directly, with no proxy hop.
    Every process also serves the operations port (AUTHPI_OPS_URL: /healthz, /readyz,
    /metrics)."""
    from authpi.platform.host import Platform
    from authpi.platform.modules import serving_modules

    platform = Platform(settings, modules=serving_modules(only), reuse_port=only is not None)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    if not await _start_unless_stopped(platform, stop):
        return 0
    try:
        # Serving processes (`authpi serve`) never bootstrap: only `authpi up` may, once.
        creds = await _bootstrap_first_start(platform, settings) if only is None else None
        workers = f" ({settings.idp_workers} IdP processes)" if settings.idp_workers > 1 else ""
        print(f"AuthPI is up: {_served(platform)}{workers}", flush=True)
        if only is None:
            _print_bootstrap_note(settings, creds)
        if settings.webhooks_allow_insecure or settings.webhooks_allow_private:
            print(
                "WARNING: webhooks may target plain http and loopback/private addresses "
                "(AUTHPI_WEBHOOKS_ALLOW_INSECURE / AUTHPI_WEBHOOKS_ALLOW_PRIVATE): development "
                "only, never in production",
                flush=True,
            )
        if settings.sso_allow_insecure:
            print(
                "WARNING: organization SSO may use upstream IdPs over plain http "
                "(AUTHPI_SSO_ALLOW_INSECURE): development only, never in production",
                flush=True,
            )
        if platform.mail_sink is not None:
            print(
                f"Mail is captured, not delivered (AUTHPI_SMTP_URL is unset): "
                f"{platform.api_url}/dev/mail",
                flush=True,
            )
        await stop.wait()
    finally:
        await platform.stop()
    return 0


async def up_distributed(settings: Settings) -> int:
    from authpi.platform.distributed import Distributed

    run = Distributed(settings)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    starting = asyncio.create_task(run.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done():
        starting.result()
        names = ", ".join(run.children)
        print(
            f"AuthPI is up (distributed: {names}): Core API {settings.api_url}  "
            f"IdP API {settings.idp_url}  NATS {run.nats.url if run.nats else ''}",
            flush=True,
        )
        await stop.wait()
    else:
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
    await run.stop()
    return 0


def _served(platform: Any) -> str:
    names = {"api_url": "Core API", "internal_url": "internal", "idp_url": "IdP API"}
    return "  ".join(
        f"{label} {getattr(platform, attr)}"
        for attr, label in names.items()
        if attr in platform.served_ports
    )


async def _bootstrap_first_start(platform: Any, settings: Settings) -> dict[str, Any] | None:
    """`authpi up` on a database without an account creates it (the first `make run`). Any other
    start finds the account and mints nothing; `authpi serve` never gets here."""
    from authpi.platform.bootstrap import account_bootstrap, ensure_bootstrap

    path, content, created = await ensure_bootstrap(
        account_bootstrap(platform.parts), settings, platform.api_url, platform.idp_url
    )
    log.info("bootstrap.ready", file=str(path), created=created, file_kept=content is not None)
    return content


def _print_bootstrap_note(settings: Settings, creds: dict[str, Any] | None) -> None:
    path = settings.bootstrap_path
    if creds is not None:
        print(f"Bootstrap credentials (account id, API key id and secret): {path}", flush=True)
    else:
        print(
            "Already bootstrapped: the first API key was shown once and is not minted again; "
            "create keys through the Core API.",
            flush=True,
        )


async def _start_unless_stopped(platform: Any, stop: asyncio.Event) -> bool:
    """Start the platform; a SIGTERM/SIGINT while it starts (IdP workers warming up, say) stops
    it at once instead of after the start. False when stopped that way."""
    starting = asyncio.create_task(platform.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if starting.done():
        starting.result()
        from authpi.platform.serving import settle_heap

        settle_heap()
        return True
    starting.cancel()  # Platform.start stops everything it started on the way out
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return False


async def _connect_running(settings: Settings) -> Settings:
    runtime = settings.data_dir / "runtime.json"
    if settings.database_url and settings.nats_url:
        return settings
    if not runtime.exists():
        raise SystemExit(
            f"no running deployment found ({runtime} is missing); start it with `make run`"
        )
    info = json.loads(runtime.read_text())
    return msgspec.structs.replace(
        settings,
        database_url=settings.database_url or info["database_url"],
        nats_url=settings.nats_url or info["nats_url"],
        nats_credentials_file=settings.nats_credentials_file
        or _optional_path(info.get("nats_credentials_file")),
    )


def _optional_path(raw: str | None) -> Path | None:
    return Path(raw) if raw else None


async def bootstrap(settings: Settings, as_json: bool) -> int:
    """Create the first account and its API key, once per database. A bootstrapped database
    gets nothing new: the secret was shown (and written) once, by the run that created it.
    With --json the credentials are printed and not written to the data folder."""
    from authpi.platform.bootstrap import account_bootstrap, ensure_bootstrap
    from authpi.platform.host import Platform

    content: dict[str, Any] | None = None
    if settings.bootstrap_path.exists():
        content = json.loads(settings.bootstrap_path.read_text())
    else:
        target = await _connect_running(settings)
        platform = Platform(target, serve_http=False)
        await platform.prepare()
        try:
            # With --json the secret goes to stdout only: no plaintext copy on the pod's disk.
            _, content, _ = await ensure_bootstrap(
                account_bootstrap(platform.parts),
                settings,
                settings.api_url,
                settings.idp_url,
                write_file=not as_json,
            )
        finally:
            await platform.stop()
    if content is None:
        print(
            "already bootstrapped: the first API key is not minted again; "
            "create keys through the Core API",
            file=sys.stderr,
        )
        return 1
    if as_json:
        print(json.dumps(content, indent=2))
    else:
        print(f"Bootstrap credentials: {settings.bootstrap_path}")
    return 0


async def replay(settings: Settings, projection_name: str) -> int:
    from authpi.eventstore.replay import replay as run_replay
    from authpi.platform.host import Platform

    target = await _connect_running(settings)
    platform = Platform(target, serve_http=False)
    await platform.prepare()
    try:
        for parts in platform.parts:
            for projection in [*parts.projections, *parts.inline_projections]:
                if projection.name == projection_name:
                    sources = {m.name: f"{settings.namespace}_{m.name}" for m in platform.modules}
                    count = await run_replay(target.database_url or "", projection, sources)
                    print(f"replayed {count} events into {projection_name}")
                    return 0
        names = sorted(
            p.name
            for parts in platform.parts
            for p in [*parts.projections, *parts.inline_projections]
        )
        print(f"unknown projection {projection_name!r}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    finally:
        await platform.stop()


async def dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    """`list` prints every schema's dead letters (JSON lines, payload omitted); `redrive`
    re-applies them through their consumer's projection. Exit 1 when a redrive failed."""
    from authpi.eventstore.deadletters import DeadLetters
    from authpi.messaging.deadletters import redrive
    from authpi.platform.host import Platform

    target = await _connect_running(settings)
    platform = Platform(target, serve_http=False)
    await platform.prepare()
    try:
        assert platform.rt is not None
        pool = platform.rt.pool
        if args.action == "list":
            async with pool.connection() as conn:
                for module in platform.modules:
                    for row in await DeadLetters(platform.rt.schema(module.name)).list(conn):
                        out = msgspec.structs.asdict(row)
                        out.pop("payload")
                        out["recorded_at"] = row.recorded_at.isoformat()
                        print(json.dumps(out), flush=True)
            return 0
        failed = 0
        for parts in platform.parts:
            for projection in parts.projections:
                if args.consumer not in (None, projection.name):
                    continue
                result = await redrive(pool, projection, args.ids)
                for dead_id in result.redriven:
                    print(json.dumps({"id": dead_id, "consumer": projection.name, "ok": True}))
                for dead_id, error in result.failed.items():
                    print(json.dumps({"id": dead_id, "consumer": projection.name, "error": error}))
                failed += len(result.failed)
        return 1 if failed else 0
    finally:
        await platform.stop()


async def kek_rotate(settings: Settings) -> int:
    """Re-wrap the stored data keys under the newest configured KEK (the last one listed in
    AUTHPI_KEK / AUTHPI_KEK_FILE). A key no configured KEK opens stops it: exit 1, no change
    to that table."""
    from authpi.platform.host import Platform
    from authpi.platform.kek import rewrap_all

    target = await _connect_running(settings)
    platform = Platform(target, serve_http=False)
    await platform.prepare()
    try:
        assert platform.rt is not None
        services = [m.name for m in platform.modules]
        results = await rewrap_all(
            platform.rt.pool, platform.rt.kek, target.namespace, services, target.region
        )
        for result in results:
            print(json.dumps(msgspec.structs.asdict(result)), flush=True)
        print(json.dumps({"current_kek": platform.rt.kek.current_id}), flush=True)
        return 0
    finally:
        await platform.stop()


async def nats_auth_files(settings: Settings, out: str) -> int:
    """Users, permissions and per-deployment credentials for a NATS server that AuthPI does not
    start itself (compose, Kubernetes); existing passwords are kept. The integrators' users are
    rendered from the webhook service's view when AUTHPI_DATABASE_URL is set."""
    from authpi.messaging import auth as nats_auth

    integrators: dict[str, nats_auth.IntegratorCredential] | None = None
    if settings.database_url:
        import psycopg

        from authpi.webhook.public.integrators import active_credentials

        async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
            integrators = await active_credentials(conn, f"{settings.namespace}_webhook")
    if (Path(out) / nats_auth.INTEGRATORS_FILE).exists():
        print(
            f"{out}/{nats_auth.INTEGRATORS_FILE} is no longer read: import it once with "
            "`authpi integrators import FILE`",
            file=sys.stderr,
        )
    nats_auth.write_deployment(Path(out), settings.namespace, integrators)
    count = "no" if integrators is None else len(integrators)
    print(f"NATS users and credentials written to {out} ({count} integrator users)")
    return 0


async def integrators(settings: Settings, args: argparse.Namespace) -> int:
    """`authpi integrators add|list|revoke|import` (README "Integrator subscriptions"): events of
    the webhook service, written beside the running deployment; its embedded NATS server (if
    any) reloads its users when the view changes."""
    from authpi.errors import AuthpiError
    from authpi.platform.host import Platform
    from authpi.webhook.handlers.integrators import CLI, IntegratorCredentials
    from authpi.webhook.public.integrators import recipe

    target = await _connect_running(settings)
    platform = Platform(target, serve_http=False)
    await platform.prepare()
    try:
        creds: IntegratorCredentials = next(
            p.exports["integrators"] for p in platform.parts if "integrators" in p.exports
        )
        ns = settings.namespace
        if args.action == "list":
            for row in await creds.listed(args.account, revoked=args.revoked):
                print(json.dumps(recipe(row, None, ns)))
            return 0
        if args.action == "import":
            count = await creds.import_file(Path(args.file))
            print(f"imported {count} credentials from {args.file}", file=sys.stderr)
        elif args.action == "add":
            issued = await creds.issue(args.account, args.name, actor=CLI, trigger="system")
            print(json.dumps(recipe(issued.credential, issued.password, ns), indent=2))
            print("The password is shown once; store it now.", file=sys.stderr)
        else:
            await creds.revoke(args.user, account_id=args.account, actor=CLI, trigger="system")
    except AuthpiError as exc:
        raise SystemExit(f"authpi integrators {args.action}: {exc.description}") from None
    finally:
        await platform.stop()
    if settings.nats_url:
        note = (
            "With a NATS server of your own, render its users again with `authpi nats-auth "
            '--out DIR` and have it reload (deploy/README.md, "NATS users").'
        )
        print(note, file=sys.stderr)
    return 0


async def migrate_database(settings: Settings) -> int:
    """`authpi migrate`: a one-shot job as the database owner. Every schema's migrations, then
    one LOGIN role per service (`<namespace>_<service>`) with rights on its own schema only
    (platform/database.py), its password from AUTHPI_DB_PASSWORD_<SERVICE> when given."""
    import psycopg

    from authpi.platform import database
    from authpi.platform.modules import all_modules

    if not settings.database_url:
        raise SystemExit("authpi migrate needs AUTHPI_DATABASE_URL (connecting as the owner)")
    modules = all_modules()
    names = [m.name for m in modules]
    unknown = sorted(set(settings.database_passwords) - set(names))
    if unknown:
        raise SystemExit(
            f"authpi migrate: no service {', '.join(unknown)} (AUTHPI_DB_PASSWORD_<SERVICE> "
            f"takes one of {', '.join(names).upper()})"
        )
    ns, region = settings.namespace, settings.region
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        await conn.set_autocommit(True)
        applied = await database.migrate_all(conn, ns, region, modules)
        await database.ensure_roles(conn, ns, region, names, settings.database_passwords)
    roles = ", ".join(database.service_role(ns, n) for n in names)
    print(f"migrations applied: {len(applied)}; roles: {roles}", flush=True)
    return 0


async def declare_streams(settings: Settings, replicas: int | None = None) -> int:
    from authpi.messaging import auth as nats_auth
    from authpi.messaging.streams import connect, ensure_streams
    from authpi.token.caches.lockouts import declare_buckets

    if not settings.nats_url:
        raise SystemExit("authpi streams needs AUTHPI_NATS_URL")
    path = settings.nats_credentials_file
    nc = await connect(settings.nats_url, auth=nats_auth.load(path) if path else None)
    try:
        await ensure_streams(nc.jetstream(), settings.namespace, replicas=replicas)
        await declare_buckets(nc.jetstream(), settings.namespace, replicas)
    finally:
        await nc.close()
    return 0


async def relay_only(settings: Settings, service: str, schema: str | None = None) -> int:
    """One relay in its own process (the distributed topology, and the relay crash test)."""
    from authpi.eventstore.relay import Relay
    from authpi.messaging import auth as nats_auth
    from authpi.messaging.streams import connect, ensure_streams

    if not (settings.database_url and settings.nats_url):
        raise SystemExit("authpi relay needs AUTHPI_DATABASE_URL and AUTHPI_NATS_URL")
    path = settings.nats_credentials_file
    auth = nats_auth.load(path) if path else None
    if auth is None or nats_auth.ADMIN in auth.credentials:
        admin = await connect(settings.nats_url, auth=auth)
        await ensure_streams(admin.jetstream(), settings.namespace)
        await admin.close()
    nc = await connect(settings.nats_url, auth=auth, identity=nats_auth.relay_identity(service))
    js = nc.jetstream()
    stop = asyncio.Event()
    _stop_on_signals(stop)
    schema = schema or f"{settings.namespace}_{service}"
    relay = Relay(settings.database_url, schema, service, js, settings.namespace)
    try:
        await relay.run(stop)
    finally:
        await nc.close()
    return 0


if __name__ == "__main__":
    main()
