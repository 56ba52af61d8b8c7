"""Kubernetes API clients built from a kubeconfig without touching global client state, and
small readers shared by the rest of the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from chaos.errors import ClusterError


def api_client(kubeconfig: Path | str | None = None, context: str | None = None) -> Any:
    """An ApiClient for KUBECONFIG (or the default one); a one-line error when it is broken."""
    try:
        return config.new_client_from_config(
            config_file=str(kubeconfig) if kubeconfig else None, context=context
        )
    except (ConfigException, OSError, TypeError, ValueError) as error:
        where = kubeconfig or "the default kubeconfig"
        raise ClusterError(
            f"cannot use kubeconfig {where}: {error}: fix the file or point --kubeconfig "
            "at a working one"
        ) from None


def core(kubeconfig: Path | str | None = None) -> Any:
    return client.CoreV1Api(api_client(kubeconfig))


def apps(kubeconfig: Path | str | None = None) -> Any:
    return client.AppsV1Api(api_client(kubeconfig))


def node_ready(node: Any) -> bool:
    for condition in node.status.conditions or []:
        if condition.type == "Ready":
            return bool(condition.status == "True")
    return False


def pod_ready(pod: Any) -> bool:
    for condition in (pod.status and pod.status.conditions) or []:
        if condition.type == "Ready":
            return bool(condition.status == "True")
    return False
