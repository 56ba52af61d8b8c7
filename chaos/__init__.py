"""chaos-drill: kill pods and containers on purpose and measure how Kubernetes heals.

The map, lowest layer first (a module imports only its own layer and those below):
    errors, latency, resources  the exception tree; stdlib latency figures; shipped files (package
                 data when installed), the cache
    statefile    state files written whole or not at all, read back without a traceback
    serving      the bounded HTTP server (connection cap, idle and header deadlines) of the
                 exporter, the page and the operator's /healthz
    images/      every image built here (sample app, kind node, operator, Prometheus), no registry
                 needed; push to one (push, credentials) and manifests that pull (catalog)
    cluster/     providers (local, kind, kubeconfig) behind protocols, the API client, manifests
    drill/       spec, loading, workshop plans, targeting, the fault registry, faults/, timeline,
                 restore, leases and lease_keeper, node_guard, partition (iptables in a pod's
                 namespace), signals
    observe/     watches (pods, events, workloads, nodes, the HPA, a Service's EndpointSlices) and
                 the open-loop prober
    results/     journal, summary (incidents, availability, slo), causes, advice over a run's
                 evidence and weak_spots of a spec, junit.xml, report.html
    monitoring/  the exporter (metrics, drill_metrics, metrics_server), Prometheus, dashboards
    run/         the drill run (runner, preflight, steady, probing, facts): wires drill/ to
                 observe/, results/, monitoring/
    view/        one view model; the web page (with the presenter's controls) and the terminal
                 view
    operator/    kopf handlers that call the runner, their install, the in-cluster journal,
                 the /healthz
    pytest_plugin  drills as pytest fixtures
    cli/         the argument parser and one module per command group; no logic
    reference/   the docs' reference pages, generated from the parser, registry, schema, metrics
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
