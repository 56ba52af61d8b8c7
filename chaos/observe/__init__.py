"""Observers: raw watches on pods, events, workloads and nodes, and the HTTP prober."""
