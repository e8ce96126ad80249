"""Named errors of the SQL path. All are :class:`~entail.reasoning.EntailError` subclasses
with a stable ``code``; the limits are :class:`~entail.reasoning.LimitExceeded`."""

from __future__ import annotations

from ..errors import EntailError, LimitExceeded


class SqlCompileError(EntailError):
    """A program the SQL compiler cannot express (should not happen after analysis)."""

    code = "sql-compile-error"


class BatchInputError(EntailError):
    """An input mapping or an input value the batch cannot use (names the predicate/column)."""

    code = "invalid-batch-input"


class IterationLimitExceeded(LimitExceeded):
    """A recursive stratum did not reach its fixpoint within the allowed rounds."""

    code = "limit-iterations"
    what = "semi-naive rounds in one stratum"
    unit = "rounds"


class RowLimitExceeded(LimitExceeded):
    """More derived rows than allowed (all predicates together)."""

    code = "limit-rows"
    what = "derived rows"
    unit = "rows"


class ScannedBytesLimitExceeded(LimitExceeded):
    """The warehouse would scan (or has scanned) more bytes than allowed."""

    code = "limit-scanned-bytes"
    what = "scanned bytes"
    unit = "bytes"
