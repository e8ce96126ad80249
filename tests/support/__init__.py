"""Helpers every test tier shares (tests/ is on pytest's pythonpath): waiting
with a deadline, and decision records to store."""
