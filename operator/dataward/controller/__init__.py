"""The only code that talks to the Kubernetes API: watches, applies, key rings and status."""
