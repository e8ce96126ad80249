"""Reverse provenance from real proofs (rules, base facts, reason codes), the
provenance query with its validation and paging, provenance combined with
impact, legal holds against expiry, and the trail CLI end to end."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from trail_support import DAY, NOON, SOURCE, decision, filled_store

from entail.audit import RETENTION_DAYS, DuckDBAuditStore, holds
from entail.audit import provenance_query as pq
from entail.audit.provenance import fact_hash, normalize_atom, of_answers
from entail.cli import main

START, END = "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"


def test_columns_come_from_the_proofs() -> None:
    explained = decision(3, NOON)  # high debt: declined for high_dti
    p = of_answers(explained.answers, explain=True)
    assert p.rule_ids is not None and " 8 " in p.rule_ids  # reason(A, high_dti) :- dti(A, R), R > 40.
    assert p.reason_codes == " declined high_dti "
    debt = fact_hash('debt("app3",4000000,"card")')
    assert p.fact_hashes is not None and f" {debt} " in p.fact_hashes
    plain = decision(4, NOON, explain=False)
    q = of_answers(plain.answers, explain=False)
    assert (q.rule_ids, q.fact_hashes, q.reason_codes) == (None, None, " approved ")
    assert of_answers(None, explain=True).rule_ids is None
    assert normalize_atom(' p( "a b" , 1 ) ') == 'p("a b",1)'


def test_queries_by_rule_fact_and_reason_code() -> None:
    store = filled_store(12)  # i % 4 == 1 unexplained; i % 3 == 0 declined (high_dti)
    declined = sorted(f"dec_acme_{i:07d}" for i in range(12) if i % 3 == 0)
    explained_declined = sorted(d for d in declined if int(d[-2:]) % 4 != 1)

    def ids(**criteria: object) -> list[str]:
        items, _ = pq.search(store, pq.build_query("acme", START, END, **criteria))  # type: ignore[arg-type]
        return sorted(i["decision_id"] for i in items)

    assert ids(reason_code="high_dti") == declined  # cited with or without a proof
    assert ids(ruleset_name="loan", ruleset_version=1, rule=8) == explained_declined
    assert ids(ruleset_name="loan", ruleset_version=2, rule=8) == []
    assert ids(fact='debt("app3",4000000,"card")') == ["dec_acme_0000003"]
    assert ids(fact=fact_hash('debt("app3",4000000,"card")')) == ["dec_acme_0000003"]
    assert ids(reason_code="high_dti", ruleset_name="loan", ruleset_version=1, rule=8) == explained_declined
    # other tenants see nothing
    items, _ = pq.search(store, pq.build_query("globex", START, END, reason_code="high_dti"))
    assert items == []
    # pages
    q = pq.build_query("acme", START, END, reason_code="high_dti")
    first, token = pq.search(store, q, page_size=2)
    assert token is not None
    second, _ = pq.search(store, q, page_size=2, page_token=token)
    assert {i["decision_id"] for i in first}.isdisjoint({i["decision_id"] for i in second})
    other = pq.build_query("acme", START, END, reason_code="approved")
    with pytest.raises(ValueError, match="page token"):
        pq.search(store, other, page_token=token)


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ({}, "at least one"),
        ({"rule": 3}, "give ruleset and version"),
        ({"reason_code": "a b"}, "not a rule index"),
        ({"fact": "  "}, "empty"),
    ],
)
def test_invalid_queries_say_why(criteria: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pq.build_query("acme", START, END, **criteria)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty time range"):
        pq.build_query("acme", END, START, reason_code="x")


def test_provenance_with_impact_reruns_the_matches_with_a_fix() -> None:
    store = filled_store(6)
    items, _ = pq.search(store, pq.build_query("acme", START, END, reason_code="high_dti"))
    fixed = SOURCE.replace("reason(A, high_dti)        :- dti(A, R), R > 40.", "")
    assert fixed != SOURCE
    out = pq.rerun(store, "acme", items, fixed)
    assert out["rerun"] == 2 and out["changed"] == 2
    change = out["changes"][0]["diff"]
    assert {d["query"] for d in change} == {"decision(A, D)", "reason(A, R)"}


def test_holds_keep_rows_past_expiry_and_every_change_is_audited() -> None:
    store = DuckDBAuditStore(":memory:")
    old = datetime(2018, 1, 1, tzinfo=UTC)
    store.insert_decisions([decision(i, old + timedelta(minutes=i)) for i in range(4)])
    now = old + timedelta(days=RETENTION_DAYS + 10)
    by_id = holds.place(
        store, "acme", "decisions", reason="matter 1", actor="alice", decision_ids=["dec_acme_0000001"]
    )
    assert store.expire(now) == 3
    assert store.get_decision("acme", "dec_acme_0000001") is not None
    store.insert_decisions([decision(i, old + timedelta(minutes=i)) for i in range(4)])
    whole = holds.place(store, "acme", "tenant", reason="matter 2", actor="bob")
    assert store.expire(now) == 0
    holds.release(store, "acme", whole.hold_id, actor="bob", reason="closed")
    assert store.expire(now) == 3  # the decisions hold still keeps its one row
    holds.release(store, "acme", by_id.hold_id, actor="alice", reason="closed")
    assert store.expire(now) == 1
    events = holds.events(store, "acme")
    assert [(e["action"], e["actor"]) for e in events] == [
        ("hold", "alice"),
        ("hold", "bob"),
        ("release", "bob"),
        ("release", "alice"),
    ]
    with pytest.raises(KeyError, match="no hold"):
        holds.release(store, "acme", whole.hold_id, actor="bob", reason="twice")
    with pytest.raises(ValueError, match="exactly one ruleset"):
        holds.place(store, "acme", "ruleset", reason="r", actor="a")
    with pytest.raises(ValueError, match="needs a reason"):
        holds.place(store, "acme", "tenant", reason=" ", actor="a")
    assert "held_decisions" in holds.bigquery_keep_held_sql("p", "entail_audit")


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(args), out, err), out.getvalue(), err.getvalue()


def test_the_trail_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENTAIL_DATA_DIR", str(tmp_path))
    path = tmp_path / "audit.duckdb"
    filled_store(6, path=path).close()
    p = ("--path", str(path))
    code, out, _ = run("audit", "roots", *p, "--grace-s", "0")
    assert code == 0 and f"acme {DAY}: root over 6 row(s)" in out
    code, out, _ = run("audit", "verify", *p, "--tenant", "acme", "--day", DAY, "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = run("audit", "inclusion", *p, "--tenant", "acme", "dec_acme_0000002")
    assert code == 0 and json.loads(out)["leaf_index"] == 2
    code, _, err = run("audit", "inclusion", *p, "--tenant", "acme", "dec_nope")
    assert code == 2 and "in no signed root" in err
    code, out, _ = run(
        "audit",
        "provenance",
        *p,
        "--tenant",
        "acme",
        "--start",
        START,
        "--end",
        END,
        "--reason-code",
        "high_dti",
    )
    assert code == 0 and len(json.loads(out)["items"]) == 2
    code, _, err = run("audit", "provenance", *p, "--tenant", "acme", "--start", START, "--end", END)
    assert code == 2 and "at least one" in err
    code, out, _ = run(
        "audit", "hold", "place", *p, "--tenant", "acme", "--scope", "tenant", "--reason", "m", "--actor", "a"
    )
    assert code == 0 and json.loads(out)["scope"] == "tenant"
    code, out, _ = run(
        "audit", "export", *p, "--tenant", "acme", "--from", DAY, "--to", DAY, "--out", str(tmp_path / "x")
    )
    assert code == 0 and "exported 6 row(s) and 1 root(s)" in out
    code, out, _ = run("audit", "key", "rotate")
    assert code == 0 and "rotated" in out
    code, _, err = run(
        "audit", "verify", "--path", str(tmp_path / "none.duckdb"), "--tenant", "a", "--day", DAY
    )
    assert code == 2 and "no audit store" in err
    code, _, err = run("audit", "verify", *p, "--tenant", "acme", "--day", "2026-13-40")
    assert code == 2 and "invalid day" in err


def test_provenance_tolerates_any_answers_shape() -> None:
    """Rows come from a topic: odd shapes give what can be derived, never an error."""
    odd = [
        {
            "query": "p(X)",
            "answers": [{"atom": "p(1)", "args": [1], "proof": {"kind": "rule", "rule": "text"}}],
        },
        {"query": "q", "answers": "not a list"},
        "not a dict",
        {"answers": [None, {"args": [[{"const": "deep"}]] * 3, "proof": {"kind": "rule", "body": "x"}}]},
    ]
    p = of_answers(odd, explain=True)  # type: ignore[arg-type]
    assert (p.rule_ids, p.fact_hashes, p.reason_codes) == (" ", " ", " deep ")


def test_text_no_store_can_hold_is_a_validation_error() -> None:
    """A lone surrogate (valid in a URL's percent-encoding, not in UTF-8) is refused
    as invalid input (the route's 422), not passed to DuckDB (a 500)."""
    for criteria in ({"ruleset_name": "r\udc80", "reason_code": "x"}, {"fact": "p(\udc80)"}):
        with pytest.raises(ValueError, match="surrogates"):
            pq.build_query("acme", START, END, **criteria)  # type: ignore[arg-type]
