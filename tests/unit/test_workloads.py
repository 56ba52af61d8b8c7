"""The sample app's two tiers as declared and as their CGI behaves: `api` is a restricted, opted-in
Deployment behind a Service web's /cgi-bin/api calls by name, and that CGI (run here by the real
static busybox against loopback servers) answers 502 whenever api fails or stays silent."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.cluster import workloads
from chaos.drill import loading, targeting
from chaos.images import sample as images

needs_busybox = pytest.mark.skipif(not images.BUSYBOX.exists(),
                                   reason="no /bin/busybox: run 'make setup'")


def find(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in workloads.documents()
              if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (found,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(found)


def api_url() -> str:
    env = {e["name"]: e["value"] for e in container(find("Deployment", "web"))["env"]}
    return str(env["API_URL"])


def test_namespaces_come_first_so_any_file_may_use_them() -> None:
    kinds = [d["kind"] for d in workloads.documents()]
    assert kinds[0] == "Namespace" and "Namespace" not in kinds[1:]
    assert {"web", "api"} <= {d["metadata"]["name"] for d in workloads.documents()
                              if d["kind"] == "Deployment"}


def test_api_is_restricted_opted_in_and_sized() -> None:
    api = find("Deployment", "api")
    assert api["metadata"]["namespace"] == "demo"
    template = api["spec"]["template"]
    assert template["metadata"]["labels"][targeting.OPT_IN_LABEL] == "true"
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    main = container(api)
    assert main["securityContext"] == {"allowPrivilegeEscalation": False,
                                       "capabilities": {"drop": ["ALL"]}}
    assert main["image"] == images.WEB.reference
    assert set(main["resources"]) == {"requests", "limits"}
    assert main["livenessProbe"]
    # a replacement is up in under a second: without a warm-up, no outage would ever show
    assert main["readinessProbe"]["initialDelaySeconds"] >= 2


def test_web_calls_the_api_service_by_its_cluster_name() -> None:
    url = urllib.parse.urlsplit(api_url())
    service = find("Service", "api")
    namespace = service["metadata"]["namespace"]
    assert url.hostname == f"api.{namespace}.svc.cluster.local"
    assert url.port in [p["port"] for p in service["spec"]["ports"]]
    assert service["spec"]["selector"] == find("Deployment", "api")["spec"]["selector"][
        "matchLabels"]
    assert url.path == "/cgi-bin/whoami"


def test_the_api_drill_takes_every_api_pod_down_and_probes_through_web() -> None:
    drill = loading.load_drill(workloads.MANIFESTS / "drills" / "api-pod-kill.yaml")
    replicas = find("Deployment", "api")["spec"]["replicas"]
    assert (drill.target.name, drill.fault.type) == ("api", "pod_delete")
    assert drill.fault.count == drill.max_unavailable == replicas
    assert drill.probe is not None and (drill.probe.service, drill.probe.path) == (
        "web", "/cgi-bin/api")
    assert drill.probe.timeout_seconds > images.API_TIMEOUT_SECONDS, "web's 502 must arrive"


def test_the_image_holds_both_cgis_and_the_timeout_applet() -> None:
    layer = images.layer(images.WEB, b"busybox")
    for script in (images.API_CGI, images.WHOAMI_CGI):
        assert script.encode() in layer
    assert "timeout" in images.APPLETS


class _Api(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"api-pod-1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/whoami"
    server.shutdown()
    server.server_close()


def run_cgi(url: str | None, tmp_path: Path) -> tuple[str, str]:
    """Runs /cgi-bin/api as busybox httpd would; its status line and body."""
    env = {"API_URL": url} if url else {}
    result = subprocess.run([str(images.BUSYBOX), "sh", "-c", images.API_CGI], env=env,
                            capture_output=True, timeout=10, cwd=tmp_path)
    head, _, body = result.stdout.decode().partition("\r\n\r\n")
    return head.splitlines()[0], body


@needs_busybox
def test_the_api_cgi_relays_api_answer(api_server: str, tmp_path: Path) -> None:
    status, body = run_cgi(api_server, tmp_path)
    assert status == "HTTP/1.1 200 OK"
    assert body.endswith(f"called {api_server}: api-pod-1\n")


@needs_busybox
def test_the_api_cgi_answers_502_when_api_refuses(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    status, body = run_cgi(f"http://127.0.0.1:{port}/", tmp_path)
    assert status == "HTTP/1.1 502 Bad Gateway"
    assert "failed (" in body and "refused" in body


@needs_busybox
def test_the_api_cgi_answers_502_when_api_stays_silent(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts, never answers
        status, body = run_cgi(f"http://127.0.0.1:{silent.getsockname()[1]}/", tmp_path)
    assert status == "HTTP/1.1 502 Bad Gateway"
    assert f"no answer in {images.API_TIMEOUT_SECONDS} s" in body


@needs_busybox
def test_the_api_cgi_without_a_url_says_so(tmp_path: Path) -> None:
    status, body = run_cgi(None, tmp_path)
    assert status == "HTTP/1.1 500 Internal Server Error"
    assert "API_URL is not set" in body
