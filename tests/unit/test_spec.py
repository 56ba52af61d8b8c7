"""Drill documents: the examples validate, defaults apply, and bad documents say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chaos.drill.loading import CRD_PATH, crd_schema, drill_from_object, load_drill, parse_drill
from chaos.errors import SpecError

from support import REPO

DRILLS = sorted((REPO / "manifests" / "drills").glob("*.yaml"))

MINIMAL = """\
apiVersion: chaosdrill.dev/v1alpha1
kind: ChaosDrill
metadata: {name: minimal}
spec:
  target: {kind: Deployment, name: web}
  fault:
    type: pod_delete
"""


def spec_error(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        parse_drill(text, "drill.yaml")
    return str(caught.value)


def test_examples_exist() -> None:
    names = {path.name for path in DRILLS}
    assert {"web-pod-kill.yaml", "web-scale.yaml", "web-node-drain.yaml"} <= names
    assert len(DRILLS) >= 5


@pytest.mark.parametrize("path", DRILLS, ids=lambda path: path.name)
def test_every_example_validates(path: Path) -> None:
    drill = load_drill(path)
    assert drill.namespace == "demo"
    assert drill.target.kind == "Deployment" and drill.target.name in ("web", "api")
    assert drill.probe is not None and drill.probe.service == "web" and drill.probe.port == 80
    if drill.target.name == "api":  # probed through web, which fails while every api pod is gone
        assert drill.probe.path == "/cgi-bin/api"
    if drill.probe.path == "/cgi-bin/api":  # through web to api: fails while api is out of reach
        assert drill.slo.min_availability is not None and drill.slo.min_availability < 0.95
    elif drill.fault.type == "node_stop":  # its pods get requests until the node is NotReady
        assert drill.slo.min_availability == 0.5
    else:
        assert drill.slo.min_availability == 0.95
    if drill.fault.type == "load":  # its recovery is the scale-out, with SLOs of its own
        assert drill.slo.max_scale_out_seconds and drill.slo.max_scale_in_seconds
    elif drill.fault.type == "node_stop":  # the node's grace (16 s) and the pods' eviction
        assert drill.slo.max_recovery_seconds == 60  # toleration (20 s) come first
    else:
        assert drill.slo.max_recovery_seconds == 30


def test_examples_use_the_expected_faults() -> None:
    drills = {path.stem: load_drill(path) for path in DRILLS}
    assert drills["web-pod-kill"].fault.type == "pod_delete"
    assert drills["web-pod-kill"].rounds == 5
    assert drills["web-scale"].fault.replicas == 6


def test_defaults_are_applied() -> None:
    drill = parse_drill(MINIMAL)
    assert drill.namespace == "default"
    assert drill.fault.count == 1
    assert drill.rounds == 1
    assert drill.interval_seconds == 10
    assert drill.max_unavailable == 1
    assert drill.min_age_seconds == 0
    assert drill.recovery_timeout_seconds == 120
    assert drill.seed is None and drill.probe is None
    assert drill.slo.max_recovery_seconds is None and drill.slo.min_availability is None


def test_probe_defaults() -> None:
    drill = parse_drill(MINIMAL + "  probe: {service: web, port: 8080}\n")
    assert drill.probe is not None
    assert (drill.probe.path, drill.probe.rate_per_second, drill.probe.timeout_seconds) == (
        "/",
        10,
        1,
    )


def test_label_selector_target() -> None:
    selector = "{labelSelector: {matchLabels: {a: b}}}"
    text = MINIMAL.replace("{kind: Deployment, name: web}", selector)
    target = parse_drill(text).target
    assert target.kind is None and target.name is None
    assert target.match_labels == {"a": "b"}


def test_unknown_fault_type() -> None:
    message = spec_error(MINIMAL.replace("pod_delete", "pod_kill"))
    assert message.startswith("drill.yaml:7: spec.fault.type: 'pod_kill' is not allowed")
    assert "use one of pod_delete, container_kill" in message


def test_missing_target() -> None:
    message = spec_error(MINIMAL.replace("  target: {kind: Deployment, name: web}\n", ""))
    assert message == "drill.yaml:4: spec: missing required field 'target'"


@pytest.mark.parametrize(
    "target",
    [
        "{name: web}",
        "{kind: Deployment, name: web, labelSelector: {matchLabels: {a: b}}}",
        "{name: web, labelSelector: {matchLabels: {a: b}}}",
        "{kind: Deployment, labelSelector: {matchLabels: {a: b}}}",
    ],
)
def test_target_needs_exactly_one_form(target: str) -> None:
    message = spec_error(MINIMAL.replace("{kind: Deployment, name: web}", target))
    assert message.startswith("drill.yaml:5: spec.target: set either 'kind' and 'name'")


def test_bad_yaml_names_the_line() -> None:
    message = spec_error(MINIMAL + "  rounds: 1\n  seed: 3: 4\n  maxUnavailable: 1\n")
    assert message.startswith("drill.yaml:9: invalid YAML: mapping values are not allowed here")


def test_unknown_field_names_its_line_and_the_allowed_ones() -> None:
    message = spec_error(MINIMAL + "    colour: red\n")
    assert message.startswith("drill.yaml:8: spec.fault: unknown field 'colour'; allowed: type,")


def test_unknown_top_level_field() -> None:
    message = spec_error(MINIMAL + "extra: 1\n")
    assert message.startswith("drill.yaml:8: unknown field 'extra'; allowed: apiVersion, kind,")


def test_scale_needs_replicas() -> None:
    message = spec_error(MINIMAL.replace("pod_delete", "scale"))
    assert message == "drill.yaml:6: spec.fault: 'replicas' is required when type is scale"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  rounds: 0\n", "spec.rounds: 0 is out of range; it must be at least 1"),
        ("  rounds: 1001\n", "spec.rounds: 1001 is out of range; it must be at most 1000"),
        ("  rounds: five\n", "spec.rounds: 'five' is not of type integer"),
        ("  recoveryTimeoutSeconds: 0\n", "it must be greater than 0"),
        ("  slo: {minAvailability: 1.5}\n", "spec.slo.minAvailability: 1.5 is out of range"),
    ],
)
def test_range_and_type_errors(line: str, expected: str) -> None:
    assert expected in spec_error(MINIMAL + line)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MINIMAL + "  intervalSeconds: .nan\n",
         "drill.yaml:8: spec.intervalSeconds: nan is not a finite number"),
        (MINIMAL + "  minAgeSeconds: -.inf\n",
         "drill.yaml:8: spec.minAgeSeconds: -inf is out of range; it must be at least 0"),
        (MINIMAL + "  seed: " + "9" * 30 + "\n",
         "drill.yaml:8: spec.seed: 999999999999999999999999999999 is out of range"),
        (MINIMAL + "  intervalSeconds: 1.0e+12\n",
         "drill.yaml:8: spec.intervalSeconds: 1000000000000.0 is out of range; it must be at "
         "most 86400"),
        (MINIMAL + "  rounds: 2\n  rounds: 3\n",
         "drill.yaml:9: spec.rounds: duplicate key; keep only one of them"),
        (MINIMAL + "  slo: &s {x: *s}\n", "drill.yaml:8: alias *s is not supported in a drill"),
        (MINIMAL + "  seed: " + "[" * 500 + "]" * 500 + "\n",
         "drill.yaml:8: nested more than 20 levels deep"),
        (MINIMAL + "---\n" + MINIMAL, "drill.yaml:8: invalid YAML: but found another document"),
        (MINIMAL + "  rounds: \x00\n", "drill.yaml:8: invalid YAML: unacceptable character"),
        (MINIMAL + "  probe: {service: " + "w" * 5000 + ", port: 0}\n",
         "drill.yaml:8: spec.probe.port: 0 is out of range"),
        (MINIMAL + "  probe: {service: web, port: 80, path: " + "x" * 5000 + "}\n",
         f"drill.yaml:8: spec.probe.path: '{'x' * 27}...{'x' * 28}' does not match '^/'"),
    ],
)
def test_malformed_yaml_and_numbers_found_by_fuzzing(text: str, expected: str) -> None:
    assert spec_error(text).startswith(expected)


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    drill = tmp_path / "drill.yaml"
    drill.write_bytes(MINIMAL.encode() + b"  seed: \xff\n")
    byte = len(MINIMAL) + len("  seed: ")
    with pytest.raises(SpecError, match=rf"drill.yaml: not UTF-8 text \(byte {byte}\); save"):
        load_drill(drill)


def test_wrong_kind_and_api_version() -> None:
    assert "kind: 'Pod' is not allowed; set it to ChaosDrill" in spec_error(
        MINIMAL.replace("kind: ChaosDrill", "kind: Pod")
    )
    assert "apiVersion: 'v1' is not allowed" in spec_error(
        MINIMAL.replace("chaosdrill.dev/v1alpha1", "v1")
    )


def test_bad_name() -> None:
    message = spec_error(MINIMAL.replace("name: minimal", "name: Not_Valid"))
    assert message.startswith("drill.yaml:3: metadata.name: 'Not_Valid' is not a valid name")


def test_not_a_mapping() -> None:
    assert "expected a YAML mapping" in spec_error("- a\n- b\n")


def test_missing_file() -> None:
    with pytest.raises(SpecError, match="cannot read drill file"):
        load_drill("/nonexistent/drill.yaml")


def test_object_round_trip() -> None:
    for path in DRILLS:
        drill = load_drill(path)
        assert drill_from_object(drill.to_object()) == drill


def test_object_errors_name_the_object() -> None:
    obj = load_drill(DRILLS[0]).to_object()
    obj["spec"]["rounds"] = 0
    with pytest.raises(SpecError, match=r"^ChaosDrill demo/[a-z-]+: spec.rounds: 0 is out"):
        drill_from_object(obj)


def test_crd_header() -> None:
    crd = yaml.safe_load(CRD_PATH.read_text())
    assert crd["metadata"]["name"] == "chaosdrills.chaosdrill.dev"
    version = crd["spec"]["versions"][0]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns[:4] == ["Fault", "Rounds", "Phase", "Passed"]


def test_crd_schema_is_structural_enough() -> None:
    """The API server forbids additionalProperties: false, and type/properties-only junctors."""

    def walk(node: object, in_junctor: bool) -> None:
        if isinstance(node, list):
            for child in node:
                walk(child, in_junctor)
        if not isinstance(node, dict):
            return
        assert node.get("additionalProperties") is not False
        if in_junctor:
            assert not {"type", "default", "description", "nullable"} & set(node)
        for key, child in node.items():
            if key == "properties":
                for schema in child.values():
                    walk(schema, in_junctor)
            else:
                walk(child, in_junctor or key in ("oneOf", "anyOf", "allOf", "not"))

    walk(crd_schema(), False)
