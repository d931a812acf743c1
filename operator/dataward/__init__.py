"""Dataward: turn a privacy policy into controls a Kubernetes cluster enforces."""

__version__ = "0.1.0"
