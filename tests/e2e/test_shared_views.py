"""--share beside `watch` and `run` (the workshop's is tested in test_workshop.py): the
attendees' link, on this machine's LAN address, serves the same pods and incidents as the
presenter's page; a wrong or missing token gets 403; nothing can be changed through it."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support import FAULTS, Output, free_port, running_cli, write_drill

pytestmark = pytest.mark.e2e


def status_of(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, data=b"next"
                                    if method == "POST" else None), timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def state_where(url: str, holds: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first state event of the SSE stream at URL for which HOLDS is true (each line read
    within the connection's 30 s timeout; the test's own limit bounds the whole)."""
    with urllib.request.urlopen(url, timeout=30) as stream:
        data = ""
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                data = line[len("data: "):]
            elif not line and data:
                state: dict[str, Any] = json.loads(data)
                if holds(state):
                    return state
                data = ""
    raise AssertionError(f"{url}: the stream ended before the state looked for")


def attendees_link(output: Output) -> str:
    said = output.wait_for("attendees' view on http://", timeout=60)
    link = said[said.index("http://"):].split()[0]
    output.wait_for("warning: the attendees' view leaves loopback", timeout=10)
    assert not link.startswith("http://127."), link
    return link


def refuses_strangers_and_changes(link: str) -> None:
    """Wrong or missing tokens get 403, the right one the page, a POST through it 405."""
    base = link.rsplit("/", 2)[0]
    for refused in (f"{base}/", f"{base}/events", f"{base}/{'A' * 43}/",
                    f"{base}/{'A' * 43}/events"):
        assert status_of(refused) == 403, refused
    assert status_of(link) == 200
    assert status_of(f"{link}control", "POST") == 405


def web_pods(api: Any) -> set[str]:
    return {p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod(
        "demo", label_selector="app=web").items if p.metadata.deletion_timestamp is None}


def test_watch_shares_the_pods_read_only(web: Any) -> None:
    port = free_port()
    with running_cli("watch", "--target", "Deployment/web", "--web", str(port),
                     "--share") as (proc, output):
        link = attendees_link(output)
        refuses_strangers_and_changes(link)
        names = web_pods(web)

        def all_ready(state: dict[str, Any]) -> bool:
            return {p["name"] for p in state["pods"] if p["state"] == "ready"} == names

        shared = state_where(f"{link}events", all_ready)
        presenter = state_where(f"http://127.0.0.1:{port}/events", all_ready)
        assert [p["name"] for p in shared["pods"]] == [p["name"] for p in presenter["pods"]]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, output.finish(10)


def test_run_shares_the_drill_and_its_incident(web: Any, tmp_path: Path) -> None:
    """The attendees follow the drill to its recovery, as its summary.json records it."""
    port, out = free_port(), tmp_path / "out"
    spec = write_drill(tmp_path, FAULTS["pod_delete"])
    with running_cli("run", str(spec), "--out", str(out), "--web", str(port),
                     "--share") as (proc, output):
        link = attendees_link(output)
        refuses_strangers_and_changes(link)
        shared = state_where(f"{link}events", lambda state: any(
            i["status"] == "recovered" for i in state["incidents"]))
        code = proc.wait(timeout=120)
    assert code == 0, output.finish(10)
    summary = json.loads((out / "summary.json").read_text())
    [incident] = summary["incidents"]
    [seen] = shared["incidents"]
    assert (seen["id"], seen["target"], seen["status"]) == (
        incident["id"], incident["target_pod"], "recovered"), (seen, incident)
