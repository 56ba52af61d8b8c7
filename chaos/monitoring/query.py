"""Asks a Prometheus over its HTTP API: instant and range queries, and waiting on a condition."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaos.errors import SetupError


@dataclass(frozen=True)
class Sample:
    """One element of an instant query's result."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query's result: (unix time, value) points, oldest first."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


def query(url: str, promql: str, at: float | None = None, timeout: float = 5.0) -> list[Sample]:
    """Run an instant query (now, or at unix time `at`); a scalar is one unlabelled sample."""
    params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
    return _samples(api_get(url, "query", params, timeout))


def query_range(
    url: str, promql: str, start: float, end: float, step: float, timeout: float = 10.0
) -> list[Series]:
    """Run a range query over [start, end] (unix times) every `step` seconds, as a graph does."""
    params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    data = api_get(url, "query_range", params, timeout)
    if data["resultType"] != "matrix":
        raise ValueError(f"expected a range vector, got a {data['resultType']}")
    return [
        Series(
            labels=item["metric"],
            points=tuple((float(when), float(value)) for when, value in item["values"]),
        )
        for item in data["result"]
    ]


def wait_for(
    url: str,
    promql: str,
    done: Callable[[list[Sample]], bool],
    timeout: float = 60.0,
) -> list[Sample]:
    """Poll an instant query until `done` accepts its result; TimeoutError with the last one."""
    deadline = time.monotonic() + timeout
    samples = query(url, promql)
    while not done(samples):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{promql} still gives {samples} after {timeout:g}s")
        time.sleep(0.25)
        samples = query(url, promql)
    return samples


def api_get(url: str, endpoint: str, params: Mapping[str, str], timeout: float) -> dict[str, Any]:
    """The `data` of GET /api/v1/ENDPOINT; ValueError if Prometheus rejects the request."""
    address = f"{url.rstrip('/')}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:
            body: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            detail = _error_detail(error.read())
        asked = params.get("query", endpoint)
        raise ValueError(f"prometheus rejected {asked!r}: {detail}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SetupError(f"prometheus not reachable at {url}: {reason}") from None
    data: dict[str, Any] = body["data"]
    return data


def _error_detail(payload: bytes) -> str:
    try:
        return str(json.loads(payload)["error"])
    except (ValueError, KeyError, TypeError):
        return payload.decode(errors="replace").strip()


def _samples(data: Mapping[str, Any]) -> list[Sample]:
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return [Sample(labels={}, value=float(result[1]))]
    if kind == "vector":
        return [Sample(labels=item["metric"], value=float(item["value"][1])) for item in result]
    raise ValueError(f"expected an instant vector or scalar, got a {kind}")
