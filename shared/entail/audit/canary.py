"""The determinism canary: replay a sample of archived decisions with the engine
of today and record every one whose result differs (docs/audit.md, "What the
project promises when the engine changes").

**Sample.** Succeeded, unmasked decisions of the last seven years, stratified
by (ruleset name, ruleset version, age band — under a day, a week, a month, a
year, older). The day's budget ``sample_size`` is split evenly across the
strata (at least one each, so a rare old version is never skipped); within a
stratum the pick is by SHA-256 of (decision id, run seed), so a run is
reproducible from its seed and successive days cover different decisions.

**Replay.** Each sampled decision is evaluated against its stored ruleset
version's source with its stored facts, queries and explain flag. A
different ``result_hash``, or an error, is a mismatch: a row in
``canary_mismatches`` with both engine versions and both hashes and the
added/removed answers. Every mismatch is also logged as one JSON line with
``"event": "canary_mismatch"``: the log-based metric and alert in
terraform/modules/entail/trail.tf count those lines.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import reasoning
from .duckdb_store import DuckDBAuditStore, _from_native
from .schema import (
    CANARY_MISMATCHES_TABLE,
    DECISIONS_TABLE,
    RETENTION_DAYS,
    format_timestamp,
    row_to_decision,
)

if TYPE_CHECKING:
    from ..models import DecisionRecord
    from .bigquery_store import BigQueryAuditStore

log = logging.getLogger("entail.canary")

AGE_BANDS_DAYS = (1, 7, 30, 365)
_COLS = ", ".join(f'd."{c}"' for c in DECISIONS_TABLE.column_names)


@dataclass
class CanaryReport:
    run_id: str
    engine_version: str
    strata: int = 0
    sampled: int = 0
    matched: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "engine_version": self.engine_version,
            "strata": self.strata,
            "sampled": self.sampled,
            "matched": self.matched,
            "mismatched": len(self.mismatches),
            "mismatches": self.mismatches,
        }


def _band_sql() -> str:
    """The age band of ``d.completed_at`` relative to parameter 1 (now)."""
    cases = " ".join(
        f"WHEN d.completed_at >= ?::TIMESTAMPTZ - INTERVAL {days} DAY THEN {i}"
        for i, days in enumerate(AGE_BANDS_DAYS)
    )
    return f"CASE {cases} ELSE {len(AGE_BANDS_DAYS)} END"


def sample(
    store: DuckDBAuditStore | BigQueryAuditStore,
    now: datetime,
    sample_size: int,
    seed: str,
    tenant: str | None = None,
) -> tuple[list[DecisionRecord], int]:
    """The sampled decisions (in decision_id order) and the number of strata."""
    if sample_size < 1:
        raise ValueError(f"sample_size must be at least 1, not {sample_size}")
    if not isinstance(store, DuckDBAuditStore):
        from .bigquery_trail import canary_sample

        _, strata = canary_sample(store, now, None, seed, tenant, AGE_BANDS_DAYS)
        if strata == 0:
            return [], 0
        per = max(1, math.ceil(sample_size / strata))
        records, _ = canary_sample(store, now, per, seed, tenant, AGE_BANDS_DAYS)
        return records[:sample_size], strata
    oldest = now - timedelta(days=RETENTION_DAYS)
    where = (
        "d.status = 'succeeded' AND d.masked_predicates IS NULL"
        " AND d.completed_at >= ? AND d.completed_at < ?"
    )
    band_params: list[Any] = [now] * len(AGE_BANDS_DAYS)
    params: list[Any] = [oldest, now]
    if tenant is not None:
        where += " AND d.tenant = ?"
        params.append(tenant)
    strata_rows = store.fetch(
        f"SELECT count(DISTINCT (d.tenant, d.ruleset_name, d.ruleset_version, {_band_sql()}))"
        f" FROM decisions d WHERE {where}",
        [*band_params, *params],
    )
    strata = int(strata_rows[0][0]) if strata_rows else 0
    if strata == 0:
        return [], 0
    per = max(1, math.ceil(sample_size / strata))
    rows = store.fetch(
        f"SELECT * EXCLUDE (rn) FROM (SELECT {_COLS}, row_number() OVER (PARTITION BY d.tenant,"
        f" d.ruleset_name, d.ruleset_version, {_band_sql()} ORDER BY sha256(d.decision_id || ?)) AS rn"
        f" FROM decisions d WHERE {where}) WHERE rn <= ? ORDER BY decision_id",
        [*band_params, seed, *params, per],
    )
    records = [row_to_decision(_from_native(DECISIONS_TABLE, values)) for values in rows]
    return records[:sample_size], strata


def run(
    store: DuckDBAuditStore | BigQueryAuditStore,
    *,
    sample_size: int = 100,
    now: datetime | None = None,
    seed: str | None = None,
    tenant: str | None = None,
) -> CanaryReport:
    now = now or datetime.now(UTC)
    seed = seed or now.strftime("%Y-%m-%d")
    report = CanaryReport(run_id="can_" + secrets.token_hex(6), engine_version=reasoning.ENGINE_VERSION)
    sampled, report.strata = sample(store, now, sample_size, seed, tenant)
    compiled: dict[tuple[str, str, int], reasoning.Ruleset | str] = {}
    checked_at = format_timestamp(datetime.now(UTC))
    records: list[dict[str, Any]] = []
    for record in sampled:
        report.sampled += 1
        ref = record.ruleset
        key = (record.tenant, ref.name, ref.version)
        if key not in compiled:
            stored = store.get_ruleset(record.tenant, ref.name, ref.version)
            if stored is None:
                compiled[key] = f"ruleset {ref.name}@{ref.version} is not in the audit store"
            else:
                try:
                    compiled[key] = reasoning.compile(stored.source, f"{ref.name}.lp")
                except reasoning.EntailError as exc:
                    compiled[key] = f"the stored ruleset no longer compiles: {exc}"
        ruleset = compiled[key]
        detail: dict[str, Any]
        replay_hash: str | None = None
        if isinstance(ruleset, str):
            detail = {"error": ruleset}
        else:
            try:
                result = ruleset.evaluate(record.facts or {}, record.query, explain=record.explain)
            except reasoning.EntailError as exc:
                detail = {"error": f"{exc.code}: {exc}"}
            else:
                replay_hash = result.result_hash
                if replay_hash == record.result_hash:
                    report.matched += 1
                    continue
                before = {q["query"]: {a["atom"] for a in q["answers"]} for q in record.answers or []}
                diff = []
                for q in result.answers:
                    now_atoms = {a.atom for a in q.answers}
                    old = before.get(q.query, set())
                    if now_atoms != old:
                        diff.append(
                            {
                                "query": q.query,
                                "added": sorted(now_atoms - old),
                                "removed": sorted(old - now_atoms),
                            }
                        )
                detail = {"diff": diff}
        mismatch = {
            "run_id": report.run_id,
            "decision_id": record.decision_id,
            "tenant": record.tenant,
            "ruleset_name": ref.name,
            "ruleset_version": ref.version,
            "original_engine_version": record.engine_version,
            "replay_engine_version": reasoning.ENGINE_VERSION,
            "original_result_hash": record.result_hash,
            "replay_result_hash": replay_hash,
            "detail": json.dumps(detail, sort_keys=True),
            "checked_at": checked_at,
        }
        records.append(mismatch)
        report.mismatches.append({**mismatch, "detail": detail})
        log.warning(
            json.dumps({"event": "canary_mismatch", **{k: v for k, v in mismatch.items() if k != "detail"}})
        )
    if records:
        store.write_rows("canary_mismatches", records)
    return report


def mismatches(store: DuckDBAuditStore | BigQueryAuditStore, *, limit: int = 100) -> list[dict[str, Any]]:
    if not isinstance(store, DuckDBAuditStore):
        from .bigquery_trail import canary_mismatches

        return canary_mismatches(store, limit)
    keys = CANARY_MISMATCHES_TABLE.column_names
    found = store.fetch(
        f"SELECT {', '.join(keys)} FROM canary_mismatches ORDER BY checked_at DESC LIMIT ?",
        [limit],
    )
    out = []
    for values in found:
        row = dict(zip(keys, values, strict=True))
        row["detail"] = json.loads(row["detail"])
        row["checked_at"] = format_timestamp(row["checked_at"])
        out.append(row)
    return out
