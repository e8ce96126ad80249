"""The audit trail (issue 18) on both audit-store adapters: the local DuckDB store
and the BigQuery store on bqemulator, with the same inputs and expectations —
the trail half of the store contract (test_store_contract.py).

Roots are built for *yesterday* (UTC, from the clock): the BigQuery root job
looks back a bounded number of days, so fixed dates would age out of it.
Tampering is done with each store's own SQL (an UPDATE, a DELETE, an INSERT of
a copied row), as an insider with write access to the table would."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from trail_support import decision, ruleset_record

from entail.audit import DuckDBAuditStore, canary, holds, merkle, roots
from entail.audit import provenance_query as pq
from entail.audit.bigquery_store import BigQueryAuditStore
from entail.audit.provenance import fact_hash
from entail.audit.row_encoding import encode_row
from entail.audit.schema import RETENTION_DAYS, decision_to_row
from entail.audit.signing import Keyring, LocalEd25519Signer, verify_signature
from entail.models import DecisionRecord

Store = DuckDBAuditStore | BigQueryAuditStore
NO_GRACE = timedelta(0)


@pytest.fixture(params=["duckdb", "bigquery"])
def audit(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "bigquery":
        yield request.getfixturevalue("bigquery_store")  # tests/integration/conftest.py: a fresh dataset
        return
    local = DuckDBAuditStore()
    yield local
    local.close()


@pytest.fixture
def signer(tmp_path: Path) -> LocalEd25519Signer:
    return LocalEd25519Signer(tmp_path / "keys")


def yesterday() -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=1) + timedelta(hours=9)


DAY = yesterday().date().isoformat()


def fill(store: Store, n: int = 6, *, at: datetime | None = None, start: int = 0) -> list[DecisionRecord]:
    at = at or yesterday()
    records = [decision(i, at + timedelta(minutes=i), explain=i % 4 != 1) for i in range(start, start + n)]
    assert store.insert_decisions(records).inserted == n
    return records


def build(store: Store, signer: LocalEd25519Signer) -> list[tuple[str, int, int]]:
    time.sleep(0.005)  # the rows' inserted_at lie before the cutoff's millisecond
    return [(b.day, b.seq, b.leaf_count) for b in roots.build_roots(store, signer, grace=NO_GRACE)]


def verify(store: Store, signer: LocalEd25519Signer) -> dict[str, Any]:
    return roots.verify_day(store, signer.keyring, "acme", DAY).to_json()


def run_sql(store: Store, duckdb_sql: str, bigquery_sql: str) -> None:
    """One tampering statement, in each store's SQL (``{t}`` is the decisions table)."""
    if isinstance(store, DuckDBAuditStore):
        store.execute(duckdb_sql.format(t="decisions"))
    else:
        store.dml(bigquery_sql.format(t=f"`{store.table_id('decisions')}`"), {})


# --- tamper evidence -----------------------------------------------------------------


def test_roots_are_built_once_and_verify(audit: Store, signer: LocalEd25519Signer) -> None:
    fill(audit)
    assert build(audit, signer) == [(DAY, 0, 6)]
    assert build(audit, signer) == []  # idempotent
    report = verify(audit, signer)
    assert report["ok"] and report["rows"] == 6 and report["first_mismatch"] is None


def test_an_edit_a_delete_and_an_insert_are_each_named(audit: Store, signer: LocalEd25519Signer) -> None:
    fill(audit)
    build(audit, signer)
    since = "completed_at >= TIMESTAMP '2000-01-01'"  # BigQuery wants a partition filter
    run_sql(
        audit,
        "UPDATE {t} SET result_hash = 'forged' WHERE decision_id = 'dec_acme_0000004'",
        "UPDATE {t} SET result_hash = 'forged' WHERE decision_id = 'dec_acme_0000004' AND " + since,
    )
    report = verify(audit, signer)
    assert not report["ok"]
    assert (report["first_mismatch"]["kind"], report["first_mismatch"]["decision_id"]) == (
        "edited",
        "dec_acme_0000004",
    )
    run_sql(
        audit,
        "DELETE FROM {t} WHERE decision_id = 'dec_acme_0000002'",
        "DELETE FROM {t} WHERE decision_id = 'dec_acme_0000002' AND " + since,
    )
    run_sql(
        audit,
        "INSERT INTO {t} SELECT * REPLACE ('dec_acme_0000003x' AS decision_id) FROM {t}"
        " WHERE decision_id = 'dec_acme_0000003'",
        "INSERT INTO {t} SELECT * REPLACE ('dec_acme_0000003x' AS decision_id) FROM {t}"
        " WHERE decision_id = 'dec_acme_0000003' AND " + since,
    )
    found = {(p["kind"], p["decision_id"]) for p in verify(audit, signer)["problems"]}
    assert found == {
        ("deleted", "dec_acme_0000002"),
        ("inserted", "dec_acme_0000003x"),
        ("edited", "dec_acme_0000004"),
    }


def test_late_rows_get_a_supplementary_root_and_old_keys_still_verify(
    audit: Store, signer: LocalEd25519Signer, tmp_path: Path
) -> None:
    fill(audit, 4)
    assert build(audit, signer) == [(DAY, 0, 4)]
    old = signer.key_id
    signer.rotate()
    fill(audit, 2, start=10)  # a redelivery after midnight: same day, inserted later
    assert verify(audit, signer)["pending"] == 2
    assert build(audit, signer) == [(DAY, 1, 2)]
    report = verify(audit, signer)
    assert report["ok"] and (report["roots"], report["rows"], report["pending"]) == (2, 6, 0)
    # a process that has only the public keys verifies both roots, old key and new
    assert old != signer.key_id
    assert roots.verify_day(audit, Keyring(tmp_path / "keys" / "public"), "acme", DAY).ok


def test_an_inclusion_proof_checks_against_the_signed_root(audit: Store, signer: LocalEd25519Signer) -> None:
    records = fill(audit, 5)
    build(audit, signer)
    proof = roots.inclusion(audit, "acme", "dec_acme_0000003")
    assert proof is not None and (proof["leaf_index"], proof["tree_size"]) == (3, 5)
    encoding = proof["row_encoding"]
    # the leaf is the documented encoding of the stored row, the same bytes on every adapter
    inserted_at = json.loads(encoding.split("\n", 1)[1])["inserted_at"]
    assert encoding.encode() == encode_row(decision_to_row(records[3], inserted_at=inserted_at))
    leaf = merkle.leaf_hash(encoding.encode())
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    root = merkle.root_from_proof(leaf, proof["leaf_index"], proof["tree_size"], path)
    assert root.hex() == proof["root"]["root_hash"] == json.loads(proof["root"]["statement"])["root_hash"]
    public = signer.keyring.get(proof["root"]["key_id"])
    assert public is not None and verify_signature(
        proof["root"]["algorithm"],
        public,
        proof["root"]["statement"].encode(),
        base64.b64decode(proof["root"]["signature"]),
    )
    assert roots.inclusion(audit, "acme", "dec_nope") is None
    assert roots.inclusion(audit, "other", "dec_acme_0000003") is None  # tenant-isolated


# --- reverse provenance ----------------------------------------------------------------


def test_provenance_queries_answer_alike(audit: Store) -> None:
    records = fill(audit, 9)
    start, end = yesterday() - timedelta(hours=1), yesterday() + timedelta(hours=1)
    declined = sorted((r.decision_id for r in records if int(r.decision_id[-2:]) % 3 == 0), reverse=True)

    def ids(**kw: Any) -> list[str]:
        items, _ = pq.search(audit, pq.build_query("acme", start, end, **kw), page_size=100)
        return [i["decision_id"] for i in items]

    assert ids(reason_code="high_dti") == declined
    explained = [d for d in declined if int(d[-2:]) % 4 != 1]
    assert ids(ruleset_name="loan", ruleset_version=1, rule=8) == explained
    debt = 'debt("app3",4000000,"card")'
    assert ids(fact=debt) == ["dec_acme_0000003"] == ids(fact=fact_hash(debt))
    assert ids(reason_code="no_such_code") == []
    # pages: every match once, newest first
    q = pq.build_query("acme", start, end, reason_code="high_dti")
    first, token = pq.search(audit, q, page_size=2)
    assert token is not None
    rest, end_token = pq.search(audit, q, page_size=100, page_token=token)
    assert [i["decision_id"] for i in first + rest] == declined and end_token is None
    assert first[0]["ruleset"] == {"name": "loan", "version": 1} and first[0]["reason_codes"]


# --- the determinism canary -------------------------------------------------------------


def test_the_canary_samples_alike_and_records_a_mismatch(audit: Store) -> None:
    audit.put_ruleset(ruleset_record())
    fill(audit, 8)
    now = datetime.now(UTC)
    sampled, strata = canary.sample(audit, now, 4, "seed")
    assert strata == 1
    # the same pick on every adapter: SHA-256 of (id, seed), in hex order
    import hashlib

    expected = sorted(
        sorted(
            (f"dec_acme_{i:07d}" for i in range(8)),
            key=lambda d: hashlib.sha256((d + "seed").encode()).hexdigest(),
        )[:4]
    )
    assert [r.decision_id for r in sampled] == expected
    clean = canary.run(audit, sample_size=8, now=now, seed="s")
    assert (clean.sampled, clean.matched, clean.mismatches) == (8, 8, [])
    run_sql(
        audit,
        "UPDATE {t} SET result_hash = 'stale' WHERE decision_id = 'dec_acme_0000005'",
        "UPDATE {t} SET result_hash = 'stale' WHERE decision_id = 'dec_acme_0000005'"
        " AND completed_at >= TIMESTAMP '2000-01-01'",
    )
    report = canary.run(audit, sample_size=8, now=now, seed="s")
    assert [m["decision_id"] for m in report.mismatches] == ["dec_acme_0000005"]
    recorded = canary.mismatches(audit)
    assert [(m["decision_id"], m["original_result_hash"], m["run_id"]) for m in recorded] == [
        ("dec_acme_0000005", "stale", report.run_id)
    ]
    assert recorded[0]["replay_result_hash"] and recorded[0]["detail"] == {"diff": []}


# --- legal holds ------------------------------------------------------------------------


def test_holds_are_placed_released_and_audited(audit: Store) -> None:
    tenant_hold = holds.place(audit, "acme", "tenant", reason="matter 1", actor="legal@acme")
    ids_hold = holds.place(
        audit, "acme", "decisions", reason="matter 2", actor="legal@acme", decision_ids=["dec_b", "dec_a"]
    )
    assert ids_hold.decision_ids == ["dec_a", "dec_b"]
    assert holds.get(audit, "acme", tenant_hold.hold_id) == tenant_hold
    assert holds.get(audit, "other", tenant_hold.hold_id) is None
    released = holds.release(audit, "acme", tenant_hold.hold_id, actor="legal@acme", reason="closed")
    assert released.released_at is not None and released.released_by == "legal@acme"
    assert [h.hold_id for h in holds.list_holds(audit, "acme", in_force_only=True)] == [ids_hold.hold_id]
    with pytest.raises(KeyError):
        holds.release(audit, "acme", tenant_hold.hold_id, actor="x", reason="again")
    events = holds.events(audit, "acme")
    assert [(e["hold_id"], e["action"]) for e in events] == [
        (tenant_hold.hold_id, "hold"),
        (ids_hold.hold_id, "hold"),
        (tenant_hold.hold_id, "release"),
    ]
    assert events[2]["detail"] == {"reason": "closed"}


def test_expiry_keeps_held_rows(audit: Store) -> None:
    old = datetime.now(UTC) - timedelta(days=RETENTION_DAYS + 3)
    fill(audit, 3, at=old)
    holds.place(audit, "acme", "decisions", reason="m", actor="a", decision_ids=["dec_acme_0000001"])
    assert audit.expire(datetime.now(UTC)) == 2
    assert audit.get_decision("acme", "dec_acme_0000001") is not None
    assert audit.get_decision("acme", "dec_acme_0000000") is None


def test_bigquery_copies_held_rows_before_their_partition_expires(bigquery_store: BigQueryAuditStore) -> None:
    """Partition expiration drops whole days without asking: the daily job copies
    the rows a hold covers out of partitions within 30 days of expiry."""
    from entail.audit.bigquery_trail import keep_held

    store = bigquery_store
    near = datetime.now(UTC) - timedelta(days=RETENTION_DAYS - 10)
    fill(store, 3, at=near)
    fill(store, 2, at=datetime.now(UTC) - timedelta(days=2), start=10)  # far from expiry
    holds.place(
        store,
        "acme",
        "decisions",
        reason="m",
        actor="a",
        decision_ids=["dec_acme_0000001", "dec_acme_0000010"],
    )
    holds.place(store, "other", "tenant", reason="m", actor="a")  # another tenant's hold covers nothing here
    assert keep_held(store) == 1
    assert keep_held(store) == 0  # idempotent
    copied = store.query(f"SELECT decision_id FROM `{store.table_id('held_decisions')}`", {})
    assert [r["decision_id"] for r in copied] == ["dec_acme_0000001"]


def test_bigquery_numbers_a_root_past_the_orphan_leaves_of_a_failed_run(
    bigquery_store: BigQueryAuditStore, signer: LocalEd25519Signer
) -> None:
    """Leaves are streamed before their root: a run that died in between left
    leaves under seq 0 and no root. The next run signs seq 1, and verification
    and inclusion proofs read only leaves that have a root."""
    store = bigquery_store
    fill(store, 3)
    store.write_rows(
        "audit_leaves",
        [
            {
                "tenant": "acme",
                "day": DAY,
                "seq": 0,
                "position": 0,
                "decision_id": "dec_x",
                "leaf_hash": "00" * 32,
            }
        ],
    )
    assert build(store, signer) == [(DAY, 1, 3)]
    report = verify(store, signer)
    assert report["ok"] and (report["roots"], report["rows"]) == (1, 3)
    proof = roots.inclusion(store, "acme", "dec_acme_0000001")
    assert proof is not None and (proof["seq"], proof["tree_size"]) == (1, 3)
    assert roots.inclusion(store, "acme", "dec_x") is None
