"""The in-cluster monitoring stack as Kubernetes objects: the static manifests of
manifests/monitoring/k8s/ plus ConfigMaps generated from the Prometheus config, the shared
rules and dashboards/*.json."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from chaos.monitoring import MONITORING_DIR
from chaos.monitoring.dashboards import dashboard_files

MONITORING_NAMESPACE = "chaos-drill-monitoring"


def _configmap(name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": MONITORING_NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "chaos-drill"},
        },
        "data": dict(data),
    }


def dashboard_configmap() -> dict[str, Any]:
    """The grafana-dashboards ConfigMap, built from dashboards/*.json."""
    files = dashboard_files()
    return _configmap("grafana-dashboards", {path.name: path.read_text() for path in files})


def prometheus_configmap() -> dict[str, Any]:
    """The prometheus-config ConfigMap: the in-cluster config and the shared rules."""
    return _configmap(
        "prometheus-config",
        {
            "prometheus.yml": (MONITORING_DIR / "prometheus-k8s.yml").read_text(),
            "rules.yml": (MONITORING_DIR / "rules.yml").read_text(),
        },
    )


def k8s_manifests() -> list[dict[str, Any]]:
    """Every object of the in-cluster monitoring stack, namespace first, ready to apply."""
    static: list[dict[str, Any]] = []
    for path in sorted((MONITORING_DIR / "k8s").glob("*.yaml")):
        static.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    static.sort(key=lambda obj: obj["kind"] != "Namespace")
    return [*static, prometheus_configmap(), dashboard_configmap()]


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (configs, dashboards) as readable `|` blocks."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _represent_str)


def render_k8s_manifests() -> str:
    """The monitoring stack as one multi-document YAML stream, for `kubectl apply -f -`."""
    return yaml.dump_all(k8s_manifests(), Dumper=_BlockDumper, sort_keys=False)


def main(argv: Sequence[str]) -> int:
    """`python -m chaos.monitoring k8s | kubectl apply -f -` deploys the in-cluster stack."""
    if list(argv) != ["k8s"]:
        print("usage: python -m chaos.monitoring k8s | kubectl apply -f -", file=sys.stderr)
        return 2
    sys.stdout.write(render_k8s_manifests())
    return 0
