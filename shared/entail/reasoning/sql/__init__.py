"""Batch reasoning: a ruleset compiled to SQL and run by the warehouse (DuckDB, BigQuery).

See docs/batch.md. ``run_batch(ruleset, backend, inputs, datasets=...)`` is the entry point;
:class:`DuckDBBackend` runs locally, :class:`BigQueryBackend` in the cloud (query jobs;
``entail.batch`` is the audited run the ``batch_reason`` function serves).
"""

from __future__ import annotations

from .backend import Backend, DuckDBBackend
from .bigquery_backend import BigQueryBackend, JobStats
from .compile import CompiledProgram, Tables, compile_program, program_symbols
from .datasets import DatasetSource, DatasetTable, DatasetTypeMismatch, bigquery_dataset, parquet_dataset
from .dialect import BIGQUERY, DIALECTS, DUCKDB, Dialect
from .errors import (
    BatchInputError,
    IterationLimitExceeded,
    RowLimitExceeded,
    ScannedBytesLimitExceeded,
    SqlCompileError,
)
from .inputs import InputSpec, parse_inputs
from .manifest import Manifest, OutputInfo
from .run import BatchLimits, Progress, parse_signature, run_batch

__all__ = [
    "BIGQUERY",
    "DIALECTS",
    "DUCKDB",
    "Backend",
    "BatchInputError",
    "BatchLimits",
    "BigQueryBackend",
    "CompiledProgram",
    "DatasetSource",
    "DatasetTable",
    "DatasetTypeMismatch",
    "Dialect",
    "DuckDBBackend",
    "InputSpec",
    "IterationLimitExceeded",
    "JobStats",
    "Manifest",
    "OutputInfo",
    "Progress",
    "RowLimitExceeded",
    "ScannedBytesLimitExceeded",
    "SqlCompileError",
    "Tables",
    "bigquery_dataset",
    "compile_program",
    "parquet_dataset",
    "parse_inputs",
    "parse_signature",
    "program_symbols",
    "run_batch",
]
