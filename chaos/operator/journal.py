"""Keeps the journal of a drill the in-cluster operator runs where it outlives the operator's
pod: a ConfigMap in the operator's namespace (named in the ChaosDrill's status), one key per
attempt, written after every incident and when the drill ends. A host-run operator keeps its
journal on the host's disk only."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

NAMESPACE_ENV = "CHAOS_DRILL_JOURNAL_NAMESPACE"
"""Set in the operator's Deployment to its own namespace; unset, journals stay on disk."""
LIMIT = 900_000
"""Bytes of journal kept per ConfigMap (the API's limit is 1 MiB): the newest lines."""


def journal_namespace() -> str | None:
    return os.environ.get(NAMESPACE_ENV) or None


def configmap_name(namespace: str, name: str, uid: str) -> str:
    return f"journal-{namespace}-{name}"[:240] + f"-{uid[:8]}"


def kept(text: str, limit: int = LIMIT) -> str:
    """TEXT, or its newest whole lines within LIMIT bytes after a line saying so."""
    if len(text.encode()) <= limit:
        return text
    lines = text.splitlines(keepends=True)
    size, start = 0, len(lines)
    while start > 0 and size + len(lines[start - 1].encode()) <= limit - 200:
        start -= 1
        size += len(lines[start].encode())
    note = json.dumps({"event": "journal_truncated", "lines_dropped": start}) + "\n"
    return note + "".join(lines[start:])


def save(api: Any, where: str, configmap: str, key: str, journal: Path) -> None:
    """Writes JOURNAL as KEY of ConfigMap WHERE/CONFIGMAP, creating it the first time."""
    text = kept(journal.read_text() if journal.exists() else "")
    core = client.CoreV1Api(api)
    try:
        core.patch_namespaced_config_map(configmap, where, {"data": {key: text}})
    except ApiException as error:
        if error.status != 404:
            raise
        core.create_namespaced_config_map(where, {
            "metadata": {"name": configmap,
                         "labels": {"app.kubernetes.io/part-of": "chaos-drill-operator"}},
            "data": {key: text}})
