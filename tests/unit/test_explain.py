"""kube.explain: every error the cluster or the machine throws becomes one line with a fix."""

from __future__ import annotations

import json
import subprocess

import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError

from chaos.cluster.kube import explain
from chaos.errors import SpecError


def api_error(status: int, message: str) -> ApiException:
    error = ApiException(status=status, reason="Forbidden")
    error.body = json.dumps({"kind": "Status", "message": message})
    return error


@pytest.mark.parametrize(("error", "needles"), [
    (api_error(403, 'deployments.apps "web" is forbidden: User "viewer" cannot patch resource '
                    '"deployments" in API group "apps" in the namespace "demo"'),
     ("403", 'cannot patch resource "deployments"', "RBAC")),
    (api_error(404, 'services "nope" not found'), ("404", "nope", "name and namespace")),
    (ApiException(status=0, reason="Connection refused"),
     ("cannot reach the Kubernetes API server",)),
    (MaxRetryError(None, "/api", NewConnectionError(None, "Connection refused")),  # type: ignore[arg-type]
     ("cannot reach the Kubernetes API server", "cluster status")),
    (TimeoutError("the pods watch did not sync in 30s"), ("timed out", "did not sync")),
    (FileNotFoundError(2, "No such file or directory", "/x/kubeconfig"),
     ("No such file or directory", "/x/kubeconfig")),
    (subprocess.TimeoutExpired(["ctr", "images", "import"], 120), ("ctr images import", "120s")),
    (SpecError("spec.probe.port: no port 81"), ("spec.probe.port",)),
])
def test_one_line_with_the_fix(error: BaseException, needles: tuple[str, ...]) -> None:
    line = explain(error)
    assert "\n" not in line
    for needle in needles:
        assert needle in line, line


def test_a_multi_line_body_keeps_its_first_line() -> None:
    assert "\n" not in explain(api_error(500, "etcd down\nstack trace\nmore"))
