"""What `monitor install` applies: Prometheus alone (no Grafana), with the image built here, a
config hash that rolls the pod when the config changes, and an unprivileged pod."""

from __future__ import annotations

from chaos.monitoring import install


def test_documents_are_prometheus_alone_with_the_image_built_here() -> None:
    docs = install.prometheus_documents("chaosdrill.local/prometheus:abc")
    names = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert names == [("ConfigMap", "prometheus-config"), ("Deployment", "prometheus"),
                     ("Namespace", "chaos-drill-monitoring"), ("Service", "prometheus")]
    assert docs[0]["kind"] == "Namespace"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["containers"]] == ["chaosdrill.local/prometheus:abc"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert "chaos-drill-operator-pods.chaos-drill.svc" in config["data"]["prometheus.yml"]


def test_config_hash_follows_the_config() -> None:
    def config_hash() -> str:
        docs = install.prometheus_documents("x")
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"][install.CONFIG_HASH])

    assert len(config_hash()) == 16 and config_hash() == config_hash()


def test_proxy_path_goes_through_the_api_servers_service_proxy() -> None:
    assert install.proxy_path("/api/v1/query") == (
        "/api/v1/namespaces/chaos-drill-monitoring/services/prometheus:9090/proxy/api/v1/query")
