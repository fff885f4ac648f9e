"""The `authpi` command: up, serve, bootstrap, replay, relay, proto."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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
    sub.add_parser("up", help="run the all-in-one platform")
    serve = sub.add_parser("serve", help="run one service (distributed topology)")
    serve.add_argument("service", choices=["directory", "token", "agent", "billing", "webhook"])
    boot = sub.add_parser("bootstrap", help="create (once) the first account and an API key")
    boot.add_argument("--json", action="store_true", help="print the bootstrap file as JSON")
    rep = sub.add_parser("replay", help="rebuild a projection from the event store")
    rep.add_argument("projection")
    relay = sub.add_parser("relay", help="run one service schema's relay alone")
    relay.add_argument("--service", required=True)
    relay.add_argument("--schema", help="the event-store schema (default: <namespace>_<service>)")
    auth = sub.add_parser("nats-auth", help="generate NATS users and credentials (deployments)")
    auth.add_argument("--out", required=True, help="directory for the generated files")
    sub.add_parser("streams", help="declare the JetStream streams (as the admin identity)")
    proto = sub.add_parser("proto", help="generate or check proto/ contracts")
    mode = proto.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)

    settings = from_env()
    configure_logging(settings.log_format, settings.log_level)
    if args.command == "proto":
        from authpi.gateway.proto import run as proto_run

        sys.exit(proto_run(write=args.write))
    runner: dict[str, Any] = {
        "up": lambda: up(settings),
        "serve": lambda: up(settings, only=args.service),
        "bootstrap": lambda: bootstrap(settings, as_json=args.json),
        "replay": lambda: replay(settings, args.projection),
        "relay": lambda: relay_only(settings, args.service, args.schema),
        "nats-auth": lambda: nats_auth_files(settings, args.out),
        "streams": lambda: declare_streams(settings),
    }
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    sys.exit(asyncio.run(runner[args.command]()) or 0)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def up(settings: Settings, only: str | None = None) -> int:
    from authpi.gateway.bootstrap import ensure_bootstrap
    from authpi.gateway.platform import Platform, all_modules

    always = ("directory", "gateway")  # the gateway fronts the Core API of every service
    modules = [m for m in all_modules() if only is None or m.name in (only, *always)]
    platform = Platform(settings, modules=modules)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    if not await _start_unless_stopped(platform, stop):
        return 0
    try:
        directory = next(p.exports["directory"] for p in platform.parts if "directory" in p.exports)
        path, _, created = await ensure_bootstrap(
            directory, settings, platform.api_url, platform.idp_url
        )
        log.info("bootstrap.ready", file=str(path), created=created)
        workers = f" ({settings.idp_workers} IdP processes)" if settings.idp_workers > 1 else ""
        print(
            f"AuthPI is up: Core API {platform.api_url}  IdP API {platform.idp_url}{workers}",
            flush=True,
        )
        print(f"Bootstrap credentials (account id, API key id and secret): {path}", flush=True)
        await stop.wait()
    finally:
        await platform.stop()
    return 0


async def _start_unless_stopped(platform: Any, stop: asyncio.Event) -> bool:
    """Start the platform; a SIGTERM/SIGINT while it starts (IdP workers warming up, say) stops
    it at once instead of after the start. False when stopped that way."""
    starting = asyncio.create_task(platform.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if starting.done():
        starting.result()
        from authpi.gateway.platform import settle_heap

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
    from authpi.gateway.bootstrap import ensure_bootstrap
    from authpi.gateway.platform import Platform

    if not settings.bootstrap_path.exists():
        target = await _connect_running(settings)
        platform = Platform(target, serve_http=False)
        await platform.prepare()
        try:
            directory = next(
                p.exports["directory"] for p in platform.parts if "directory" in p.exports
            )
            await ensure_bootstrap(directory, settings, settings.api_url, settings.idp_url)
        finally:
            await platform.stop()
    if as_json:
        print(settings.bootstrap_path.read_text())
    else:
        print(f"Bootstrap credentials: {settings.bootstrap_path}")
    return 0


async def replay(settings: Settings, projection_name: str) -> int:
    from authpi.eventstore.replay import replay as run_replay
    from authpi.gateway.platform import Platform

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


async def nats_auth_files(settings: Settings, out: str) -> int:
    """Users, permissions and per-deployment credentials for a NATS server that AuthPI does not
    start itself (compose, Kubernetes); existing passwords are kept."""
    from authpi.messaging import auth as nats_auth

    nats_auth.write_deployment(Path(out), settings.namespace)
    print(f"NATS users and credentials written to {out}")
    return 0


async def declare_streams(settings: Settings) -> int:
    from authpi.messaging import auth as nats_auth
    from authpi.messaging.streams import connect, ensure_streams

    if not settings.nats_url:
        raise SystemExit("authpi streams needs AUTHPI_NATS_URL")
    path = settings.nats_credentials_file
    nc = await connect(settings.nats_url, auth=nats_auth.load(path) if path else None)
    try:
        await ensure_streams(nc.jetstream(), settings.namespace)
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
