"""The monitoring stack, one job per module: `process` runs a real Prometheus on loopback for
local drills, `query` asks it, `dashboards` reads the Grafana dashboards' queries, and `k8s`
builds the in-cluster stack's manifests (`python -m chaos.monitoring k8s | kubectl apply -f -`).
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MONITORING_DIR = REPO_ROOT / "manifests" / "monitoring"
DASHBOARDS_DIR = REPO_ROOT / "dashboards"
