"""Entail's local development stack (``entail up``)."""
