"""Keeps the journal of a drill the in-cluster operator runs where it outlives the operator's
pod: a ConfigMap in the drill's own namespace, owned by its ChaosDrill (so deleting the
ChaosDrill garbage-collects it), one key per attempt, written after every incident and when the
drill ends. A host-run operator keeps its journal on the host's disk only."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chaos.cluster import kube
from chaos.drill.spec import GROUP, VERSION
from chaos.errors import JournalError
from chaos.operator.settings import MAX_ATTEMPTS
from chaos.results import JOURNAL_NAME

ENABLED_ENV = "CHAOS_DRILL_JOURNAL_CONFIGMAPS"
"""Set to "true" in the operator's Deployment; unset, journals stay on disk."""
LIMIT = 900_000
"""Bytes of journal one ConfigMap holds, over all its attempts (the API's limit is 1 MiB)."""
PER_ATTEMPT = LIMIT // MAX_ATTEMPTS
"""Bytes of one attempt's journal kept: the newest lines."""
REMEDY = ("free space in the operator's results folder ($CHAOS_DRILL_OPERATOR_OUT; in the "
          "cluster, replacing the operator's pod empties it), then apply the ChaosDrill again; "
          "what was written is where status.journal says")
"""What a failed journal write's line tells the operator's user (there is no --out)."""
MAX_NAME = 253
"""A ConfigMap's name is a DNS-1123 subdomain: at most 253 characters."""


def enabled() -> bool:
    return os.environ.get(ENABLED_ENV, "").lower() == "true"


def configmap_name(name: str, uid: str) -> str:
    """journal-NAME-UID8 as a valid DNS-1123 subdomain: lower case, anything but letters,
    digits and '-' made '-', NAME cut so the whole fits, never ending in '-' or '.'."""
    suffix = "-" + re.sub(r"[^a-z0-9]", "", uid.lower())[:8]
    body = re.sub(r"[^a-z0-9-]", "-", f"journal-{name}".lower())
    return body[:MAX_NAME - len(suffix)].rstrip("-") + suffix.rstrip("-")


def kept(text: str, limit: int = PER_ATTEMPT) -> str:
    """TEXT, or its newest whole lines within LIMIT bytes after a line counting the dropped."""
    if len(text.encode()) <= limit:
        return text
    lines = text.splitlines(keepends=True)
    size, start = 0, len(lines)
    while start > 0 and size + len(lines[start - 1].encode()) <= limit - 200:
        start -= 1
        size += len(lines[start].encode())
    note = json.dumps({"event": "journal_truncated", "lines_dropped": start}) + "\n"
    return note + "".join(lines[start:])


def owner(name: str, uid: str) -> dict[str, Any]:
    """Owned by ChaosDrill NAME: the garbage collector deletes the ConfigMap with it."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ChaosDrill", "name": name, "uid": uid}


def save(api: Any, namespace: str, configmap: str, key: str, journal: Path,
         owned_by: dict[str, Any]) -> None:
    """Writes JOURNAL as KEY of ConfigMap NAMESPACE/CONFIGMAP, creating it the first time."""
    text = kept(journal.read_text() if journal.exists() else "")
    core = client.CoreV1Api(api)
    try:
        core.patch_namespaced_config_map(configmap, namespace, {"data": {key: text}})
    except ApiException as error:
        if error.status != 404:
            raise
        core.create_namespaced_config_map(namespace, {
            "metadata": {"name": configmap, "ownerReferences": [owned_by],
                         "labels": {"app.kubernetes.io/part-of": "chaos-drill-operator"}},
            "data": {key: text}})


class Place:
    """Where one attempt's journal is kept: KEY of a ConfigMap in the drill's namespace in the
    cluster, or only the file under OUT."""

    def __init__(self, out: Path, name: str, uid: str, attempt: int,
                 namespace: str | None) -> None:
        self.out, self.name, self.uid = out, name, uid
        self.namespace = namespace
        self.configmap = configmap_name(name, uid)
        self.key = f"attempt-{attempt}.jsonl"

    @classmethod
    def of(cls, namespace: str, name: str, uid: str, attempt: int, out: Path) -> Place:
        return cls(out, name, uid, attempt, namespace if enabled() else None)

    def status(self) -> dict[str, str]:
        """What the status says: a ConfigMap key in the cluster, or a file."""
        if self.namespace is None:
            return {"file": str(self.out / JOURNAL_NAME)}
        return {"configMap": f"{self.namespace}/{self.configmap}", "key": self.key}

    def keep(self, api: Any) -> None:
        """Copies the attempt's journal to its ConfigMap (in the cluster only); a copy that
        fails raises JournalError, which stops the drill (it restores) as a full disk does."""
        if self.namespace is None:
            return
        try:
            save(api, self.namespace, self.configmap, self.key, self.out / JOURNAL_NAME,
                 owner(self.name, self.uid))
        except kube.USER_ERRORS as error:
            raise JournalError(f"cannot keep the journal in ConfigMap {self.namespace}/"
                               f"{self.configmap}: {kube.explain(error)}; the drill stopped and "
                               "restored what it changed") from None
