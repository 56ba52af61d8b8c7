"""Small helpers shared by the e2e and bench tests (tests/ is on sys.path through conftest.py)."""

from __future__ import annotations

import math
import os
import platform
import socket
from pathlib import Path
from typing import Any

from chaos.monitor import Sample, Series


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def has_finite_value(samples: list[Sample]) -> bool:
    """An instant query's result holds at least one number (not NaN, not ±Inf)."""
    return any(math.isfinite(sample.value) for sample in samples)


def has_finite_point(series: list[Series]) -> bool:
    """A range query's result holds at least one number: a graph would draw something."""
    return any(math.isfinite(value) for one in series for _, value in one.points)


def pids_with_argument(argument: str) -> list[int]:
    """Processes (not zombies) whose command line holds `argument` exactly."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            arguments = (proc / "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if argument.encode() in arguments:
            found.append(int(proc.name))
    return found


def crowd_deployment(replicas: int, name: str = "crowd") -> dict[str, Any]:
    """A Deployment of sleeping pause containers in namespace demo, opted in to drills, that
    passes the namespace's restricted Pod Security policy, for benchmarks with many pods."""
    labels = {"app": name, "chaosdrill.dev/allow": "true"}
    container = {
        "name": "pause", "image": "chaosdrill.local/pause:1", "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}, "limits": {"memory": "16Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod_spec = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 1,
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "demo", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def machine() -> dict[str, Any]:
    """What a benchmark ran on."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines
                if line.startswith("model name")), platform.processor())
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(),
            "python": platform.python_version()}
