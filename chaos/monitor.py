"""`python -m chaos.monitor k8s` as older notes spell it; the monitoring stack lives in
chaos/monitoring/ (`python -m chaos.monitoring k8s | kubectl apply -f -`)."""

import sys

from chaos.monitoring.k8s import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
