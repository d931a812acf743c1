"""Dataward: a Kubernetes operator that turns a privacy policy into controls the cluster enforces."""

__version__ = "0.1.0"
