"""Running a drill: the runner wires a drill (drill/) to what watches it (observe/), what it
writes (results/) and what it exports (monitoring/); the CLI, the operator and the pytest
plugin all run drills through it."""
