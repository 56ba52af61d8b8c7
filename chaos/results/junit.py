"""junit.xml for CI: one test suite per drill, one test case per SLO check, a failure element
carrying the check's detail when it did not pass."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

from chaos.results.summary import Summary


def junit_xml(summary: Summary) -> str:
    """The JUnit XML document for summary, as text."""
    checks = summary.slo_checks
    failures = sum(1 for check in checks if not check.passed)
    suites = ET.Element("testsuites", tests=str(len(checks)), failures=str(failures))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"chaos-drill {summary.namespace}/{summary.drill}",
        tests=str(len(checks)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{_run_seconds(summary):.3f}",
    )
    if summary.started:
        suite.set("timestamp", summary.started)
    _properties(suite, summary)
    for check in checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"chaosdrill.{summary.namespace}.{summary.drill}",
            name=check.name,
            time="0",
        )
        if not check.passed:
            failure = ET.SubElement(case, "failure", message=check.detail, type="SloFailed")
            failure.text = check.detail
    ET.SubElement(suite, "system-out").text = "\n".join(_incident_lines(summary))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _properties(suite: ET.Element, summary: Summary) -> None:
    properties = ET.SubElement(suite, "properties")
    values = {
        "fault": summary.fault,
        "incidents": str(len(summary.incidents)),
        "aborted": str(summary.aborted).lower(),
        "recovery_max_seconds": _number(summary.recovery.max),
        "availability_ratio": _number(summary.availability.ratio),
    }
    for name, value in values.items():
        ET.SubElement(properties, "property", name=name, value=value)


def _incident_lines(summary: Summary) -> list[str]:
    return [
        f"{i.id}{' (observed)' if i.origin == 'observed' else ''} {i.target_pod} on "
        f"{i.node or '?'}: recovery {_number(i.recovery_seconds)} s, restarts {i.restart_count}"
        + "".join(f"; {cause}" for cause in i.causes)
        for i in summary.incidents
    ]


def _number(value: float | None) -> str:
    return "null" if value is None else f"{value:.3f}"


def _run_seconds(summary: Summary) -> float:
    if not summary.started or not summary.finished:
        return 0.0
    started = datetime.fromisoformat(summary.started)
    return (datetime.fromisoformat(summary.finished) - started).total_seconds()
