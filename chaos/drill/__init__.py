"""A drill: its spec (typed dataclasses) and loading (checked against the CRD's schema), its target
found in the cluster (resolve), targeting (pure filters), the fault registry (fault_types) with one
module per fault in faults/, the timeline of an incident, restore and signal handling, and the
runner (with probing, where its probe runs) that wires them to observe/, results/ and metrics."""
