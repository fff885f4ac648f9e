"""deploy/k8s renders with `kubectl kustomize`, every object is valid for Kubernetes (strict
schemas of kubernetes-validate; CloudNativePG's Cluster, a custom resource with no schema there,
by its required fields), and the objects fit together: selectors, references, ports, commands
and settings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import kubernetes_validate
import kubernetes_validate.utils
import pytest

from tests.deploy.cli import parse_command, unknown_variables
from tests.deploy.manifests import (
    RENDERS,
    Doc,
    containers,
    example_secrets,
    is_authpi,
    named,
    pod_labels,
    pod_spec,
    render,
    selected,
    workloads,
)

K8S_VERSION = "1.30"  # the oldest Kubernetes the manifests support (preStop `sleep`)
SERVICES = ("gateway", "directory", "token", "agent", "billing", "webhook")
BEHIND_GATEWAY = ("directory", "token", "agent", "billing", "webhook")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")


def _cnpg_cluster(doc: Doc, objects: tuple[Doc, ...]) -> list[str]:
    """The fields of postgresql.cnpg.io/v1 Cluster the operator requires, and what AuthPI
    relies on: the owner's Secret, and the read-write Service as PGHOST."""
    spec, name = doc.get("spec", {}), doc["metadata"].get("name")
    errors = []
    if not name or not isinstance(spec.get("instances"), int) or spec["instances"] < 1:
        errors.append("Cluster needs metadata.name and spec.instances >= 1")
    if not QUANTITY.match(str(spec.get("storage", {}).get("size", ""))):
        errors.append("Cluster needs spec.storage.size as a quantity")
    initdb = spec.get("bootstrap", {}).get("initdb", {})
    secret = named(objects, "Secret").get(initdb.get("secret", {}).get("name", ""))
    if not (initdb.get("database") and initdb.get("owner")):
        errors.append("Cluster needs bootstrap.initdb.database and owner")
    if secret is None or secret.get("type") != "kubernetes.io/basic-auth":
        errors.append("Cluster's initdb.secret must name a basic-auth Secret")
    elif secret["stringData"]["username"] != initdb["owner"]:
        errors.append("Cluster's initdb.secret must hold the owner's username")
    config = named(objects, "ConfigMap")["authpi-config"]["data"]
    if config["PGHOST"] != f"{name}-rw" or config["PGDATABASE"] != initdb.get("database"):
        errors.append("authpi-config PGHOST/PGDATABASE must be the Cluster's rw Service and db")
    return errors


CUSTOM = {("postgresql.cnpg.io/v1", "Cluster"): _cnpg_cluster}


def _objects(name: str) -> tuple[Doc, ...]:
    """A render plus the Secrets the operator creates (examples/secrets.yaml has their shape)."""
    return render(name) + example_secrets()


@pytest.fixture(scope="module")
def schemas() -> Iterator[None]:
    """kubernetes-validate reads its schema files again for every object; read each once."""
    read = cache(kubernetes_validate.utils.schema_contents)
    with mock.patch.object(kubernetes_validate.utils, "schema_contents", read):
        yield


@cache
def _schema_errors(text: str) -> str | None:
    try:
        kubernetes_validate.validate(json.loads(text), K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{'.'.join(map(str, exc.path))}: {exc.message}"
    return None


@pytest.mark.parametrize("name", RENDERS)
def test_every_object_is_valid(name: str, schemas: None) -> None:
    docs = render(name)
    errors = []
    for doc in (*docs, *example_secrets()):
        where = f"{doc['kind']}/{doc['metadata'].get('name')}"
        check = CUSTOM.get((doc["apiVersion"], doc["kind"]))
        if check is not None:
            errors += [f"{where}: {e}" for e in check(doc, _objects(name))]
            continue
        error = _schema_errors(json.dumps(doc, sort_keys=True))
        if error is not None:
            errors.append(f"{where}: {error}")
        if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != "authpi":
            errors.append(f"{where}: not in the authpi namespace")
    assert not errors, "\n".join(errors)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "StatefulSet", "Job", "NetworkPolicy", "Ingress"} <= kinds


def test_the_topology() -> None:
    """One Deployment per service, the NATS cluster of three, HPAs for the gateway and the token
    service, a PodDisruptionBudget for every Deployment and for NATS, and the one-shot Jobs."""
    for name in RENDERS:
        docs = render(name)
        deployments = named(docs, "Deployment")
        assert sorted(deployments) == sorted(SERVICES)
        scaled = named(docs, "HorizontalPodAutoscaler").values()
        assert sorted(h["spec"]["scaleTargetRef"]["name"] for h in scaled) == ["gateway", "token"]
        budgets = named(docs, "PodDisruptionBudget").values()
        for workload in (*deployments.values(), named(docs, "StatefulSet")["nats"]):
            assert any(selected(docs, b["spec"]["selector"]) == [workload] for b in budgets)
        nats = named(docs, "StatefulSet")["nats"]
        assert nats["spec"]["replicas"] == 3
        config = named(docs, "ConfigMap")["nats-config"]["data"]["nats.conf"]
        routes = re.findall(r"nats://nats-(\d)\.nats-headless:6222", config)
        assert routes == ["0", "1", "2"] and "jetstream" in config
        assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
        jobs = {j: pod_spec(d)["containers"][0]["args"] for j, d in named(docs, "Job").items()}
        assert jobs == {
            "authpi-migrate": ["migrate"],
            "authpi-streams": ["streams", "--replicas", str(nats["spec"]["replicas"])],
        }
    production = named(render("overlays/production"), "Deployment")
    assert all(d["spec"].get("replicas", 2) >= 2 for d in production.values())


@pytest.mark.parametrize("name", RENDERS)
def test_selectors_and_references_resolve(name: str) -> None:
    docs, objects = render(name), _objects(name)
    secrets, configs = named(objects, "Secret"), named(objects, "ConfigMap")
    errors: list[str] = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            errors.append(message)

    for svc in named(docs, "Service").values():
        pods = selected(docs, {"matchLabels": svc["spec"]["selector"]})
        need(bool(pods), f"Service {svc['metadata']['name']} selects no pods")
        names = {p["name"] for w in pods for c in containers(w) for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            need(
                not isinstance(target, str) or target in names,
                f"Service {svc['metadata']['name']}: no container port named {target}",
            )
    for workload in workloads(docs):
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        if "selector" in workload["spec"]:
            need(matches_own(workload), f"{where}: selector misses its own pod labels")
        errors += [f"{where}: {e}" for e in _pod_references(workload, secrets, configs)]
    for hpa in named(docs, "HorizontalPodAutoscaler").values():
        target = hpa["spec"]["scaleTargetRef"]
        need(target["name"] in named(docs, target["kind"]), f"HPA {target['name']}: no target")
    for pdb in named(docs, "PodDisruptionBudget").values():
        need(bool(selected(docs, pdb["spec"]["selector"])), f"PDB {pdb['metadata']['name']}")
    for ingress in named(docs, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                svc = named(docs, "Service").get(backend["name"])
                ports = {p["name"] for p in svc["spec"]["ports"]} if svc else set()
                need(backend["port"]["name"] in ports, f"Ingress backend {backend} is missing")
    errors += _network_policies(docs)
    assert not errors, "\n".join(errors)


def matches_own(workload: Doc) -> bool:
    labels = pod_labels(workload)
    return all(labels.get(k) == v for k, v in workload["spec"]["selector"]["matchLabels"].items())


def _pod_references(workload: Doc, secrets: dict[str, Doc], configs: dict[str, Doc]) -> list[str]:
    """Secrets and ConfigMaps a pod names exist and hold the keys it reads; $(VAR) references
    in env values name a variable defined before them; probes name a container port."""
    errors = []

    def keys(kind: str, name: str) -> set[str] | None:
        found = (secrets if kind == "secret" else configs).get(name)
        if found is None:
            return None
        return set(found.get("stringData", {})) | set(found.get("data", {}))

    for volume in pod_spec(workload).get("volumes", []):
        for kind, field in (("secret", "secretName"), ("configMap", "name")):
            if kind in volume:
                have = keys(kind.lower(), volume[kind][field])
                wanted = {i["key"] for i in volume[kind].get("items", [])}
                if have is None or not wanted <= have:
                    errors.append(f"volume {volume['name']}: {volume[kind][field]} {wanted}")
    for container in containers(workload):
        defined: set[str] = set()
        for source in container.get("envFrom", []):
            kind = "secret" if "secretRef" in source else "configmap"
            ref = source.get("secretRef") or source["configMapRef"]
            have = keys(kind, ref["name"])
            if have is None:
                errors.append(f"{container['name']}: envFrom {ref['name']} does not exist")
            defined |= have or set()
        for var in container.get("env", []):
            for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", var.get("value", "")):
                if ref not in defined:
                    errors.append(f"{container['name']}: {var['name']} uses undefined $({ref})")
            source = var.get("valueFrom", {})
            for kind, field in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
                if field in source:
                    have = keys(kind, source[field]["name"])
                    if have is None or source[field]["key"] not in have:
                        errors.append(f"{container['name']}: {var['name']} -> {source[field]}")
            defined.add(var["name"])
        ports = {p["name"] for p in container.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            port = container.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str) and port not in ports:
                errors.append(f"{container['name']}: {probe} port {port} is not declared")
    return errors


def _network_policies(docs: tuple[Doc, ...]) -> list[str]:
    """Every policy applies to pods that exist, every in-namespace peer selects pods that exist,
    and every port a policy admits is one its pods listen on (for pods defined here)."""
    errors = []
    for policy in named(docs, "NetworkPolicy").values():
        name, spec = policy["metadata"]["name"], policy["spec"]
        targets = selected(docs, spec["podSelector"])
        if not targets:
            errors.append(f"NetworkPolicy {name} selects no pods")
        own = all(t["kind"] != "Cluster" for t in targets)
        listening = {
            p["containerPort"]
            for w in targets
            if own
            for c in containers(w)
            for p in c.get("ports", [])
        }
        for rule in spec.get("ingress", []):
            for peer in rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    if not selected(docs, peer["podSelector"]):
                        errors.append(f"NetworkPolicy {name}: a peer selects no pods")
            for port in rule.get("ports", []):
                if own and port["port"] not in listening:
                    errors.append(f"NetworkPolicy {name}: nothing listens on {port['port']}")
        for rule in spec.get("egress", []):
            for peer in rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    peers = selected(docs, peer["podSelector"])
                    if not peers:
                        errors.append(f"NetworkPolicy {name}: an egress peer selects no pods")
    return errors


@pytest.mark.parametrize("name", RENDERS)
def test_pods_run_unprivileged(name: str) -> None:
    for workload in workloads(render(name)):
        pod = pod_spec(workload)
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod.get("automountServiceAccountToken") is False, where
        for container in containers(workload):
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert container["resources"]["requests"], where
            assert "memory" in container["resources"]["limits"], where
        if workload["kind"] in ("Deployment", "StatefulSet"):
            for container in pod["containers"]:
                assert container["readinessProbe"] and container["livenessProbe"], where


def test_each_service_has_its_own_credentials() -> None:
    """Least privilege: each Deployment connects as its own PostgreSQL role with its own Secret
    (the token service also as the gateway's, for the gateway's keyinfo part it runs), the
    migration sets exactly those roles' passwords from the same Secrets, and each Deployment
    mounts only its own NATS identities (the admin identity only the stream Job)."""
    for name in RENDERS:
        docs = render(name)
        migrate = pod_spec(named(docs, "Job")["authpi-migrate"])["containers"][0]
        passwords = {
            v["name"]: v["valueFrom"]["secretKeyRef"]["name"]
            for v in migrate["env"]
            if v["name"].startswith("AUTHPI_DB_PASSWORD_")
        }
        assert passwords == {f"AUTHPI_DB_PASSWORD_{s.upper()}": f"authpi-db-{s}" for s in SERVICES}
        for svc, deployment in named(docs, "Deployment").items():
            container = pod_spec(deployment)["containers"][0]
            env = {v["name"]: v for v in container["env"]}
            assert env["AUTHPI_DATABASE_URL"]["value"].startswith(f"postgresql://authpi_{svc}@")
            assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == f"authpi-db-{svc}"
            beside = {
                v["name"]: v["valueFrom"]["secretKeyRef"]["name"]
                for v in container["env"]
                if v["name"].startswith("AUTHPI_DB_PASSWORD_")
            }
            assert beside == (
                {"AUTHPI_DB_PASSWORD_GATEWAY": "authpi-db-gateway"} if svc == "token" else {}
            )
            secrets = {
                v["secret"]["secretName"] for v in pod_spec(deployment)["volumes"] if "secret" in v
            }
            assert secrets == {"authpi-kek", f"authpi-nats-{svc}"}, svc
        admin = [
            w["metadata"]["name"]
            for w in workloads(docs)
            for v in pod_spec(w).get("volumes", [])
            for i in v.get("secret", {}).get("items", [])
            if i["key"] == "credentials-admin.json"
        ]
        assert admin == ["authpi-streams"]


def test_gateway_reaches_every_service() -> None:
    docs = render("base")
    gateway = pod_spec(named(docs, "Deployment")["gateway"])["containers"][0]
    urls = next(v["value"] for v in gateway["env"] if v["name"] == "AUTHPI_SERVICE_URLS")
    routes = dict(item.split("=", 1) for item in urls.split(","))
    assert sorted(routes) == sorted(BEHIND_GATEWAY)
    services = named(docs, "Service")
    for svc, url in routes.items():
        host, port = re.fullmatch(r"http://([a-z-]+):(\d+)", url).groups()  # type: ignore[union-attr]
        assert host == svc and int(port) in {p["port"] for p in services[host]["spec"]["ports"]}


def _authpi_containers() -> list[tuple[str, Doc, dict[str, Any]]]:
    found = []
    for name in RENDERS:
        docs = render(name)
        configs = named(docs, "ConfigMap")
        for workload in workloads(docs):
            for container in containers(workload):
                if is_authpi(container):
                    where = f"{name}: {workload['kind']}/{workload['metadata']['name']}"
                    found.append((where, container, configs))
    return found


def test_commands_are_authpi_subcommands() -> None:
    """The image's entrypoint is `authpi`: each container's args parse with the real CLI."""
    refused = []
    for where, container, _ in _authpi_containers():
        assert "command" not in container, f"{where}: overrides the authpi entrypoint"
        try:
            parse_command([str(a) for a in container["args"]])
        except ValueError as exc:
            refused.append(f"{where}: {exc}")
    assert not refused, "\n".join(refused)


def test_variables_are_read_by_settings() -> None:
    used: dict[str, str] = {}
    for where, container, configs in _authpi_containers():
        for var in container.get("env", []):
            used.setdefault(var["name"], where)
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                for key in configs[source["configMapRef"]["name"]]["data"]:
                    used.setdefault(key, f"{where} (ConfigMap)")
    unknown = unknown_variables({v for v in used if v.startswith("AUTHPI_")})
    assert not unknown, "\n".join(f"{v}: set by {used[v]}, read by nothing" for v in unknown)


def test_example_secrets_hold_no_real_values() -> None:
    for secret in example_secrets():
        assert secret["kind"] == "Secret" and "data" not in secret
        for key, value in secret["stringData"].items():
            if key != "username":
                assert "EXAMPLE" in value, f"{secret['metadata']['name']}/{key}"


@pytest.mark.parametrize("name", RENDERS)
def test_ingress_routes_the_public_urls(name: str) -> None:
    """The Core API's public host goes to the gateway, the IdP API's straight to the token
    service; the hosts are those of AUTHPI_API_URL and AUTHPI_IDP_URL."""
    docs = render(name)
    config = named(docs, "ConfigMap")["authpi-config"]["data"]
    ingress = named(docs, "Ingress")["authpi"]["spec"]
    routes = {
        rule["host"]: [(p["path"], p["backend"]["service"]["name"]) for p in rule["http"]["paths"]]
        for rule in ingress["rules"]
    }
    api, idp = (urlsplit(config[k]).hostname for k in ("AUTHPI_API_URL", "AUTHPI_IDP_URL"))
    assert routes == {api: [("/", "gateway")], idp: [("/", "token")]}
    for tls in ingress.get("tls", []):
        assert set(tls["hosts"]) == {api, idp}
