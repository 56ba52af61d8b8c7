"""Where a drill's probe runs and what it calls: the Service URL it probes, whether the host gets
an answer from it (spec.probe.from: auto), and the image of the prober pod when it runs in the
cluster."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
import urllib.parse
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster.base import ClusterProvider, HostRoutes, Progress
from chaos.drill.spec import Drill
from chaos.errors import SetupError, SpecError
from chaos.observe.prober_pod import IMAGE_ENV

REACH_TIMEOUT = 1.0
"""How long each GET of spec.probe.from: auto waits for an answer from the host."""
ASK_AGAIN_SECONDS = 3.0
"""How long auto asks again while the host's GET gets no answer: kube-proxy refuses (its REJECT
rule for a Service without endpoints) until it has the endpoints of pods just Ready, about a
second, and a cluster just brought up may let one GET time out."""


def probe_url(api: Any, drill: Drill) -> str:
    """The probe's URL through its Service's cluster IP; one-line errors naming spec.probe."""
    probe = drill.probe
    assert probe is not None
    try:
        service = client.CoreV1Api(api).read_namespaced_service(probe.service, drill.namespace)
    except ApiException as error:
        if error.status == 404:
            raise SpecError(f"spec.probe.service: Service {drill.namespace}/{probe.service} not "
                            "found: fix the name or create the Service") from None
        raise
    ports = [p.port for p in service.spec.ports or []]
    if probe.port not in ports:
        raise SpecError(f"spec.probe.port: Service {drill.namespace}/{probe.service} has no "
                        f"port {probe.port} (it has {', '.join(map(str, ports)) or 'none'}): "
                        "fix spec.probe.port")
    ip = service.spec.cluster_ip
    if not ip or ip == "None":
        raise SpecError(f"spec.probe.service: Service {drill.namespace}/{probe.service} has no "
                        "cluster IP (headless): probe a Service with one")
    return f"http://{ip}:{probe.port}{probe.path}"


def reachable_from_host(url: str, timeout: float = REACH_TIMEOUT) -> bool:
    """True if one GET of URL from here gets any HTTP answer (even a 5xx) within TIMEOUT."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                            timeout=timeout)
    try:
        connection.request("GET", parts.path or "/", headers={"Connection": "close"})
        connection.getresponse()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def via_default_route(address: str) -> bool:
    """True when this machine, outside any pod, would send packets for ADDRESS through its
    default route: a cluster's Service range it has no route to (kind's, a remote cluster's),
    where a probe would leave the machine. In a pod the default route is the way to Services."""
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return False
    try:
        routes = [subprocess.run(["ip", "-j", "route", *args], capture_output=True, text=True,
                                 timeout=10).stdout for args in (("get", address),
                                                                 ("show", "default"))]
        found, defaults = (json.loads(text or "[]") for text in routes)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return False  # no iproute2 here: nothing to go by
    way = {(route.get("gateway"), route.get("dev")) for route in found}
    return bool(way & {(route.get("gateway"), route.get("dev")) for route in defaults})


def host_refusal(provider: object, url: str) -> str | None:
    """Why this host must not probe URL on PROVIDER's cluster, when the provider knows of a
    reason (kind: the host's route to the Service range leads to another cluster's node)."""
    if not isinstance(provider, HostRoutes):
        return None
    return provider.host_probe_refusal(urllib.parse.urlsplit(url).hostname or "")


def choose_origin(setting: str, url: str, timeout: float = REACH_TIMEOUT,
                  ask_again: float = ASK_AGAIN_SECONDS, refusal: str | None = None) -> str:
    """Where to probe URL from, "host" or "cluster", for spec.probe.from SETTING: auto is the
    host when it gets an answer from there, asked again for up to ASK_AGAIN seconds while it
    gets none; never the host when URL goes out by the default route, or for REFUSAL."""
    if setting == "cluster":
        return setting
    address = urllib.parse.urlsplit(url).hostname or ""
    if refusal is None and via_default_route(address):
        refusal = (f"this machine reaches {address} only through its default route (it has no "
                   "route to the cluster's Services)")
    if refusal is not None:
        if setting == "host":
            raise SpecError(f"spec.probe.from: host, but {refusal}: use from: cluster or auto")
        return "cluster"
    if setting != "auto":
        return setting
    deadline = time.monotonic() + ask_again
    while not (answered := reachable_from_host(url, timeout)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return "host" if answered else "cluster"


def prober_image(provider: ClusterProvider, api: Any, say: Progress) -> str:
    """The prober pod's image: CHAOS_DRILL_PROBER_IMAGE if set (the operator's pod), else the
    operator image, built (cached) and loaded unless every node has it already."""
    named = os.environ.get(IMAGE_ENV)
    if named:
        return named
    if provider.name == "in-cluster":
        raise SetupError(f"spec.probe.from: cluster needs {IMAGE_ENV} in the operator's pod: "
                         "run 'chaos-drill operator install' again")
    from chaos.images import operator as operator_image

    try:
        archive, reference = operator_image.build(say)
    except SetupError as error:
        raise SetupError(f"{error}; or name an image the cluster can pull in {IMAGE_ENV}, or set "
                         "spec.probe.from: host") from None
    nodes = client.CoreV1Api(api).list_node().items
    if not nodes or not all(any(reference in (image.names or []) for image in
                                (node.status.images or [])) for node in nodes):
        say(f"loading {reference} ({archive.stat().st_size >> 20} MiB) for the prober pod")
        provider.load_images([archive], say)
    return reference
