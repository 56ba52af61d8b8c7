"""kind's kubeconfig of a cluster, kept in the cache with the ID of the control-plane container
it came from: kind is asked for it again (about 0.4 s a time) only when that container is
another, so a command's many calls cost one `docker ps` each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from chaos import statefile
from chaos.cluster import dockerd, pki
from chaos.cluster.kind_host import CLUSTER_LABEL
from chaos.resources import cache_dir

ROLE_LABEL = "io.x-k8s.kind.role"


def control_plane_id(cluster: str) -> str:
    """The full ID of CLUSTER's control-plane container ('' when there is none, or no engine)."""
    return dockerd.run("ps", "-a", "--no-trunc", "--format", "{{.ID}}",
                       "--filter", f"label={CLUSTER_LABEL}={cluster}",
                       "--filter", f"label={ROLE_LABEL}=control-plane",
                       timeout=60, check=False).strip()


def cached(cluster: str, fetch: Callable[[], str]) -> Path:
    """CLUSTER's kubeconfig file: FETCH's text (kind get kubeconfig) when the file there came
    from another control-plane container, or from none we know, or others may read it."""
    path = cache_dir() / f"kind-{cluster}.kubeconfig"
    source = path.with_name(path.name + ".from")
    plane = control_plane_id(cluster)
    # it holds a client key: only a 0600 file is kept, and rewritten only when kind's differs
    private = path.exists() and not path.stat().st_mode & 0o077
    if plane and private and source.exists() and source.read_text() == plane:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    text = fetch().encode()
    if not private or path.read_bytes() != text:
        pki.write_file(path, text, private=True)
    statefile.write_atomic(source, plane.encode())
    return path
