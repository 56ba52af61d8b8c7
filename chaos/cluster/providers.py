"""Chooses a cluster provider from the command line: local (default), kind or kubeconfig."""

from __future__ import annotations

import argparse

from chaos.cluster.base import ClusterProvider
from chaos.errors import UsageError

NAMES = ("local", "kind", "kubeconfig")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", default="local",
                        help="where the cluster is: local (default), kind or kubeconfig")
    parser.add_argument("--kubeconfig", help="kubeconfig file for --provider kubeconfig")
    parser.add_argument("--context", help="kubeconfig context for --provider kubeconfig")
    parser.add_argument("--name", default="chaos-drill", help="cluster name for --provider kind")
    parser.add_argument("--kind-image", help="node image for --provider kind (default: the one "
                        "'make kind' builds)")
    parser.add_argument("--kind-workers", type=int, metavar="N",
                        help="worker nodes of a kind cluster this creates (default 2; 0: one "
                        "node, the quickest to create, with no node to fault)")


def from_args(args: argparse.Namespace) -> ClusterProvider:
    if args.provider == "local":
        from chaos.cluster.local import LocalCluster

        return LocalCluster()
    if args.provider == "kind":
        from chaos.cluster.kind import KindCluster

        return KindCluster(args.name, args.kind_image, workers=args.kind_workers)
    if args.provider == "kubeconfig":
        from chaos.cluster.kubeconfig import KubeconfigCluster

        return KubeconfigCluster(args.kubeconfig, args.context)
    raise UsageError(f"unknown provider {args.provider!r}: use one of {', '.join(NAMES)}")
