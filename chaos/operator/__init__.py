"""The operator: kopf handlers that run a ChaosDrill object through the same runner the CLI uses
(handlers), its install into a cluster (install), and its journal in a ConfigMap (journal)."""
