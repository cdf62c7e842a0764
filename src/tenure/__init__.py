"""Tenure: the system a managed service provider runs its client relationships on."""

__version__ = "0.1.0"
