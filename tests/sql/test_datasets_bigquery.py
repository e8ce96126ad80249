"""Datasets on the SQL path in BigQuery (bqemulator): a dataset predicate is its
per-predicate table (``entail.reasoning.sql.dataset_tables``) filtered on ``version``,
read in place, and the model is the online engine's (and clingo's) with the
dataset's facts given as facts.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from differential.clingo_ref import clingo_all_atoms
from differential.programs import SETTINGS, Program, stratified_programs
from hypothesis import HealthCheck, Phase, given, settings

from entail import reasoning
from entail.reasoning.sql import run_batch
from entail.reasoning.sql.bigquery_backend import BigQueryBackend
from entail.reasoning.sql.datasets import DatasetTypeMismatch, bigquery_dataset
from entail.reasoning.terms import Const

from .bigquery_harness import load_facts_bigquery
from .dataset_fixtures import column_types, content_hash, facts_text, write_bigquery_version
from .harness import atoms, read_outputs
from .test_datasets_sql import EXPENSE_FACTS, EXPENSES, ORG_ARITIES, ORG_TYPES, ORGCHART, split

RANDOM_EXAMPLES = 2  # about 10 s each on the emulator (busy cores)


def _run(client: Any, source: str, case: dict[str, list[list[Any]]], datasets: list[Any], tag: str) -> Any:
    rs = reasoning.compile(source)
    inputs, work, dest = f"in_{tag}", f"work_{tag}", f"out_{tag}"
    client.create_dataset(inputs, retry=None)
    mapping = load_facts_bigquery(client, inputs, case, dict(rs.analysis.signatures))
    backend = BigQueryBackend(client, work_dataset=work, dest_dataset=dest, retry=None)
    manifest = run_batch(rs, backend, mapping, outputs=list(rs.analysis.signatures), datasets=datasets)
    return read_outputs(backend, manifest), manifest, backend


def _cleanup(client: Any, tag: str) -> None:
    for ds in (f"in_{tag}", f"work_{tag}", f"out_{tag}", f"ref_{tag}"):
        client.delete_dataset(ds, delete_contents=True, not_found_ok=True, retry=None)


@pytest.mark.slow
def test_org_chart_on_bigquery_reads_only_the_bound_version(bq_client: Any) -> None:
    tag = uuid.uuid4().hex[:10]
    ref = f"ref_{tag}"
    client = bq_client
    client.create_dataset(ref, retry=None)
    try:
        # version 1: bob manages nobody; version 2 is ORGCHART (both in the same tables)
        old = {"manages": [["alice", "carol"]], "limit": [["alice", 1]]}
        write_bigquery_version(client, ref, "acme", "orgchart", 1, old, ORG_ARITIES)
        write_bigquery_version(client, ref, "acme", "orgchart", 2, ORGCHART, ORG_ARITIES)
        declared = [((p, ORG_ARITIES[p]), ORG_TYPES[p]) for p in ("manages", "limit")]
        digest = content_hash(ORGCHART, ORG_ARITIES)
        dataset = bigquery_dataset(
            "orgchart",
            declared,
            project=client.project,
            dataset=ref,
            tenant="acme",
            name="orgchart",
            version=2,
            hash=digest,
        )
        # the employee a constant: the harness writes a table with a mixed column as clingo
        # text, so one more row (0, 0, -1) makes it mixed
        dave, carol = Const("dave"), Const("carol")
        case = {"expense": [["e1", dave, 40], ["e2", dave, 5000], ["e3", carol, 900], [0, 0, -1]]}
        model, manifest, _ = _run(client, EXPENSES, case, [dataset], tag)
        names = {n for n, _ in reasoning.compile(EXPENSES).analysis.signatures}
        rs = reasoning.compile(
            EXPENSES + facts_text(ORGCHART, ORG_TYPES) + EXPENSE_FACTS + "expense(0, 0, -1).\n"
        )
        expected = sorted(a for a in rs.evaluate({}).model_atoms() if a.split("(")[0] in names)
        assert 'may_approve("e1",carol)' in expected
        assert atoms(model) == expected
        assert "above(alice,dave)" in expected  # version 2's chain, not version 1's
        (used,) = manifest.to_json()["datasets"]
        assert (used["name"], used["version"], used["hash"]) == ("orgchart", 2, digest)
        assert used["predicates"]["manages/2"]["rows"] == 3
        assert "version = 2" in used["predicates"]["manages/2"]["relation"]
        # the dry-run estimate covers the dataset tables too (bqemulator: logical size)
        assert manifest.to_json()["jobs"]["estimated_bytes"] > 0
        # the views are dropped with the run's working tables
        assert not list(client.list_tables(f"work_{tag}", retry=None))
    finally:
        _cleanup(client, tag)


@pytest.mark.slow
def test_type_mismatch_on_bigquery(bq_client: Any) -> None:
    tag = uuid.uuid4().hex[:10]
    client = bq_client
    client.create_dataset(f"ref_{tag}", retry=None)
    try:
        facts = {"limit": [["bob", "lots"], ["Bob", 3], ["o'neil", 4]]}
        write_bigquery_version(client, f"ref_{tag}", "acme", "org", 1, facts, {"limit": 2})
        dataset = bigquery_dataset(
            "org",
            [(("limit", 2), ("any", "int"))],
            project=client.project,
            dataset=f"ref_{tag}",
            tenant="acme",
            name="org",
            version=1,
            hash="h",
        )
        with pytest.raises(
            DatasetTypeMismatch, match=r"column 2 \(declared int\): 'lots' is not a 32-bit integer"
        ):
            _run(client, "ok(P) :- limit(P, _).\n", {}, [dataset], tag)
        # a const column: "Bob" is no constant's name ("o'neil" is)
        dataset = bigquery_dataset(
            "org",
            [(("limit", 2), ("const", "any"))],
            project=client.project,
            dataset=f"ref_{tag}",
            tenant="acme",
            name="org",
            version=1,
            hash="h",
        )
        with pytest.raises(
            DatasetTypeMismatch, match=r"column 1 \(declared const\): 'Bob' is not a constant"
        ):
            _run(client, "ok(P) :- limit(P, _).\n", {}, [dataset], f"{tag}b")
    finally:
        _cleanup(client, f"{tag}b")
        _cleanup(client, tag)


NO_SHRINK = settings(
    SETTINGS,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@pytest.mark.slow
@settings(NO_SHRINK, max_examples=RANDOM_EXAMPLES)
@given(stratified_programs())
def test_random_programs_with_reference_facts_on_bigquery(bq_client: Any, program: Program) -> None:
    reference, case, arities = split(program)
    tag = uuid.uuid4().hex[:10]
    client = bq_client
    client.create_dataset(f"ref_{tag}", retry=None)
    try:
        write_bigquery_version(client, f"ref_{tag}", "t", "ref", 1, reference, arities)
        declared = [((p, arities[p]), column_types(rows, arities[p])) for p, rows in reference.items()]
        dataset = bigquery_dataset(
            "ref",
            declared,
            project=client.project,
            dataset=f"ref_{tag}",
            tenant="t",
            name="ref",
            version=1,
            hash="h",
        )
        names = set(arities)
        expected = [a for a in clingo_all_atoms(program.source, program.facts) if a.split("(")[0] in names]
        try:
            model, _, _ = _run(client, program.source, case, [dataset], tag)
        except Exception as error:
            pytest.fail(f"the SQL path raised {type(error).__name__}: {error}\n{program.describe()}")
        actual = atoms(model)
        assert actual == expected, (
            f"{program.describe()}reference: {sorted(reference)}\n"
            f"missing: {sorted(set(expected) - set(actual))}\nextra: {sorted(set(actual) - set(expected))}"
        )
    finally:
        _cleanup(client, tag)
