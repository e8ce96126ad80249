"""``entail.row.v2``: the dataset versions a decision read are in its audit row and
its leaf; rows that read none keep their v1 bytes, so roots signed over v1 rows
(files from before the column existed) still verify, and the standalone
verifier checks both kinds."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from trail_support import DAY, GRACE, NOON, decision, filled_store, later

from entail.audit import DuckDBAuditStore, roots
from entail.audit.export import export
from entail.audit.row_encoding import V1, V2, encode_row, encoding_sql
from entail.audit.schema import DECISIONS_TABLE, decision_to_row, row_to_decision
from entail.audit.signing import LocalEd25519Signer
from entail.models import DatasetRef

VERIFIER = Path(__file__).resolve().parents[3] / "tools" / "audit_verifier" / "verify.py"
ORG = DatasetRef(binding="org", name="orgchart", version=3, hash="a" * 64)
RATES = DatasetRef(binding="rates", name="rates", version=1, hash="b" * 64)


def with_datasets(i: int) -> object:
    return decision(i, NOON + timedelta(minutes=i)).model_copy(update={"datasets": [ORG, RATES]})


def test_a_row_that_read_datasets_is_v2_and_one_that_did_not_keeps_v1_bytes() -> None:
    plain = decision_to_row(decision(1, NOON), inserted_at="2026-11-20T13:00:00.000Z")
    assert plain["datasets"] is None
    v1 = encode_row(plain)
    head, body = v1.split(b"\n", 1)
    assert head.decode() == V1 and "datasets" not in json.loads(body)
    # the same row as a store from before the column returns it: the same bytes
    assert encode_row({k: v for k, v in plain.items() if k != "datasets"}) == v1

    record = with_datasets(2)
    row = decision_to_row(record, inserted_at="2026-11-20T13:00:00.000Z")  # type: ignore[arg-type]
    v2 = encode_row(row)
    head, body = v2.split(b"\n", 1)
    assert head.decode() == V2
    assert json.loads(body)["datasets"] == [r.model_dump() for r in (ORG, RATES)]
    # a changed version is a changed leaf
    other = dict(row, datasets=row["datasets"].replace('"version":3', '"version":4'))
    assert encode_row(other) != v2
    # and the row reads back as the record's datasets
    assert row_to_decision(row).datasets == [ORG, RATES]


def test_duckdb_encodes_both_kinds_as_the_python_reference() -> None:
    store = filled_store(4)
    try:
        store.insert_decisions([with_datasets(i) for i in range(10, 13)])  # type: ignore[list-item]
        cols = ", ".join(f'"{c}"' for c in DECISIONS_TABLE.column_names)
        found = store.fetch(f"SELECT {encoding_sql()}, {cols} FROM decisions ORDER BY decision_id")
        heads = set()
        for sql_encoding, *values in found:
            row = store_row(store, values)
            assert sql_encoding is not None
            assert sql_encoding.encode() == encode_row(row)
            heads.add(sql_encoding.split("\n", 1)[0])
        assert heads == {V1, V2}
    finally:
        store.close()


def store_row(store: DuckDBAuditStore, values: list[object]) -> dict[str, object]:
    from entail.audit.roots import _from_native  # the store's own decoding of a fetched row

    return _from_native(DECISIONS_TABLE, tuple(values))


def run_verifier(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(VERIFIER), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_roots_over_v1_rows_still_verify_after_the_migration_then_v2_roots_join(tmp_path: Path) -> None:
    path = tmp_path / "audit.duckdb"
    signer = LocalEd25519Signer(tmp_path / "keys")
    old = filled_store(6, path=path)
    assert roots.build_roots(old, signer, now=later(), grace=GRACE)  # over rows without datasets: v1 leaves
    # a file from before the column: the rows and the root as that version wrote them
    old.execute("DROP INDEX decisions_tenant_completed")  # (DuckDB alters no indexed table)
    old.execute("ALTER TABLE decisions DROP COLUMN datasets")
    assert "datasets" not in {
        str(c)
        for (c,) in old.fetch("SELECT column_name FROM duckdb_columns() WHERE table_name = 'decisions'")
    }
    old.close()
    store = DuckDBAuditStore(path)  # the store adds the column (NULL for the old rows)
    try:
        assert roots.verify_day(store, signer.keyring, "acme", DAY).ok
        # decisions that read datasets: a later root, v2 leaves
        store.insert_decisions([with_datasets(i) for i in range(20, 23)])  # type: ignore[list-item]
        built = roots.build_roots(store, signer, now=later(), grace=GRACE)
        assert [b.leaf_count for b in built] == [3]
        report = roots.verify_day(store, signer.keyring, "acme", DAY)
        assert report.ok and report.rows == 9, report.to_json()
        # tampering with the datasets a decision recorded is caught and named
        store.execute(
            "UPDATE decisions SET datasets ="
            " replace(datasets::VARCHAR, '\"version\":3', '\"version\":4')::JSON"
            " WHERE decision_id = 'dec_acme_0000021'"
        )
        tampered = roots.verify_day(store, signer.keyring, "acme", DAY).to_json()
        assert tampered["first_mismatch"]["decision_id"] == "dec_acme_0000021"
        store.execute(
            "UPDATE decisions SET datasets ="
            " replace(datasets::VARCHAR, '\"version\":4', '\"version\":3')::JSON"
            " WHERE decision_id = 'dec_acme_0000021'"
        )
        assert roots.verify_day(store, signer.keyring, "acme", DAY).ok

        # the standalone verifier: a v2 inclusion proof, a v1 one, and the whole export
        key = tmp_path / "key.pem"
        key.write_text(signer.public_key_pem())
        for decision_id, head in (("dec_acme_0000021", V2), ("dec_acme_0000002", V1)):
            proof = roots.inclusion(store, "acme", decision_id)
            assert proof is not None and proof["row_encoding"].startswith(head + "\n")
            doc = tmp_path / f"{decision_id}.json"
            doc.write_text(json.dumps(proof))
            ok = run_verifier("inclusion", str(doc), "--key", str(key))
            assert ok.returncode == 0, ok.stdout + ok.stderr
        out = tmp_path / "export"
        export(store, signer.keyring, "acme", DAY, DAY, out)
        ok = run_verifier("export", str(out), "--keys", str(out / "keys"))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "2 signed root(s) verified over 9 of 9" in ok.stdout
        # a v2 row passed off as v1 (its datasets dropped) fails
        lines = (out / "rows.jsonl").read_text(encoding="utf-8").splitlines()
        i = next(n for n, line in enumerate(lines) if '"datasets"' in line)
        doc = json.loads(lines[i])
        del doc["datasets"]
        lines[i] = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        (out / "rows.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        failed = run_verifier("export", str(out), "--keys", str(out / "keys"))
        assert failed.returncode == 1 and "FAILED" in failed.stdout
    finally:
        store.close()
