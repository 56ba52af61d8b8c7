"""`chaos-drill operator install|uninstall`: builds (cached) and loads the operator image, applies
manifests/crds/ and manifests/operator/ with one RoleBinding per target namespace, and waits until
the Deployment is Ready; uninstall removes all of it and waits until it is gone."""

from __future__ import annotations

import copy
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster import kube, workloads
from chaos.cluster.base import ClusterProvider, Progress
from chaos.drill.spec import GROUP, PLURAL, VERSION
from chaos.errors import SetupError
from chaos.images import catalog
from chaos.images import operator as operator_image
from chaos.observe.prober_pod import IMAGE_ENV

OPERATOR = workloads.MANIFESTS / "operator"
CRDS = workloads.MANIFESTS / "crds"
NAMESPACE = "chaos-drill"
NAME = "chaos-drill-operator"
PART_OF = "app.kubernetes.io/part-of=chaos-drill-operator"
APPLY_ORDER = ("CustomResourceDefinition", "Namespace", "ServiceAccount",
               "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ClusterRole",
               "ClusterRoleBinding", "Role", "RoleBinding", "ClusterKopfPeering", "Service",
               "Deployment")
KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


def operator_documents(reference: str, targets: list[str]) -> list[dict[str, Any]]:
    """manifests/operator/ with the image set (also as the prober pods' image, in IMAGE_ENV)
    and the target RoleBinding once per namespace, in APPLY_ORDER, so the account and its
    rights exist before the pods start."""
    docs: list[dict[str, Any]] = []
    for doc in workloads.documents(OPERATOR):
        if doc["kind"] == "RoleBinding" and doc["metadata"]["namespace"] != NAMESPACE:
            for namespace in targets:
                binding = copy.deepcopy(doc)
                binding["metadata"]["namespace"] = namespace
                docs.append(binding)
            continue
        if doc["kind"] == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                container["image"] = reference
                container.setdefault("env", []).append({"name": IMAGE_ENV, "value": reference})
        docs.append(doc)
    return sorted(docs, key=lambda d: APPLY_ORDER.index(d["kind"]))


def install(provider: ClusterProvider, progress: Progress, targets: list[str],
            timeout: float = 120.0, registry: str | None = None) -> None:
    began = time.monotonic()
    if "kube-system" in targets:
        raise SetupError("--target-namespace kube-system is refused: drills never touch "
                         "kube-system")
    api = kube.api_client(provider.kubeconfig())
    check_targets(api, targets)
    archive, reference = operator_image.build(progress)
    if registry is None:
        progress(f"loading {reference} ({archive.stat().st_size >> 20} MiB)")
    workloads.load_or_pull(provider, [archive], registry, progress)
    crds = list(workloads.documents(CRDS))
    docs = crds + catalog.pulled_from(operator_documents(reference, targets), registry)
    for doc in docs:
        if doc["kind"] == "CustomResourceDefinition":
            workloads.apply(api, [doc], progress)
            wait_established(api, doc["metadata"]["name"], timeout)
        else:
            workloads.apply(api, [doc], progress)
    progress(f"waiting for deployment {NAMESPACE}/{NAME} to be Ready")
    workloads.wait_steady(api, NAMESPACE, NAME, timeout)
    progress(f"operator installed and Ready in {time.monotonic() - began:.1f}s; drills may "
             f"touch namespace(s) {', '.join(targets)}")


def check_targets(api: Any, targets: list[str]) -> None:
    """Every target namespace exists; nothing is applied otherwise."""
    for namespace in targets:
        try:
            client.CoreV1Api(api).read_namespace(namespace)
        except ApiException as error:
            if error.status == 404:
                raise SetupError(f"namespace {namespace} not found: create it (or run "
                                 "'chaos-drill deploy'), or pass another --target-namespace") \
                    from None
            raise


def wait_established(api: Any, name: str, timeout: float) -> None:
    def established(crd: Any) -> bool:
        return any(c.type == "Established" and c.status == "True"
                   for c in (crd.status and crd.status.conditions) or [])

    kube.wait_until(client.ApiextensionsV1Api(api).list_custom_resource_definition, (), name,
               established, timeout, f"CRD {name} Established")


def uninstall(provider: ClusterProvider, progress: Progress, timeout: float = 120.0) -> None:
    """Removes the operator, its RBAC, RoleBindings and peering; ChaosDrill objects and their
    CRD stay (they hold results), without the finalizers of an operator that is gone."""
    api = kube.api_client(provider.kubeconfig())
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    apiext = client.ApiextensionsV1Api(api)
    kube.ignore_missing(core.delete_namespace, NAMESPACE)
    progress(f"deleting namespace {NAMESPACE}")
    kube.wait_until(core.list_namespace, (), NAMESPACE, lambda ns: ns is None, timeout,
               f"namespace {NAMESPACE} gone")
    for binding in rbac.list_role_binding_for_all_namespaces(label_selector=PART_OF).items:
        progress(f"deleting RoleBinding {binding.metadata.namespace}/{binding.metadata.name}")
        kube.ignore_missing(rbac.delete_namespaced_role_binding, binding.metadata.name,
                        binding.metadata.namespace)
    for binding in rbac.list_cluster_role_binding(label_selector=PART_OF).items:
        progress(f"deleting ClusterRoleBinding {binding.metadata.name}")
        kube.ignore_missing(rbac.delete_cluster_role_binding, binding.metadata.name)
    for role in rbac.list_cluster_role(label_selector=PART_OF).items:
        progress(f"deleting ClusterRole {role.metadata.name}")
        kube.ignore_missing(rbac.delete_cluster_role, role.metadata.name)
    admission = client.AdmissionregistrationV1Api(api)
    for policy_binding in admission.list_validating_admission_policy_binding(
            label_selector=PART_OF).items:
        progress(f"deleting ValidatingAdmissionPolicyBinding {policy_binding.metadata.name}")
        kube.ignore_missing(admission.delete_validating_admission_policy_binding,
                            policy_binding.metadata.name)
    for policy in admission.list_validating_admission_policy(label_selector=PART_OF).items:
        progress(f"deleting ValidatingAdmissionPolicy {policy.metadata.name}")
        kube.ignore_missing(admission.delete_validating_admission_policy, policy.metadata.name)
    release_finalizers(api, progress)
    for crd in apiext.list_custom_resource_definition(label_selector=PART_OF).items:
        progress(f"deleting CRD {crd.metadata.name} (and its ClusterKopfPeering)")
        kube.ignore_missing(apiext.delete_custom_resource_definition, crd.metadata.name)
        kube.wait_until(apiext.list_custom_resource_definition, (), crd.metadata.name,
                   lambda found: found is None, timeout, f"CRD {crd.metadata.name} gone")
    progress("operator uninstalled")


def release_finalizers(api: Any, progress: Progress) -> None:
    """Drops kopf's finalizer from every ChaosDrill: no operator is left to release it."""
    custom = client.CustomObjectsApi(api)
    try:
        drills = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    except ApiException as error:
        if error.status == 404:  # no ChaosDrill CRD
            return
        raise
    for drill in drills:
        meta = drill["metadata"]
        finalizers = meta.get("finalizers") or []
        if KOPF_FINALIZER in finalizers:
            progress(f"releasing ChaosDrill {meta['namespace']}/{meta['name']}")
            kept = [f for f in finalizers if f != KOPF_FINALIZER]
            kube.ignore_missing(custom.patch_namespaced_custom_object, GROUP, VERSION,
                            meta["namespace"], PLURAL, meta["name"],
                            {"metadata": {"finalizers": kept or None}})
