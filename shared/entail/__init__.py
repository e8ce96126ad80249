"""Entail: auditable logic reasoning."""

__version__ = "0.1.0"
