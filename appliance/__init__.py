"""Commonsbox management agent: desired state, reconcile, privileged API, CLI."""

__version__ = "0.1.0"
