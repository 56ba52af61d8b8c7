"""chaos-drill: kill pods and containers on purpose and measure how Kubernetes heals."""

__version__ = "0.1.0"
__all__ = ["__version__"]
