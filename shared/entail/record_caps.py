"""Size caps on what a decision stores.

A record is stored in Redis, published on ``decisions``, written to the audit
store and parsed on every read: 250,000 answers made a 20 MB record that slowed
every one of those for everybody. So before a final record is stored the worker
checks two caps, and a record over either is stored instead as a failed
decision with a named error and no answers:

* ``limit-answers``: more answers, over all the decision's queries, than
  ``ENTAIL_LIMIT_ANSWERS``;
* ``limit-record-size``: the record's JSON (answers and proofs, facts, stats) over
  ``ENTAIL_RECORD_MAX_BYTES``.

Failing is chosen over truncating: a decision's answers are all its answers, and
a replay must be able to compare them; the caller can narrow its query.
"""

from __future__ import annotations

from .models import DecisionError, DecisionRecord
from .record_limits import answer_count, answers_error, record_bytes, record_size_error
from .settings import Settings


def cap_record(record: DecisionRecord, settings: Settings) -> DecisionRecord:
    """``record``, or a failed record in its place when it is over a cap. The
    evaluation process checks the same caps first (``entail_worker.low_priority``), so a
    result over them normally never gets here. CPU-bound (it serialises the
    answers once): call it off the event loop."""
    if record.status != "succeeded":
        return record
    count = answer_count(record.answers)
    if count > settings.limit_answers:
        return _failed(record, answers_error(count, settings.limit_answers), answers=count)
    size = record_bytes(record.answers, record.facts, record.query, record.why_not)
    if size > settings.record_max_bytes:
        return _failed(record, record_size_error(size, settings.record_max_bytes), record_bytes=size)
    return record


def _failed(record: DecisionRecord, error: dict[str, str], **measured: int) -> DecisionRecord:
    return record.model_copy(
        update={
            "status": "failed",
            "answers": None,
            "result_hash": None,
            "error": DecisionError(code=error["code"], message=error["message"]),
            "stats": {**record.stats, **measured},
        }
    )
