"""Entail's local development stack (``entail up``): embedded Redis, the backend,
the worker, the relay and the audit sink on a DuckDB file, as child processes."""
