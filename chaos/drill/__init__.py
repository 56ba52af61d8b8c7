"""A drill: its spec (typed dataclasses) and loading (checked against the CRD's schema), its target
found in the cluster (resolve), targeting (pure filters), the fault registry (fault_types) with one
module per fault in faults/, the timeline of an incident, restore records, the Leases that tell
live runs and taken targets, and signal handling. The runner that wires them to observe/,
results/ and metrics is chaos/run/."""
