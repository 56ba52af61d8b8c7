"""What `operator install` applies: the image it built, one RoleBinding per target namespace,
everything in an order where the account and its rights come before the pods."""

from __future__ import annotations

from chaos.operator import install as operator_install


def test_documents_set_the_image_and_bind_each_target_namespace() -> None:
    docs = operator_install.operator_documents("chaosdrill.local/operator:abc", ["demo", "shop"])
    kinds = [d["kind"] for d in docs]
    assert kinds.index("Deployment") > kinds.index("ClusterRoleBinding") > kinds.index(
        "ServiceAccount") > kinds.index("Namespace") > kinds.index("CustomResourceDefinition")
    bindings = [d for d in docs if d["kind"] == "RoleBinding"
                and d["roleRef"]["name"] == "chaos-drill-operator-target"]
    assert [b["metadata"]["namespace"] for b in bindings] == ["demo", "shop"]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert [c["image"] for c in pod["containers"]] == ["chaosdrill.local/operator:abc"]


def test_pod_meets_pod_security_restricted() -> None:
    docs = operator_install.operator_documents("x", ["demo"])
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"]
        assert container["livenessProbe"] and container["readinessProbe"]


def test_no_rule_reaches_secrets_rbac_or_wildcards() -> None:
    docs = operator_install.operator_documents("x", ["demo"])
    rules = [rule for d in docs if d["kind"] in ("ClusterRole", "Role") for rule in d["rules"]]
    for rule in rules:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
        assert "secrets" not in rule["resources"]
        assert "rbac.authorization.k8s.io" not in rule["apiGroups"]
    cluster_wide = next(d for d in docs if d["kind"] == "ClusterRole"
                        and d["metadata"]["name"] == "chaos-drill-operator")
    assert not [r for r in cluster_wide["rules"] if "pods" in r["resources"]]



def test_target_namespaces_grant_the_advice_its_reads_and_no_budget_writes() -> None:
    """chaos.run.facts.read_facts reads the workload (get), PodDisruptionBudgets and Services
    (list): without them the advice has no workload_facts in the operator."""
    docs = operator_install.operator_documents("x", ["demo"])
    target = next(d for d in docs if d["kind"] == "ClusterRole"
                  and d["metadata"]["name"] == "chaos-drill-operator-target")

    def verbs(group: str, resource: str) -> set[str]:
        return {verb for rule in target["rules"] if group in rule["apiGroups"]
                and resource in rule["resources"] for verb in rule["verbs"]}

    assert verbs("policy", "poddisruptionbudgets") == {"list"}
    assert "list" in verbs("", "services")
    assert {"get"} <= verbs("apps", "deployments") & verbs("apps", "statefulsets") & verbs(
        "apps", "replicasets")
