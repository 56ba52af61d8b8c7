"""The monitoring stack, one job per module: `metrics` defines every metric the drills export,
`drill_metrics` updates them, `metrics_server` serves them; `process` runs a real Prometheus on
loopback for local drills, `query` asks it, `dashboards` reads the Grafana dashboards' queries,
`k8s` builds the in-cluster stack's manifests (`python -m chaos.monitoring
k8s | kubectl apply -f -`), `install` deploys it, and `render` draws a dashboard into a PNG.
"""

from chaos.resources import shipped

MONITORING_DIR = shipped("manifests", "monitoring")
DASHBOARDS_DIR = shipped("dashboards")
