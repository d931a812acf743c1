"""End-to-end tests and the harness that runs a real Kubernetes control plane locally."""
