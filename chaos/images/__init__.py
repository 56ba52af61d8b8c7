"""Every image chaos-drill builds, as archives that load with no registry: the sample app and
pause (sample), the kind node image (node), the operator's (operator, which also runs the prober
pod) and the in-cluster Prometheus's (prometheus); catalog lists those a cluster runs and names
them in a registry, push (with credentials) sends them there. Below the cluster: images know no
cluster."""
