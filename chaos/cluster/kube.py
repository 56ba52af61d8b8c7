"""Kubernetes API clients built from a kubeconfig without touching global client state, small
readers shared by the rest of the package, and the workload a drill targets (`Workload`)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from chaos.errors import ChaosDrillError, ClusterError

_API_FIXES = {
    401: "the API server does not accept these credentials: fix the kubeconfig's user",
    403: "ask for RBAC that allows it, or use a kubeconfig whose user may",
    404: "check the name and namespace",
    409: "someone else changed it at the same time: run the drill again",
    422: "the API server rejected the change: check the drill's values",
}


def api_client(kubeconfig: Path | str | None = None, context: str | None = None) -> Any:
    """An ApiClient for KUBECONFIG (or the default one); a one-line error when it is broken."""
    try:
        return config.new_client_from_config(
            config_file=str(kubeconfig) if kubeconfig else None, context=context
        )
    except (ConfigException, OSError, TypeError, ValueError, yaml.YAMLError) as error:
        where = kubeconfig or "the default kubeconfig"
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ClusterError(
            f"cannot use kubeconfig {where} ({reason}): fix the file or point --kubeconfig "
            "at a working one"
        ) from None


def node_ready(node: Any) -> bool:
    for condition in node.status.conditions or []:
        if condition.type == "Ready":
            return bool(condition.status == "True")
    return False


def node_names(api: Any) -> list[str]:
    """The names of the cluster's nodes; a one-line ClusterError when they cannot be listed."""
    try:
        return [node.metadata.name for node in client.CoreV1Api(api).list_node().items]
    except ApiException as error:
        raise ClusterError(f"cannot list nodes ({error.status} {error.reason}): give the "
                           "kubeconfig's user 'list nodes'") from None


def pod_ready(pod: Any) -> bool:
    for condition in (pod.status and pod.status.conditions) or []:
        if condition.type == "Ready":
            return bool(condition.status == "True")
    return False


def wait_for_pods(
    api: Any,
    namespace: str,
    label_selector: str,
    done: Callable[[list[Any]], bool],
    timeout: float,
) -> list[Any]:
    """Watches the pods matching LABEL_SELECTOR until DONE(pods) holds; TimeoutError otherwise."""
    core_api = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    listing = core_api.list_namespaced_pod(namespace, label_selector=label_selector)
    pods = {p.metadata.uid: p for p in listing.items}
    version = listing.metadata.resource_version
    while not done(list(pods.values())):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"pods {namespace}/{label_selector} not as expected in {timeout}s")
        stream = watch.Watch().stream(core_api.list_namespaced_pod, namespace,
                                      label_selector=label_selector, resource_version=version,
                                      timeout_seconds=max(1, int(left)))
        for event in stream:
            pod = event["object"]
            version = pod.metadata.resource_version
            if event["type"] == "DELETED":
                pods.pop(pod.metadata.uid, None)
            else:
                pods[pod.metadata.uid] = pod
            if done(list(pods.values())):
                break
    return list(pods.values())


DNS_SERVICE = ("kube-system", "kube-dns")
"""The cluster DNS Service; the kubelet gives pods its ClusterIP as their nameserver."""

WORKLOAD_KINDS = {"Deployment": "deployment", "StatefulSet": "stateful_set",
                  "ReplicaSet": "replica_set"}
"""The workload kinds a drill can name, with the spelling of their AppsV1Api calls."""


def apps_call(api: Any, verb: str, kind: str) -> Any:
    """e.g. apps_call(api, "read", "StatefulSet") is AppsV1Api.read_namespaced_stateful_set;
    verb may end in a subresource: "read_scale" gives read_namespaced_stateful_set_scale."""
    action, _, subresource = verb.partition("_")
    name = f"{action}_namespaced_{WORKLOAD_KINDS[kind]}" + (f"_{subresource}" if subresource
                                                             else "")
    return getattr(client.AppsV1Api(api), name)


def desired_replicas(api: Any, namespace: str, kind: str, name: str) -> int | None:
    """The spec.replicas of workload KIND/NAME as the API holds it now (a consistent read);
    None when KIND has no replicas here, or it is gone or cannot be read."""
    if kind not in WORKLOAD_KINDS:
        return None
    try:
        found = apps_call(api, "read", kind)(name, namespace, _request_timeout=5)
    except (ApiException, HTTPError, OSError):
        return None
    replicas = found.spec.replicas
    return None if replicas is None else int(replicas)


@dataclass(frozen=True)
class Workload:
    """The drill's target as resolved in the cluster."""

    kind: str
    name: str
    namespace: str
    match_labels: dict[str, str]

    @property
    def selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.match_labels.items()))


USER_ERRORS = (ApiException, HTTPError, TimeoutError, OSError, subprocess.TimeoutExpired)
"""What the cluster or the machine can throw at a drill; the CLI turns them into one line."""


def explain(error: BaseException) -> str:
    """One line for any error that reaches the user: what failed and what to do next."""
    if isinstance(error, ChaosDrillError):
        return str(error)
    if isinstance(error, ApiException):
        return _explain_api(error)
    if isinstance(error, HTTPError):
        reason = getattr(error, "reason", None) or error
        return (f"cannot reach the Kubernetes API server ({_first_line(reason)}): check "
                "'chaos-drill cluster status' (or --kubeconfig) and retry")
    if isinstance(error, subprocess.TimeoutExpired):
        command = " ".join(map(str, error.cmd)) if isinstance(error.cmd, list) else error.cmd
        return (f"{command} did not finish in {error.timeout:g}s: check the machine's load and "
                "the component's log, then retry")
    if isinstance(error, TimeoutError):
        return (f"timed out: {_first_line(error) or 'no answer in time'}: the cluster is slow "
                "or gone; check 'chaos-drill cluster status' and retry")
    if isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        return (f"{error.strerror or _first_line(error)}{where}: check the path, permissions "
                "and free space, then retry")
    return f"{type(error).__name__}: {_first_line(error)}"


def _explain_api(error: ApiException) -> str:
    message = ""
    try:
        message = str(json.loads(error.body or "{}").get("message") or "")
    except (ValueError, AttributeError):
        pass
    message = message or str(error.reason or "no reason given")
    status = int(error.status or 0)
    if status == 0:
        return (f"cannot reach the Kubernetes API server ({_first_line(message)}): check "
                "'chaos-drill cluster status' (or --kubeconfig) and retry")
    fix = _API_FIXES.get(status, "check 'chaos-drill cluster status' and retry")
    return f"Kubernetes API error {status}: {_first_line(message)}: {fix}"


def _first_line(value: object) -> str:
    return (str(value).strip().splitlines() or [""])[0]


def wait_until(list_call: Callable[..., Any], args: tuple[Any, ...], name: str,
               done: Callable[[Any], bool], timeout: float, what: str) -> None:
    """Watches the object NAME until DONE(object) (None: it is gone); ClusterError at TIMEOUT."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        items = list_call(*args, field_selector=f"metadata.name={name}").items
        if done(items[0] if items else None):
            return
        stream = watch.Watch().stream(list_call, *args, field_selector=f"metadata.name={name}",
                                      timeout_seconds=max(1, int(min(left, 10))))
        for event in stream:
            if done(None if event["type"] == "DELETED" else event["object"]):
                return
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")


def ignore_missing(call: Callable[..., Any], *args: Any) -> None:
    """CALL(*ARGS), where an object already gone is what was wanted."""
    try:
        call(*args)
    except ApiException as error:
        if error.status != 404:
            raise
