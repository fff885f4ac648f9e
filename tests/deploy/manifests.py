"""Rendering and reading the Kubernetes manifests of deploy/k8s for the tests beside this file."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.cli import ROOT

K8S = ROOT / "deploy" / "k8s"
Doc = dict[str, Any]

# What `kubectl apply -k` is pointed at: the base, the production overlay (with CloudNativePG),
# and the base with the external-PostgreSQL component instead.
RENDERS = ("base", "overlays/production", "external-postgres")
POD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")


def kubectl() -> str:
    return str(Path(sys.executable).parent / "kubectl")


@cache
def render(name: str) -> tuple[Doc, ...]:
    if name != "external-postgres":
        return _kustomize(K8S / name)
    with tempfile.TemporaryDirectory() as tmp:
        rel = Path(os.path.relpath(K8S, tmp))
        (Path(tmp) / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": [str(rel / "base")],
                    "components": [str(rel / "components" / "external-postgres")],
                }
            )
        )
        return _kustomize(Path(tmp))


def _kustomize(path: Path) -> tuple[Doc, ...]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"kubectl kustomize {path}: {out.stderr}"
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


@cache
def example_secrets() -> tuple[Doc, ...]:
    text = (K8S / "examples" / "secrets.yaml").read_text()
    return tuple(d for d in yaml.safe_load_all(text) if d)


def named(docs: tuple[Doc, ...], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: Doc) -> Doc:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def pod_labels(doc: Doc) -> dict[str, str]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"].get("labels", {})
    if doc["kind"] == "Cluster":  # CloudNativePG labels its instances with the cluster's name
        return {"cnpg.io/cluster": doc["metadata"]["name"]}
    return doc["spec"]["template"]["metadata"].get("labels", {})


def workloads(docs: tuple[Doc, ...]) -> Iterator[Doc]:
    return (d for d in docs if d["kind"] in POD_KINDS)


def containers(doc: Doc) -> Iterator[Doc]:
    spec = pod_spec(doc)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def matches(selector: Doc, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def selected(docs: tuple[Doc, ...], selector: Doc) -> list[Doc]:
    """The workloads (and CloudNativePG clusters) whose pods a selector picks."""
    sources = [*workloads(docs), *(d for d in docs if d["kind"] == "Cluster")]
    return [d for d in sources if matches(selector, pod_labels(d))]


def is_authpi(container: Doc) -> bool:
    """A container of the image built from deploy/Dockerfile (entrypoint `authpi`)."""
    image = container["image"].rsplit("/", 1)[-1].split(":", 1)[0]
    return image == "authpi"
