"""`python -m chaos.monitoring k8s | kubectl apply -f -` deploys the in-cluster stack."""

import sys

from chaos.monitoring.k8s import main

raise SystemExit(main(sys.argv[1:]))
