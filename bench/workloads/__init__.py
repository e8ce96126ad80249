"""Benchmark inputs: the loan ruleset and deterministic case and graph generators."""
