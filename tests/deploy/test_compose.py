"""docker-compose.yml runs the distributed topology of deploy/k8s on one machine: every command
it gives the image parses with the real `authpi` CLI, every AUTHPI_* variable is one the settings
read, and the pieces are wired as on Kubernetes (same commands, one database role and one NATS
identity per service, two token replicas behind the ingress)."""

from __future__ import annotations

import re
import shlex
from functools import cache
from typing import Any

import yaml

from tests.deploy.cli import ROOT, parse_command, unknown_variables
from tests.deploy.manifests import RENDERS, containers, is_authpi, render, workloads

SERVICES = ("gateway", "directory", "token", "agent", "billing", "webhook")
Service = dict[str, Any]


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def services() -> dict[str, Service]:
    return compose()["services"]


def authpi_services() -> dict[str, Service]:
    """The containers of the image built from deploy/Dockerfile (entrypoint `authpi`)."""
    return {
        name: svc
        for name, svc in services().items()
        if svc.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def command_lines(svc: Service) -> list[list[str]]:
    """The `authpi` argument lists a container runs: its command, or each `authpi …` step of
    a shell entrypoint."""
    entrypoint = svc.get("entrypoint")
    if entrypoint is None:
        return [[str(a) for a in svc["command"]]]
    assert entrypoint[:2] == ["sh", "-c"], entrypoint
    steps = re.split(r"&&|;|\bdo\b|\bdone\b", entrypoint[2])
    return [shlex.split(s)[1:] for s in steps if shlex.split(s)[:1] == ["authpi"]]


def env(svc: Service) -> dict[str, str]:
    return {k: str(v) for k, v in svc.get("environment", {}).items()}


def nats_subpath(svc: Service) -> str | None:
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict) and volume["target"] == "/etc/authpi/nats":
            return volume["volume"]["subpath"]
    return None


def test_commands_are_authpi_subcommands() -> None:
    refused = []
    for name, svc in authpi_services().items():
        for argv in command_lines(svc):
            try:
                parse_command(argv)
            except ValueError as exc:
                refused.append(f"{name}: {exc}")
    assert not refused, "\n".join(refused)


def test_variables_are_read_by_settings() -> None:
    used = {v: name for name, svc in authpi_services().items() for v in env(svc)}
    unknown = unknown_variables({v for v in used if v.startswith("AUTHPI_")})
    assert not unknown, "\n".join(f"{v}: set for {used[v]}, read by nothing" for v in unknown)


def test_same_commands_as_kubernetes() -> None:
    in_compose = {
        tuple(argv) for svc in authpi_services().values() for argv in command_lines(svc)
    } - {("nats-auth", "--out", "/auth")}  # Kubernetes: the operator runs it (Secrets)
    in_k8s = {
        tuple(str(a) for a in c["args"])
        for name in RENDERS
        for w in workloads(render(name))
        for c in containers(w)
        if is_authpi(c)
    }
    assert in_compose == in_k8s
    assert {("serve", s) for s in SERVICES} | {("migrate",), ("bootstrap", "--json")} <= in_compose


def test_each_service_has_its_own_credentials() -> None:
    """Own PostgreSQL role (its password is the one the migration sets), own NATS identities."""
    all_ = services()
    migrate = env(all_["migrate"])
    assert migrate["AUTHPI_DATABASE_URL"].startswith("postgresql://authpi@")
    assert "restart" not in all_["migrate"] and "restart" not in all_["streams"]
    prefix = "AUTHPI_DB_PASSWORD_"
    created = {
        k.removeprefix(prefix).lower(): v for k, v in migrate.items() if k.startswith(prefix)
    }
    assert sorted(created) == sorted(SERVICES)
    for name in SERVICES:
        own = env(all_[name])
        assert own["AUTHPI_DATABASE_URL"].startswith(f"postgresql://authpi_{name}@"), name
        assert own["PGPASSWORD"] == created[name], name
        beside = {k: v for k, v in own.items() if k.startswith(prefix)}
        gateway = {f"{prefix}GATEWAY": created["gateway"]}
        assert beside == (gateway if name == "token" else {}), name
        assert nats_subpath(all_[name]) == name
        assert all_[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    holders = [n for n, s in authpi_services().items() if nats_subpath(s) == "admin"]
    assert holders == ["streams"]
    made = command_lines(all_["nats-auth"])[0]
    script = all_["nats-auth"]["entrypoint"][2]
    folders = set(re.search(r"for s in ([a-z ]+);", script).group(1).split()) | {"ops"}  # type: ignore[union-attr]
    assert made == ["nats-auth", "--out", "/auth"]
    assert {nats_subpath(s) for s in authpi_services().values()} - {None} <= folders


def test_the_topology() -> None:
    """Three NATS nodes routed to each other; two token replicas; the ingress routes the Core
    API to the gateway and the IdP API to the token service, on the ports they listen on; the
    gateway reaches every service's internal listener; every dependency and volume exists."""
    all_ = services()
    nodes = sorted(n for n in all_ if re.fullmatch(r"nats-\d", n))
    assert nodes == ["nats-1", "nats-2", "nats-3"]
    servers = ",".join(f"nats://{n}:4222" for n in nodes)
    for svc in authpi_services().values():
        assert env(svc).get("AUTHPI_NATS_URL", servers) == servers
    assert all_["streams"]["command"] == ["streams", "--replicas", str(len(nodes))]
    for node in nodes:
        args = all_[node]["command"]
        routes = args[args.index("--routes") + 1].split(",")
        assert routes == [f"nats://{n}:6222" for n in nodes] and "-js" in args
        assert args[args.index("-n") + 1] == node
    assert all_["token"]["deploy"]["replicas"] == 2
    gateway = env(all_["gateway"])
    routes = dict(item.split("=", 1) for item in gateway["AUTHPI_SERVICE_URLS"].split(","))
    assert sorted(routes) == sorted(SERVICES[1:])
    for svc, url in routes.items():
        port = url.rsplit(":", 1)[1]
        assert url == f"http://{svc}:{port}"
        assert env(all_[svc])["AUTHPI_INTERNAL_URL"] == f"http://0.0.0.0:{port}"
    nginx = (ROOT / "deploy" / "compose" / "nginx.conf").read_text()
    listen = {
        "gateway": gateway["AUTHPI_API_LISTEN_URL"],
        "token": env(all_["token"])["AUTHPI_IDP_LISTEN_URL"],
    }
    for target, url in listen.items():
        assert f"http://{target}:{url.rsplit(':', 1)[1]};" in nginx
    ingress = all_["ingress"]
    assert ingress["ports"] == ["127.0.0.1:8000:8000", "127.0.0.1:8001:8001"]
    trusted = ingress["networks"]["default"]["ipv4_address"]
    assert all(env(all_[s])["AUTHPI_TRUSTED_PROXIES"] == trusted for s in SERVICES)
    volumes = set(compose()["volumes"])
    for name, svc in all_.items():
        assert set(svc.get("depends_on", {})) <= set(all_), name
        for volume in svc.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            assert source in volumes or source.startswith("./"), f"{name}: {source}"


def test_image_sets_only_known_variables() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r'^ENTRYPOINT \["authpi"\]$', dockerfile, re.M)
    env = re.search(r"^ENV (.*?)(?<!\\)\n", dockerfile, re.M | re.S)
    assert env is not None
    names = set(re.findall(r"\b(AUTHPI_[A-Z0-9_]+)=", env.group(1)))
    assert names and not unknown_variables(names)
