"""Python client for the Entail API."""
