"""Clusters behind typed protocols (base): the local one from upstream binaries (local, with its
configs, pki, network, processes), kind (kind, with kind_config, kind_host, kind_cni; dockerd),
any kubeconfig (kubeconfig, incluster), chosen by providers; the API client (kube) and applying
manifests/ (workloads, addons); the registries the nodes trust (registry_hosts)."""
