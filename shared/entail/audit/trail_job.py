"""The scheduled trail jobs (docs/audit.md), one call each, for any audit store:

- :func:`roots_job` — daily after midnight UTC: build and sign the roots that are
  due (yesterday's, plus supplementary roots for late rows, roots.py), publish
  every root built in the last :data:`REPUBLISH_WINDOW` (publish.py: a run that
  failed after building publishes them the next time; an object already there is
  left alone), and on BigQuery copy the held rows of partitions near their expiry
  to ``held_decisions`` (bigquery_trail.keep_held) — the hold mechanics ride on
  the daily job rather than a separate scheduled query, so they share its
  service account, its logs and its failure alert.
- :func:`canary_job` — daily: the determinism canary (canary.py).

``functions/trail_roots`` calls them in the cloud (Cloud Scheduler → the function,
OIDC); ``entail audit roots [--publish DIR]`` and ``entail canary`` locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import canary, roots
from .duckdb_store import DuckDBAuditStore
from .publish import RootPublisher, publish_roots, recent_roots

if TYPE_CHECKING:
    from .bigquery_store import BigQueryAuditStore
    from .signing import Signer

REPUBLISH_WINDOW = timedelta(hours=48)


@dataclass
class TrailResources:
    """What the trail jobs work with (``entail.bootstrap.open_trail``)."""

    store: DuckDBAuditStore | BigQueryAuditStore
    signer: Signer
    publisher: RootPublisher | None

    def close(self) -> None:
        self.store.close()
        close = getattr(self.publisher, "close", None)
        if close is not None:
            close()


def roots_job(
    res: TrailResources,
    *,
    grace: timedelta = roots.DEFAULT_GRACE,
    now: datetime | None = None,
    tenant: str | None = None,
) -> dict[str, Any]:
    """Build, sign, publish; keep held rows (BigQuery). A summary for the log."""
    built = roots.build_roots(res.store, res.signer, now=now, grace=grace, tenant=tenant)
    summary: dict[str, Any] = {
        "key_id": res.signer.key_id,
        "built": [
            {
                "tenant": b.tenant,
                "day": b.day,
                "seq": b.seq,
                "leaf_count": b.leaf_count,
                "root_hash": b.root_hash,
            }
            for b in built
        ],
    }
    if res.publisher is not None:
        since = datetime.now(UTC) - REPUBLISH_WINDOW
        recent = [r for r in recent_roots(res.store, since) if tenant is None or r["tenant"] == tenant]
        summary["published"] = publish_roots(res.publisher, recent).to_json()
    if not isinstance(res.store, DuckDBAuditStore):  # local expiry consults the holds itself
        from .bigquery_trail import keep_held

        summary["held_rows_copied"] = keep_held(res.store)
    return summary


def canary_job(
    res: TrailResources, *, sample_size: int, seed: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    return canary.run(res.store, sample_size=sample_size, seed=seed, now=now).to_json()
