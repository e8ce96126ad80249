"""Differential tests: random stratified programs, Entail against clingo."""
